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
import pino from 'pino';
import { createClient, type RedisClientType } from 'redis';
import { RedisDeferredLogoutStore } from '../src/redis';
import { type DeferredLogoutJob, type DeferredLogoutStore } from '../src/queue/store';
import { MemoryDeferredLogoutStore } from '../src/queue/memory-store';
import { DeferredLogoutQueue } from '../src/queue/queue';
import { drainRate, siteKey } from '../src/reliability/rate-limit';
import { ChargebeeEmulator } from '../src/testing';
import { startInstance, type Instance } from '../test/helpers/instances';
import { startRedisServer } from '../test/helpers/redis-server';
import { median, quantile, runLoad } from './load';

const JOBS = Number(process.env.BENCH_REDIS_JOBS ?? 10_000);
const RATE = Number(process.env.BENCH_REDIS_RATE ?? 10_000);
const HEALTHY_ROUNDS = 7;
const HEALTHY_REQUESTS = 1500;
const CONNECTIONS = 10;
const DEFERRALS = 3000;
const ROOT = path.resolve(__dirname, '..');

const log = (line: string) => process.stdout.write(`${line}\n`);
const round2 = (x: number) => Math.round(x * 100) / 100;
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type RedisClient = RedisClientType<any, any, any, any, any>;

async function sleep(ms: number): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, ms));
}

async function waitUntil(predicate: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const started = Date.now();
  while (!predicate()) {
    if (Date.now() - started > timeoutMs) throw new Error(`${what} not done within ${timeoutMs} ms`);
    await sleep(20);
  }
}

async function portOf(instance: Instance): Promise<number> {
  return Number((await instance.waitForLine((l) => 'port' in l, 30_000)).port);
}

async function healthyPath(redisUrl: string) {
  const apps = {
    memory: startInstance('bench/redis-app.ts', { REDIS_URL: redisUrl, STORE: 'memory' }),
    redis: startInstance('bench/redis-app.ts', { REDIS_URL: redisUrl, STORE: 'redis' }),
  };
  try {
    const base = {
      memory: `http://127.0.0.1:${await portOf(apps.memory)}`,
      redis: `http://127.0.0.1:${await portOf(apps.redis)}`,
    };
    const run = async (store: 'memory' | 'redis', requests: number) => {
      const ids = (await (await fetch(`${base[store]}/seed?n=${requests}`, { method: 'POST' })).json()) as string[];
      const result = await runLoad(
        `${base[store]}/logout`,
        ids.map((id) => `p=${id}`),
        CONNECTIONS,
      );
      if (result.errors > 0) throw new Error(`${store}: ${result.errors} errors`);
      return result;
    };
    for (let i = 0; i < 2; i++) {
      await run('memory', 500);
      await run('redis', 500);
    }
    const rps = { memory: [] as number[], redis: [] as number[] };
    const p99 = { memory: [] as number[], redis: [] as number[] };
    const ratios: number[] = [];
    for (let round = 0; round < HEALTHY_ROUNDS; round++) {
      for (const store of round % 2 ? (['memory', 'redis'] as const) : (['redis', 'memory'] as const)) {
        const result = await run(store, HEALTHY_REQUESTS);
        rps[store].push(result.rps);
        p99[store].push(result.p99Ms);
      }
      ratios.push(rps.redis[round] / rps.memory[round]);
    }
    return {
      memoryRps: Math.round(median(rps.memory)),
      redisRps: Math.round(median(rps.redis)),
      // Each round's two runs back to back: the machine's drift cancels out in their ratio.
      ratio: round2(median(ratios)),
      memoryP99Ms: round2(median(p99.memory)),
      redisP99Ms: round2(median(p99.redis)),
      rounds: { rps, p99, ratios },
    };
  } finally {
    await Promise.all([apps.memory.kill(), apps.redis.kill()]);
  }
}

function job(id: string, now: number, extra: Partial<DeferredLogoutJob> = {}): DeferredLogoutJob {
  return {
    portalSessionId: id,
    headers: {
      'chargebee-request-origin-ip': '203.0.113.19',
      'chargebee-request-origin-device': 'Mozilla/5.0 (X11; Linux x86_64) bench/1.0',
      'chargebee-request-origin-user': 'customer.name@example.com',
    },
    idempotencyKey: `c2a4f1e0-5b7d-4e8a-9f3c-${id.slice(-12).padStart(12, '0')}`,
    firstAttemptAt: now,
    attempts: 4,
    notBefore: now,
    reason: 'budget_exhausted',
    ...extra,
  };
}

