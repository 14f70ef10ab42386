import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assertServerAvailable } from './servers';

/**
 * A real `redis-server` of its own for a test file: a free loopback port, a temporary directory (append-only
 * file when `persistent`), stopped and restarted at will on the same port and directory.
 */
export interface RedisServer {
  url: string;
  port: number;
  /** Stops the server: SIGTERM (a clean shutdown) or SIGKILL. */
  stop(signal?: 'SIGTERM' | 'SIGKILL'): Promise<void>;
  /** Starts it again on the same port and directory. */
  start(): Promise<void>;
  /** Freezes (SIGSTOP) or thaws (SIGCONT) the server: connections stay open, nothing is answered. */
  freeze(): void;
  thaw(): void;
  /** Stops it and removes the directory. */
  close(): Promise<void>;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export async function startRedisServer(options: { persistent?: boolean } = {}): Promise<RedisServer> {
  // A clear message rather than spawn's ENOENT; test files declare the need with describeWithServer.
  assertServerAvailable('redis-server');
  const dir = mkdtempSync(join(tmpdir(), 'cbpl-redis-'));
  const port = await freePort();
  let child: ChildProcess | undefined;

  const start = async (): Promise<void> => {
    const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--protected-mode', 'no'];
    args.push('--appendonly', options.persistent ? 'yes' : 'no', '--appendfsync', 'always');
    child = await spawnRedisServer(args);
  };

  const stop = async (signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM'): Promise<void> => {
    const running = child;
    child = undefined;
    if (!running || running.exitCode !== null || running.signalCode !== null) return;
    const exited = new Promise((resolve) => running.once('exit', resolve));
    running.kill('SIGCONT');
    running.kill(signal);
    await exited;
  };

  await start();
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    stop,
    start,
    freeze: () => child?.kill('SIGSTOP'),
    thaw: () => child?.kill('SIGCONT'),
    close: async () => {
      await stop('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Starts `redis-server` with `args`; resolves once it accepts connections (its output drained from then on). */
export async function spawnRedisServer(args: string[]): Promise<ChildProcess> {
  const started = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  await new Promise<void>((resolve, reject) => {
    let output = '';
    const timer = setTimeout(() => reject(new Error(`redis-server did not start: ${output}`)), 10_000);
    started.stdout!.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('Ready to accept connections')) {
        clearTimeout(timer);
        resolve();
      }
    });
    started.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`redis-server exited with ${code}: ${output}`));
    });
    started.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
  started.stdout!.resume();
  started.stderr!.resume();
  return started;
}
