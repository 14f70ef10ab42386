/**
 * Jest's global setup: the TypeScript that the suites run as child processes (test/fixtures/, the helpers
 * they import, and src/) transpiled once per run to plain JavaScript, so that each of the many instances
 * the multi-process suites start is a bare `node` (about 0.5 s of CPU) instead of node with tsx's loader
 * (about 1.1 s). Only files whose text changed since the last run are transpiled again; the directory is
 * passed to the workers in the environment (read by test/helpers/instances.ts).
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import { COMPILED_DIR_ENV } from './instances';

const ROOT = path.join(__dirname, '..', '..');
/** What the child processes load: their own files and everything those import from the repository. */
const SOURCES = ['src', 'test/fixtures', 'test/helpers'];

function tsFiles(dir: string): string[] {
  return readdirSync(path.join(ROOT, dir), { withFileTypes: true }).flatMap((entry) => {
    const relative = path.join(dir, entry.name);
    if (entry.isDirectory()) return tsFiles(relative);
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts') ? [relative] : [];
  });
}

export default function compileFixtures(): void {
  const out = path.join(ROOT, 'node_modules', '.cache', 'chargebee-portal-logout-tests', 'js');
  const manifestPath = path.join(out, 'manifest.json');
  let manifest: Record<string, string> = {};
  try {
    manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as Record<string, string>;
  } catch {
    rmSync(out, { recursive: true, force: true }); // no record of what is there: start clean
  }
  const next: Record<string, string> = {};
  for (const file of SOURCES.flatMap(tsFiles)) {
    const text = readFileSync(path.join(ROOT, file), 'utf8');
    const digest = createHash('sha256').update(text).digest('hex');
    next[file] = digest;
    if (manifest[file] === digest) continue;
    const { outputText } = ts.transpileModule(text, {
      fileName: file,
      compilerOptions: {
        module: ts.ModuleKind.CommonJS,
        target: ts.ScriptTarget.ES2022,
        esModuleInterop: true,
        isolatedModules: true,
      },
    });
    const target = path.join(out, file.replace(/\.ts$/, '.js'));
    mkdirSync(path.dirname(target), { recursive: true });
    writeFileSync(target, outputText);
  }
  for (const file of Object.keys(manifest)) {
    if (!(file in next)) rmSync(path.join(out, file.replace(/\.ts$/, '.js')), { force: true });
  }
  mkdirSync(out, { recursive: true });
  writeFileSync(manifestPath, JSON.stringify(next));
  process.env[COMPILED_DIR_ENV] = out;
}
