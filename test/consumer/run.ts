/**
 * The package as users install it. Packs it, checks the tarball with @arethetypeswrong/cli and publint,
 * installs it into throwaway apps in a temporary directory outside the repository (the apps in
 * test/consumer/apps), compiles each with its own tsconfig and runs it. `npm run test:consumer`; CI runs
 * it after `npm test`. The apps' dependencies come from npm's cache when it has them (the same versions
 * as this repository's), else from the registry. KEEP_CONSUMER_DIR=1 keeps the temporary directory.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const root = path.resolve(__dirname, '..', '..');
const appsDir = path.join(__dirname, 'apps');
const bin = (name: string): string => path.join(root, 'node_modules', '.bin', name);

interface ConsumerApp {
  name: string;
  /** Files of test/consumer/apps copied beside the app's own. */
  shared: string[];
  /** Installed next to the tarball, at the versions this repository uses. */
  dependencies: string[];
  /** Text the compiled entry must contain: proof of the module format the app was built as. */
  emits: RegExp;
  /** Also type-check with `skipLibCheck: false`, whatever the app's tsconfig says. */
  alsoWithLibCheck?: boolean;
  /** Also start the emulator through the package's bin, as `npx chargebee-portal-emulator` would. */
  startsBin?: boolean;
}

const APPS: ConsumerApp[] = [
  {
    name: 'esm',
    shared: ['session-app.ts'],
    dependencies: ['express', 'express-session', '@types/express', '@types/express-session', '@types/node'],
    emits: /^import .* from 'chargebee-portal-logout';$/m,
  },
  {
    name: 'cjs',
    shared: ['session-app.ts'],
    dependencies: ['express', 'express-session', '@types/express', '@types/express-session', '@types/node'],
    emits: /require\("chargebee-portal-logout"\)/,
  },
  {
    name: 'cookie-only',
    shared: [],
    dependencies: ['express', '@types/express', '@types/node'],
    emits: /require\("chargebee-portal-logout"\)/,
    alsoWithLibCheck: true,
    startsBin: true,
  },
  {
    name: 'redis',
    shared: [],
    dependencies: ['express', 'redis', '@types/express', '@types/node'],
    emits: /require\("chargebee-portal-logout\/redis"\)/,
  },
  {
    name: 'postgres',
    shared: [],
    dependencies: ['express', 'pg', '@types/express', '@types/node', '@types/pg'],
    emits: /require\("chargebee-portal-logout\/postgres"\)/,
  },
];

/** Files the tarball must hold; `src/` and `test/` must not be in it. */
const PACKED_FILES = [
  'package.json',
  'README.md',
  'LICENSE',
  'CHANGELOG.md',
  'dist/index.js',
  'dist/index.d.ts',
  'dist/augmentations.d.ts',
  'dist/testing/index.js',
  'dist/testing/index.d.ts',
  'dist/redis/index.js',
  'dist/redis/index.d.ts',
  'dist/postgres/index.js',
  'dist/postgres/index.d.ts',
];

interface Ran {
  code: number | null;
  output: string;
}

