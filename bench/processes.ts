/**
 * The benchmark's child processes: the emulator (src/testing/cli.ts), the app (bench/app.ts) and the
 * in-process benchmarks. Every child is tracked and killed when the orchestrator ends, also on error.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { AppCommand, AppReady } from './protocol';

export const ROOT = path.resolve(__dirname, '..');
/** Where run.ts compiles src/ (inside the repository, so that node_modules resolves; git-ignored). */
export const LIBRARY_DIR = path.join(ROOT, 'bench/results/lib');
const live = new Set<ChildProcess>();

// Last resort: whatever way this process ends, no child outlives it.
process.on('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

interface Spawned {
  child: ChildProcess;
  /** The end of the child's stderr, for error messages. */
  stderrTail: () => string;
}

/**
 * Runs a file with Node: a .ts file with tsx's loader (no tsx wrapper process, so signals reach it),
 * a .js file as it is. Children get BENCH_LIBRARY_DIR, so that they load the compiled library.
 */
function spawnNode(
  script: string,
  args: string[],
  options: { ipc?: boolean; stdout: 'pipe' | 'ignore'; nodeArgs?: string[] },
): Spawned {
  const loader = script.endsWith('.ts') ? ['--import', 'tsx'] : [];
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), ...loader, script, ...args], {
    cwd: ROOT,
    env: { ...process.env, BENCH_LIBRARY_DIR: LIBRARY_DIR },
    stdio: ['ignore', options.stdout, 'pipe', ...(options.ipc ? ['ipc' as const] : [])],
  });
  live.add(child);
  child.once('exit', () => live.delete(child));
  let tail = '';
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    tail = (tail + chunk).slice(-4000);
  });
  return { child, stderrTail: () => tail.trim() };
}

function exitError(what: string, spawned: Spawned, code: number | null, signal: string | null): Error {
  return new Error(
    `${what} exited (${signal ?? `code ${code}`}) unexpectedly${spawned.stderrTail() ? `:\n${spawned.stderrTail()}` : ''}`,
  );
}

/** Waits for a promise, or fails after `ms` naming `what`. */
export function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export interface EmulatorProcess {
  url: string;
  site: string;
  apiKey: string;
  /** CPU time (user + system) the emulator process has used, in µs; NaN where /proc is not there. */
  cpuUs(): number;
  /** Calls the emulator's control API (`/_emulator/...`) and resolves with the parsed JSON answer. */
  control(method: 'GET' | 'POST' | 'DELETE', route: string, body?: unknown): Promise<unknown>;
}

/**
 * Compiles src/ with tsc (no type check: `npm test` does that) into {@link LIBRARY_DIR}: the benchmark
 * measures the JavaScript users install, not the TypeScript source through tsx.
 */
export async function buildLibrary(): Promise<void> {
  const tsc = path.join(ROOT, 'node_modules/typescript/bin/tsc');
  const spawned = spawnNode(
    tsc,
    [
      '-p',
      'tsconfig.build.json',
      '--outDir',
      LIBRARY_DIR,
      '--noCheck',
      '--sourceMap',
      'false',
      '--declaration',
      'false',
    ],
    { stdout: 'ignore' },
  );
  await within(
    new Promise<void>((resolve, reject) => {
      spawned.child.once('exit', (code, signal) =>
        code === 0 ? resolve() : reject(exitError('tsc', spawned, code, signal)),
      );
    }),
    60_000,
    'compiling src/',
  );
}

/** Starts the emulator's CLI (compiled by {@link buildLibrary}) with request recording off; waits for its JSON line. */
export async function startEmulator(): Promise<EmulatorProcess> {
  const spawned = spawnNode(path.join(LIBRARY_DIR, 'testing/cli.js'), ['--record-limit', '0'], { stdout: 'pipe' });
  const line = await within(
    new Promise<string>((resolve, reject) => {
      let text = '';
      spawned.child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
        text += chunk;
        const end = text.indexOf('\n');
        if (end !== -1) resolve(text.slice(0, end));
      });
      spawned.child.once('exit', (code, signal) => reject(exitError('the emulator', spawned, code, signal)));
    }),
    30_000,
    'starting the emulator',
  );
  const { url, baseUrl, apiKey } = JSON.parse(line) as { url: string; baseUrl: string; apiKey: string };
  const site = new URL(baseUrl).pathname.split('/')[1];
  const control = async (method: 'GET' | 'POST' | 'DELETE', route: string, body?: unknown): Promise<unknown> => {
    const response = await fetch(`${url}/_emulator/${route}`, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(30_000),
    });
    const answer = (await response.json()) as unknown;
    if (!response.ok)
      throw new Error(`emulator control ${method} ${route}: ${response.status} ${JSON.stringify(answer)}`);
    return answer;
  };
  return { url, site, apiKey, control, cpuUs: () => procCpuUs(spawned.child.pid) };
}

