// `npm test`: the type check, the lint (with the layers) and the format check, then the jest suites under
// --unhandled-rejections=strict (npm run test:suites). A static check whose inputs are the same,
// byte for byte, as at its last pass is not run again (a fresh clone has no record, so CI runs everything);
// the type check and the format check keep their own caches too (tsc --incremental, prettier --cache), which
// stay correct whatever changed. Exit code 1 when anything failed.
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const stamps = path.join(root, 'node_modules', '.cache', 'chargebee-portal-logout-checks');
const started = Date.now();
const seconds = () => `${((Date.now() - started) / 1000).toFixed(0)} s`;

/** A digest of every file git would commit (tracked or new, not ignored) and of the installed packages. */
function inputsDigest() {
  const files = execFileSync('git', ['ls-files', '-co', '--exclude-standard', '-z'], { cwd: root, encoding: 'utf8' })
    .split('\0')
    .filter(Boolean)
    .sort();
  const hash = createHash('sha256');
  for (const file of [...files, 'package-lock.json', 'node_modules/.package-lock.json']) {
    hash.update(`${file}\0`);
    try {
      hash.update(readFileSync(path.join(root, file)));
    } catch {
      hash.update('(none)');
    }
  }
  return hash.digest('hex');
}

/** Runs `npm run <script>`; its output is kept and printed when it ends, unless `live`. */
function run(script, { live = false, env = {} } = {}) {
  return new Promise((resolve) => {
    const child = spawn('npm', ['run', '--silent', script], {
      cwd: root,
      env: { ...process.env, ...env },
      stdio: live ? 'inherit' : ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    if (!live) {
      child.stdout.on('data', (chunk) => (output += chunk));
      child.stderr.on('data', (chunk) => (output += chunk));
    }
    child.on('close', (code) => {
      if (output) process.stdout.write(output.endsWith('\n') ? output : `${output}\n`);
      resolve(code === 0);
    });
  });
}

/** A static check, skipped when its inputs are those of its last pass. */
async function check(script, digest) {
  const stamp = path.join(stamps, script.replace(/[^a-z]/gi, '-'));
  let last = '';
  try {
    last = readFileSync(stamp, 'utf8');
  } catch {
    // no record: run it
  }
  if (last === digest) {
    process.stdout.write(`npm test: ${script} passed on these very files before; not run again\n`);
    return true;
  }
  const ok = await run(script);
  process.stdout.write(`npm test: ${script} ${ok ? 'passed' : 'FAILED'} (${seconds()})\n`);
  if (ok) {
    mkdirSync(stamps, { recursive: true });
    writeFileSync(stamp, digest);
  }
  return ok;
}

const digest = inputsDigest();
// The static checks first, one after another: on a small machine they would only slow the suites down.
let checksOk = true;
for (const script of ['typecheck', 'lint', 'format:check']) checksOk = (await check(script, digest)) && checksOk;
const suitesOk = checksOk && (await run('test:suites', { live: true }));
const ok = checksOk && suitesOk;
process.stdout.write(`npm test: ${ok ? 'passed' : 'FAILED'} in ${seconds()}\n`);
process.exit(ok ? 0 : 1);
