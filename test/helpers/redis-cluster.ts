import { execFile, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort, spawnRedisServer } from './redis-server';
import { assertServerAvailable } from './servers';

const run = promisify(execFile);

/**
 * A real Redis Cluster of its own for a test file: three masters (`redis-server --cluster-enabled yes`) on
 * free loopback ports, no replicas, the slots shared by `redis-cli --cluster create`, in a temporary
 * directory. Connect with node-redis `createCluster({ rootNodes })`.
 */
export interface RedisCluster {
  ports: number[];
  /** For `createCluster({ rootNodes })`. */
  rootNodes: Array<{ url: string }>;
  /** Stops every node and removes the directory. */
  close(): Promise<void>;
}

const NODES = 3;
/** A node's cluster bus listens on its port + 10 000. */
const BUS_OFFSET = 10_000;

/** A free loopback port whose cluster-bus port is free too. */
async function freeClusterPort(taken: Set<number>): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const port = await freePort();
    if (port + BUS_OFFSET > 65_535 || taken.has(port) || taken.has(port + BUS_OFFSET)) continue;
    const bus = await freePortAt(port + BUS_OFFSET);
    if (bus) return port;
  }
  throw new Error('no free port pair for a Redis Cluster node');
}

function freePortAt(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

async function cli(args: string[]): Promise<string> {
  const { stdout } = await run('redis-cli', args, { timeout: 30_000 });
  return stdout;
}

export async function startRedisCluster(): Promise<RedisCluster> {
  // A clear message rather than spawn's ENOENT; test files declare the need with describeWithServer.
  assertServerAvailable('redis-cluster');
  const dir = mkdtempSync(join(tmpdir(), 'cbpl-redis-cluster-'));
  const children: ChildProcess[] = [];
  const ports: number[] = [];
  const close = async () => {
    await Promise.all(
      children.map(async (child) => {
        if (child.exitCode !== null || child.signalCode !== null) return;
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGKILL');
        await exited;
      }),
    );
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const taken = new Set<number>();
    for (let i = 0; i < NODES; i++) {
      const port = await freeClusterPort(taken);
      taken.add(port).add(port + BUS_OFFSET);
      ports.push(port);
    }
    for (const port of ports) {
      children.push(
        await spawnRedisServer([
          '--port',
          String(port),
          '--bind',
          '127.0.0.1',
          '--protected-mode',
          'no',
          '--dir',
          dir,
          '--save',
          '',
          '--appendonly',
          'no',
          '--cluster-enabled',
          'yes',
          '--cluster-config-file',
          join(dir, `nodes-${port}.conf`),
          '--cluster-node-timeout',
          '5000',
        ]),
      );
    }
    await cli([
      '--cluster',
      'create',
      ...ports.map((port) => `127.0.0.1:${port}`),
      '--cluster-replicas',
      '0',
      '--cluster-yes',
    ]);
    // Every node must agree that the cluster is up (all slots covered) before a client maps the slots.
    const started = Date.now();
    for (;;) {
      const states = await Promise.all(ports.map((port) => cli(['-p', String(port), 'cluster', 'info'])));
      if (states.every((info) => /cluster_state:ok/.test(info))) break;
      if (Date.now() - started > 20_000) throw new Error(`the Redis Cluster did not come up: ${states.join('\n')}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  } catch (error) {
    await close();
    throw error;
  }
  return { ports, rootNodes: ports.map((port) => ({ url: `redis://127.0.0.1:${port}` })), close };
}