/** A process's CPU time from /proc/{pid}/stat (Linux), in µs, at the clock-tick resolution of 10 ms. */
function procCpuUs(pid: number | undefined): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name, which is in parentheses and may hold spaces: utime is the 12th.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) * 10_000;
  } catch {
    return NaN;
  }
}

export interface AppProcess extends AppReady {
  call<T>(command: AppCommand, timeoutMs?: number): Promise<T>;
}

/** Starts bench/app.ts against the emulator and waits until it listens. */
export async function startApp(emulator: EmulatorProcess): Promise<AppProcess> {
  // Our middleware's default pino logger writes one line per logout to stdout: /dev/null here.
  // BENCH_CPU_PROF=1 writes a CPU profile of the app process to bench/results/ (open it in Chrome DevTools).
  const nodeArgs = process.env.BENCH_CPU_PROF ? ['--cpu-prof', '--cpu-prof-dir', path.join(ROOT, 'bench/results')] : [];
  const spawned = spawnNode('bench/app.ts', [emulator.url, emulator.site, emulator.apiKey], {
    ipc: true,
    stdout: 'ignore',
    nodeArgs,
  });
  const { child } = spawned;
  const pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  let nextId = 1;
  let exited: Error | undefined;
  child.once('exit', (code, signal) => {
    exited = exitError('the app process', spawned, code, signal);
    for (const p of pending.values()) p.reject(exited);
    pending.clear();
  });
  const ready = await within(
    new Promise<AppReady>((resolve, reject) => {
      child.on('message', (message: AppReady | { id: number; ok: boolean; result?: unknown; error?: string }) => {
        if ('ready' in message) return resolve(message);
        const p = pending.get(message.id);
        pending.delete(message.id);
        if (message.ok) p?.resolve(message.result);
        else p?.reject(new Error(`app: ${message.error}`));
      });
      child.once('exit', () => reject(exited));
    }),
    30_000,
    'starting the app',
  );
  const call = <T>(command: AppCommand, timeoutMs = 60_000): Promise<T> => {
    if (exited) return Promise.reject(exited);
    const id = nextId++;
    const answer = new Promise<T>((resolve, reject) =>
      pending.set(id, { resolve: resolve as (value: unknown) => void, reject }),
    );
    child.send({ id, ...command });
    return within(answer, timeoutMs, `app command ${command.cmd}`);
  };
  return { ...ready, call };
}

/** Runs an in-process benchmark (bench/memory.ts, bench/micro.ts) and resolves with the result it sends. */
export async function runChild<T>(script: string, nodeArgs: string[], args: string[], timeoutMs: number): Promise<T> {
  // stdout is /dev/null: the middleware logs one line per logout with its default logger.
  const spawned = spawnNode(script, args, { ipc: true, stdout: 'ignore', nodeArgs });
  return within(
    new Promise<T>((resolve, reject) => {
      spawned.child.once('message', (message: T) => resolve(message));
      spawned.child.once('exit', (code, signal) => reject(exitError(script, spawned, code, signal)));
    }),
    timeoutMs,
    script,
  );
}

/** Ends every child still running: SIGTERM, then SIGKILL after `graceMs`. */
export async function killAll(graceMs = 2000): Promise<void> {
  await Promise.all(
    [...live].map(
      (child) =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve();
          const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
          child.once('exit', () => {
            clearTimeout(timer);
            resolve();
          });
          child.kill('SIGTERM');
        }),
    ),
  );
}