async function deferralTime(client: RedisClient) {
  const measure = async (store: DeferredLogoutStore) => {
    const queue = new DeferredLogoutQueue({
      store,
      maxAgeMs: 3_600_000,
      baseDelayMs: 1000,
      maxDelayMs: 60_000,
      concurrency: 4,
      timeoutMs: 5000,
      attempt: async () => 'done',
      givenUp: () => undefined,
      log: pino({ level: 'silent' }),
    });
    const times: number[] = [];
    const later = Date.now() + 3_000_000;
    for (let i = 0; i < DEFERRALS + 300; i++) {
      const started = performance.now();
      await queue.enqueue(job(`portal_deferral_${i}`, Date.now(), { notBefore: later }));
      if (i >= 300) times.push(performance.now() - started);
    }
    await queue.close(0);
    times.sort((a, b) => a - b);
    const ms = (x: number) => Math.round(x * 1000) / 1000;
    return { p50Ms: ms(quantile(times, 0.5)), p99Ms: ms(quantile(times, 0.99)), maxMs: ms(times[times.length - 1]) };
  };
  const memory = await measure(new MemoryDeferredLogoutStore(DEFERRALS + 1000));
  const redis = await measure(new RedisDeferredLogoutStore(client, { prefix: '{bench-deferral}:' }));
  await client.del(await client.keys('{bench-deferral}:*'));
  return { deferrals: DEFERRALS, memory, redis };
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
    const now = Date.now();
    const ids: string[] = [];
    for (let i = 0; i < JOBS; i++) {
      const portal = emulator.createSession({ customerId: `cus_${i}` });
      emulator.openSession(portal.id);
      ids.push(portal.id);
    }
    for (let i = 0; i < JOBS; i += 200) {
      await Promise.all(ids.slice(i, i + 200).map((id) => store.add(job(id, now, { site }))));
    }
    const after = await usedMemory(client);
    // Every key of the store: the jobs, the site's lane, and the indexes (sites, since).
    let keyBytes = 0;
    for (const key of await client.keys(`${prefix}*`))
      keyBytes += Number((await client.memoryUsage(key, { SAMPLES: 0 })) ?? 0);

    const env = { REDIS_URL: redisUrl, PREFIX: prefix, BASE_URL: emulator.baseUrl('acme-test'), API_KEY: apiKey };
    instances.push(startInstance('test/fixtures/redis-instance.ts', { ...env, RATE: String(RATE) }));
    instances.push(startInstance('test/fixtures/redis-instance.ts', { ...env, RATE: String(RATE) }));
    await Promise.all(instances.map(portOf));
    const finals = () => instances.reduce((n, i) => n + i.lines.filter((l) => 'final' in l).length, 0);
    const idealS = JOBS / (RATE / 60);
    await waitUntil(() => finals() >= JOBS, idealS * 1500 + 60_000, 'the drain');
    await sleep(200);

    const requests = emulator.logoutRequests();
    const perId = new Map<string, number>();
    for (const r of requests) {
      const id = /portal_sessions\/([^/]+)\/logout/.exec(r.path)?.[1] ?? r.path;
      perId.set(id, (perId.get(id) ?? 0) + 1);
    }
    const times = requests.map((r) => r.at).sort((a, b) => a - b);
    const tookS = (times[times.length - 1] - times[0]) / 1000;
    // The first burst of the bucket goes at once; the rest at the rate.
    const paceS = (JOBS - drainRate(RATE).burst) / (RATE / 60);
    return {
      jobs: JOBS,
      ratePerMinute: RATE,
      processes: 2,
      tookS: round2(tookS),
      idealS: round2(paceS),
      vsIdeal: round2(tookS / paceS),
      measuredPerMinute: Math.round(((times.length - 1) * 60) / tookS),
      requests: requests.length,
      duplicates: [...perId.values()].reduce((n, c) => n + c - 1, 0),
      lost: ids.filter((id) => emulator.getSession(id)?.status !== 'logged_out').length,
      finals: finals(),
      finalsPerProcess: instances.map((i) => i.lines.filter((l) => 'final' in l).length),
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
