/**
 * `npm run bench:redis`: the Redis deferred-logout store, against a redis-server of its own on loopback.
 *  1. The healthy path: two app processes (bench/redis-app.ts), the same code with the deferred queue in
 *     memory or on the Redis store, loaded in turns with autocannon. Redis is not touched when Chargebee
 *     answers, so the ratio of their throughputs should be about 1 (target at least 0.98).
 *  2. The time one deferral spends in the store: `enqueue` on the Redis store and on the memory store.
 *  3. A backlog drained by two app processes (test/fixtures/redis-instance.ts) at a shared rate: time
 *     against the ideal (jobs / rate), duplicates, lost, and Redis memory per queued job.
 * Every figure goes to bench/results/redis.json. BENCH_REDIS_JOBS and BENCH_REDIS_RATE (per minute) change
 * the backlog (default 10 000 at 10 000/min, about a minute).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createClient, type RedisClientType } from 'redis';
import { RedisDeferredLogoutStore } from '../src/redis';
import { siteKey } from '../src/reliability/rate-limit';
import { ChargebeeEmulator } from '../src/testing';
import { startInstance, type Instance } from '../test/helpers/instances';
import { startRedisServer } from '../test/helpers/redis-server';
import { deferralTimes, drainFigures, loadInTurns, portOf, seedBacklog } from './shared-store';

const JOBS = Number(process.env.BENCH_REDIS_JOBS ?? 10_000);
const RATE = Number(process.env.BENCH_REDIS_RATE ?? 10_000);
const ROOT = path.resolve(__dirname, '..');

const log = (line: string) => process.stdout.write(`${line}\n`);
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type RedisClient = RedisClientType<any, any, any, any, any>;

async function healthyPath(redisUrl: string) {
  const apps = {
    memory: startInstance('bench/redis-app.ts', { REDIS_URL: redisUrl, STORE: 'memory' }),
    redis: startInstance('bench/redis-app.ts', { REDIS_URL: redisUrl, STORE: 'redis' }),
  };
  try {
    const {
      sharedRps,
      sharedP99Ms,
      sharedLogouts: _,
      ...load
    } = await loadInTurns({
      memory: `http://127.0.0.1:${await portOf(apps.memory)}`,
      shared: `http://127.0.0.1:${await portOf(apps.redis)}`,
    });
    return { ...load, redisRps: sharedRps, redisP99Ms: sharedP99Ms };
  } finally {
    await Promise.all([apps.memory.kill(), apps.redis.kill()]);
  }
}

async function deferralTime(client: RedisClient) {
  const { shared, ...times } = await deferralTimes(
    new RedisDeferredLogoutStore(client, { prefix: '{bench-deferral}:' }),
  );
  await client.del(await client.keys('{bench-deferral}:*'));
  return { ...times, redis: shared };
}

async function usedMemory(client: RedisClient): Promise<number> {
  const info = String(await client.info('memory'));
  return Number(/used_memory:(\d+)/.exec(info)?.[1]);
}

async function drain(redisUrl: string, client: RedisClient) {
  const apiKey = 'test_bench_drain';
  const emulator = await ChargebeeEmulator.start({
    sites: { 'acme-test': { apiKey } },
    recordLimit: JOBS * 2,
  });
  const prefix = '{bench-drain}:';
  const instances: Instance[] = [];
  try {
    const site = siteKey(emulator.baseUrl('acme-test'));
    const store = new RedisDeferredLogoutStore(client, { prefix, maxQueued: JOBS * 2 });
    const before = await usedMemory(client);
    const ids = await seedBacklog(emulator, store, JOBS, site, 200);
    const after = await usedMemory(client);
    // Every key of the store: the jobs, the site's lane, and the indexes (sites, since).
    let keyBytes = 0;
    for (const key of await client.keys(`${prefix}*`))
      keyBytes += Number((await client.memoryUsage(key, { SAMPLES: 0 })) ?? 0);

    const env = { REDIS_URL: redisUrl, PREFIX: prefix, BASE_URL: emulator.baseUrl('acme-test'), API_KEY: apiKey };
    instances.push(startInstance('test/fixtures/redis-instance.ts', { ...env, RATE: String(RATE) }));
    instances.push(startInstance('test/fixtures/redis-instance.ts', { ...env, RATE: String(RATE) }));
    return {
      ...(await drainFigures(emulator, ids, instances, RATE)),
      redisBytesPerJob: Math.round((after - before) / JOBS),
      keyBytesPerJob: Math.round(keyBytes / JOBS),
      leftInRedis: await client.hLen(`${prefix}jobs`),
    };
  } finally {
    await Promise.all(instances.map((i) => i.kill('SIGTERM')));
    await emulator.close();
  }
}

async function main(): Promise<void> {
  const server = await startRedisServer();
  const client = createClient({ url: server.url });
  client.on('error', () => undefined);
  await client.connect();
  try {
    log(
      `bench:redis on ${os.cpus().length} CPUs (load average ${os.loadavg()[0].toFixed(1)}), Node ${process.version}, redis-server on loopback`,
    );
    const healthy = await healthyPath(server.url);
    log(
      `healthy path: memory store ${healthy.memoryRps} req/s, Redis store ${healthy.redisRps} req/s, ratio ${healthy.ratio} (target >= 0.98); p99 ${healthy.memoryP99Ms} / ${healthy.redisP99Ms} ms`,
    );
    if (process.env.BENCH_REDIS_ONLY === 'healthy') return;
    const deferral = await deferralTime(client);
    log(
      `deferral (enqueue): memory p50 ${deferral.memory.p50Ms} ms p99 ${deferral.memory.p99Ms} ms; Redis p50 ${deferral.redis.p50Ms} ms p99 ${deferral.redis.p99Ms} ms (target p99 < 2 ms)`,
    );
    const drained = await drain(server.url, client);
    log(
      `drain: ${drained.jobs} jobs by 2 processes at ${drained.ratePerMinute}/min in ${drained.tookS} s (ideal ${drained.idealS} s, x${drained.vsIdeal}); measured ${drained.measuredPerMinute}/min; duplicates ${drained.duplicates}, lost ${drained.lost}; Redis ${drained.redisBytesPerJob} B per queued job (keys ${drained.keyBytesPerJob} B)`,
    );
    const results = { at: new Date().toISOString(), node: process.version, healthy, deferral, drain: drained };
    mkdirSync(path.join(ROOT, 'bench/results'), { recursive: true });
    writeFileSync(path.join(ROOT, 'bench/results/redis.json'), `${JSON.stringify(results, null, 2)}\n`);
    const failed = [
      healthy.ratio < 0.98 && 'healthy-path ratio below 0.98',
      deferral.redis.p99Ms >= 2 && 'deferral p99 not below 2 ms',
      drained.duplicates > 0 && 'duplicates',
      drained.lost > 0 && 'lost logouts',
    ].filter(Boolean);
    log(failed.length ? `targets missed: ${failed.join(', ')}` : 'targets met');
  } finally {
    await client.close();
    await server.close();
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`bench:redis: ${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  },
);
