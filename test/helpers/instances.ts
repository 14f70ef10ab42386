import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';

/**
 * A child process of this repository's TypeScript (one process, no wrapper): a file of test/fixtures/ as the
 * JavaScript jest's global setup made of it (test/helpers/compile-fixtures.ts), anything else (the demo, as
 * users run it) through tsx's loader.
 */
export interface Instance {
  child: ChildProcess;
  /** Its JSON stdout lines so far. */
  lines: Array<Record<string, unknown>>;
  stderr: () => string;
  /** Resolves with the first line that `predicate` accepts (lines already printed count). */
  waitForLine(
    predicate: (line: Record<string, unknown>) => boolean,
    timeoutMs?: number,
  ): Promise<Record<string, unknown>>;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

const ROOT = path.join(__dirname, '..', '..');
/** Where jest's global setup put the JavaScript of test/fixtures/ (test/helpers/compile-fixtures.ts). */
export const COMPILED_DIR_ENV = 'CHARGEBEE_PORTAL_LOGOUT_TEST_JS';

function command(script: string): string[] {
  const compiled = process.env[COMPILED_DIR_ENV];
  if (compiled && script.startsWith('test/fixtures/')) return [path.join(compiled, script.replace(/\.ts$/, '.js'))];
  return ['--import', 'tsx', path.join(ROOT, script)];
}

export function startInstance(script: string, env: Record<string, string>): Instance {
  const child = spawn(process.execPath, command(script), {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: Array<Record<string, unknown>> = [];
  const waiters = new Set<() => void>();
  let errors = '';
  let pending = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    pending += chunk.toString();
    const parts = pending.split('\n');
    pending = parts.pop()!;
    for (const part of parts) {
      try {
        lines.push(JSON.parse(part) as Record<string, unknown>);
      } catch {
        lines.push({ text: part });
      }
    }
    for (const wake of waiters) wake();
  });
  child.stderr!.on('data', (chunk: Buffer) => {
    errors += chunk.toString();
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.once('exit', () => {
    for (const wake of waiters) wake();
  });
  return {
    child,
    lines,
    stderr: () => errors,
    waitForLine(predicate, timeoutMs = 15_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const found = lines.find(predicate);
          if (found) return done(() => resolve(found));
          if (child.exitCode !== null || child.signalCode !== null)
            done(() => reject(new Error(`${script} exited (${child.exitCode ?? child.signalCode}): ${errors}`)));
        };
        const timer = setTimeout(
          () => done(() => reject(new Error(`${script}: no such line in ${timeoutMs} ms: ${errors}`))),
          timeoutMs,
        );
        const done = (settle: () => void) => {
          clearTimeout(timer);
          waiters.delete(check);
          settle();
        };
        waiters.add(check);
        check();
      });
    },
    async kill(signal = 'SIGKILL') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
    },
  };
}