function run(command: string, args: string[], cwd: string, timeoutMs = 300_000): Promise<Ran> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { cwd, env: process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const timer = setTimeout(() => {
      output += `\n(killed after ${timeoutMs} ms)`;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      resolve({ code: null, output: `${output}\n${err.message}` });
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

function installedVersion(name: string): string {
  const manifest = JSON.parse(readFileSync(path.join(root, 'node_modules', name, 'package.json'), 'utf8')) as {
    version: string;
  };
  return manifest.version;
}

let passed = 0;
let failed = 0;

/** Runs one check; a check throws (with the command's output) when it fails. */
async function check(name: string, body: () => Promise<void>): Promise<boolean> {
  const started = Date.now();
  try {
    await body();
    passed++;
    console.log(`ok   ${name} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
    return true;
  } catch (err) {
    failed++;
    console.log(`FAIL ${name}\n${err instanceof Error ? err.message : String(err)}`.trimEnd());
    return false;
  }
}

async function mustRun(command: string, args: string[], cwd: string): Promise<string> {
  const ran = await run(command, args, cwd);
  if (ran.code !== 0) {
    const shown = ran.output.trim().split('\n').slice(-60).join('\n');
    throw new Error(`${path.basename(command)} ${args.join(' ')} exited ${ran.code}:\n${shown}`);
  }
  return ran.output;
}

async function main(): Promise<void> {
  const work = mkdtempSync(path.join(os.tmpdir(), 'chargebee-portal-logout-consumer-'));
  let tarball = '';
  try {
    const packed = await check('npm pack (builds dist/ first)', async () => {
      await mustRun('npm', ['pack', '--pack-destination', work], root);
      const found = readdirSync(work).find((name) => name.endsWith('.tgz'));
      if (!found) throw new Error('npm pack wrote no tarball');
      tarball = path.join(work, found);
    });
    if (!packed) return;

    await check(
      'tarball holds the built entry points, types, README, LICENSE and CHANGELOG, and no sources',
      async () => {
        const listed = new Set(
          (await mustRun('tar', ['-tzf', tarball], work)).split('\n').map((line) => line.replace(/^package\//, '')),
        );
        const missing = PACKED_FILES.filter((file) => !listed.has(file));
        const extra = [...listed].filter((file) => /^(src|test|examples|bench)\//.test(file));
        if (missing.length > 0 || extra.length > 0) {
          throw new Error(`missing: ${missing.join(', ') || 'none'}; not for users: ${extra.join(', ') || 'none'}`);
        }
      },
    );
    await check('@arethetypeswrong/cli finds no problem in the tarball', async () => {
      await mustRun(bin('attw'), [tarball, '--format', 'table-flipped'], work);
    });
    await check('publint (strict) finds nothing in the tarball', async () => {
      const output = await mustRun(bin('publint'), ['run', tarball, '--strict'], work);
      if (!/All good!/.test(output)) throw new Error(output);
    });

    for (const app of APPS) {
      const dir = path.join(work, app.name);
      cpSync(path.join(appsDir, app.name), dir, { recursive: true });
      for (const file of app.shared) cpSync(path.join(appsDir, file), path.join(dir, file));
      const dependencies = app.dependencies.map((name) => `${name}@${installedVersion(name)}`);

      const installed = await check(`${app.name} app: npm install of the tarball, ${app.dependencies.join(', ')}`, () =>
        mustRun(
          'npm',
          ['install', '--prefer-offline', '--no-audit', '--no-fund', '--no-package-lock', tarball, ...dependencies],
          dir,
        ).then(() => undefined),
      );
      if (!installed) continue;
      const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
      const compiled = await check(`${app.name} app: tsc (${describeConfig(dir)})`, async () => {
        await mustRun(process.execPath, [tsc, '-p', dir], dir);
        const emitted = readFileSync(path.join(dir, 'dist', 'main.js'), 'utf8');
        if (!app.emits.test(emitted)) throw new Error(`dist/main.js does not match ${app.emits}:\n${emitted}`);
      });
      if (!compiled) continue;
      if (app.alsoWithLibCheck) {
        await check(`${app.name} app: tsc --skipLibCheck false`, async () => {
          await mustRun(process.execPath, [tsc, '-p', dir, '--skipLibCheck', 'false', '--noEmit'], dir);
        });
      }
      await check(`${app.name} app: node dist/main.js`, async () => {
        const output = await mustRun(process.execPath, [path.join('dist', 'main.js')], dir);
        if (!/: ok$/m.test(output)) throw new Error(`no "ok" line in the output:\n${output}`);
      });
      if (app.startsBin) {
        await check(`${app.name} app: the chargebee-portal-emulator bin serves and stops on SIGTERM`, () =>
          startBin(path.join(dir, 'node_modules', '.bin', 'chargebee-portal-emulator')),
        );
      }
    }
  } finally {
    if (process.env.KEEP_CONSUMER_DIR) console.log(`kept ${work}`);
    else rmSync(work, { recursive: true, force: true });
    if (existsSync(tarball)) rmSync(tarball, { force: true });
  }
}

/** Starts the installed bin on a free port, asks its control API for the sessions, then stops it. */
async function startBin(file: string): Promise<void> {
  if (!existsSync(file)) throw new Error(`npm linked no ${path.basename(file)} into node_modules/.bin`);
  const child = spawn(file, ['--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = once(child, 'exit');
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  let failure: unknown;
  try {
    const line = await new Promise<string>((resolve, reject) => {
      child.stdout.on('data', (chunk: Buffer) => {
        output += chunk.toString();
        if (output.includes('\n')) resolve(output.split('\n')[0] ?? '');
      });
      void exited.then(() => reject(new Error(`the bin exited before listening:\n${output}`)));
    });
    const { url } = JSON.parse(line) as { url: string };
    const answer = await fetch(`${url}/_emulator/sessions`);
    if (!answer.ok) throw new Error(`GET /_emulator/sessions answered ${answer.status}`);
  } catch (error) {
    failure = error;
  }
  child.kill('SIGTERM');
  const [code, signal] = (await exited) as [number | null, NodeJS.Signals | null];
  clearTimeout(timer);
  if (failure) throw failure;
  if (code !== 0 && signal !== 'SIGTERM') throw new Error(`the bin ended with ${code ?? signal}:\n${output}`);
}

function describeConfig(dir: string): string {
  const { compilerOptions: o } = JSON.parse(readFileSync(path.join(dir, 'tsconfig.json'), 'utf8')) as {
    compilerOptions: { module: string; strict: boolean; skipLibCheck: boolean };
  };
  return `module ${o.module}, strict ${o.strict}, skipLibCheck ${o.skipLibCheck}`;
}

main()
  .catch((err: unknown) => {
    failed++;
    console.log(`FAIL consumer test: ${err instanceof Error ? err.stack : String(err)}`);
  })
  .finally(() => {
    console.log(`consumer: ${passed} passed, ${failed} failed`);
    process.exitCode = failed > 0 ? 1 : 0;
  });
