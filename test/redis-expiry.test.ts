/**
 * Scheduled logouts (option `expiry`) on the Redis store, against a real redis-server: the store's
 * schedule, postpone and cancel scripts, then app instances as real child processes: a process that
 * scheduled a logout is killed and another ends the portal session on time (also when its due time and
 * maximum age hold fractions of a millisecond); activity on one instance postpones an idle logout that
 * another scheduled.
 */
import { createClient } from 'redis';
import { hashPortalSessionId } from '../src';
import { RedisDeferredLogoutStore } from '../src/redis';
import type { DeferredLogoutJob } from '../src/queue/store';
import { siteKey as hashSite } from '../src/reliability/rate-limit';
import { ChargebeeEmulator } from '../src/testing';
import { waitFor } from './helpers/harness';
import { startInstance, type Instance } from './helpers/instances';
import { captureLogs } from './helpers/log-capture';
import { startRedisServer, type RedisServer } from './helpers/redis-server';
import { describeWithServer } from './helpers/servers';

const describeRedis = describeWithServer('redis-server');

jest.setTimeout(40_000);

const API_KEY = 'test_REDIS_EXPIRY';
let redis: RedisServer;
let emulator: ChargebeeEmulator;
let client: ReturnType<typeof createClient>;
const running: Instance[] = [];
let prefixCount = 0;
let prefix = '';

beforeAll(async () => {
  [redis, emulator] = await Promise.all([
    startRedisServer(),
    ChargebeeEmulator.start({ sites: { 'acme-test': { apiKey: API_KEY } } }),
  ]);
  client = createClient({ url: redis.url });
  client.on('error', () => undefined);
  await client.connect();
});
beforeEach(() => {
  prefix = `{exp${++prefixCount}}:`;
});
afterEach(async () => {
  await Promise.all(running.splice(0).map((i) => i.kill()));
  emulator.reset();
});
afterAll(async () => {
  await client.close();
  await Promise.all([redis.close(), emulator.close()]);
});

function newStore(options: ConstructorParameters<typeof RedisDeferredLogoutStore>[1] = {}) {
  const store = new RedisDeferredLogoutStore(client, { prefix, ...options });
  store.attach({ maxAgeMs: 60_000, log: captureLogs().logger });
  return store;
}

function scheduled(id: string, dueAt: number, extra: Partial<DeferredLogoutJob> = {}): DeferredLogoutJob {
  return {
    portalSessionId: id,
    headers: { 'chargebee-business-entity-id': 'acme-eu' },
    idempotencyKey: `key-${id}`,
    firstAttemptAt: dueAt,
    attempts: 0,
    notBefore: dueAt,
    reason: 'idle',
    site: SITE,
    ...extra,
  };
}

const SITE = 'a1b2c3d4e5f60718';
const NO_LIMIT = { perMinute: 0, burst: 0 };
/**
 * A job's due time as Redis keeps it (on Redis's clock, which on this one machine is the test's, give or
 * take a few milliseconds): scheduled logouts not tried wait in the site's scheduled lane, others in its due lane.
 */
const scoreOf = async (id: string) =>
  Number((await client.zScore(`${prefix}scheduled:${SITE}`, id)) ?? (await client.zScore(`${prefix}due:${SITE}`, id)));
/** Times read back through Redis's clock: within a few milliseconds of what was written. */
const near = (actual: number, expected: number) => expect(Math.abs(actual - expected)).toBeLessThan(50);

describeRedis('RedisDeferredLogoutStore: scheduled logouts', () => {
  it('keeps a scheduled logout round trip, with its reason and latest time', async () => {
    const store = newStore();
    const now = Date.now();
    expect(await store.schedule(scheduled('portal_r', now - 1, { latestAt: now + 5000 }))).toBe(true);
    const [taken] = (await store.takeDue(10, NO_LIMIT)).jobs;
    expect(taken).toMatchObject({
      portalSessionId: 'portal_r',
      reason: 'idle',
      attempts: 0,
      headers: { 'chargebee-business-entity-id': 'acme-eu' },
    });
    near(taken.latestAt!, now + 5000);
  });

  it('a deferral replaces a scheduled logout; a schedule never replaces a deferral, nor a job handed over', async () => {
    const store = newStore();
    const later = Date.now() + 60_000;
    expect(await store.schedule(scheduled('portal_a', later))).toBe(true);
    expect(await store.schedule(scheduled('portal_a', later + 1000))).toBe(true); // a new schedule replaces it
    near(await scoreOf('portal_a'), later + 1000);
    const deferral = { ...scheduled('portal_a', Date.now() - 1), attempts: 2, reason: 'budget_exhausted' as const };
    expect(await store.add(deferral)).toBe(true);
    expect((await store.list())[0]).toMatchObject({ reason: 'budget_exhausted', attempts: 2 });
    expect(await store.schedule(scheduled('portal_a', later))).toBe(true);
    expect((await store.list())[0]).toMatchObject({ reason: 'budget_exhausted' }); // kept

    expect(await store.schedule(scheduled('portal_b', Date.now() - 1))).toBe(true);
    const taken = await store.takeDue(10, NO_LIMIT);
    expect(taken.jobs.map((j) => j.portalSessionId).sort()).toEqual(['portal_a', 'portal_b']);
    await store.schedule(scheduled('portal_b', later));
    await store.add({ ...scheduled('portal_b', Date.now()), attempts: 1, reason: 'budget_exhausted' });
    expect(await client.hGet(`${prefix}leases`, 'portal_b')).toBeTruthy(); // still the taker's
    // Still the scheduled logout: no attempt, reason idle (the stored value starts "<attempts> <reason> ").
    expect(await client.hGet(`${prefix}jobs`, 'portal_b')).toMatch(/^0 idle /);
    expect((await store.list()).find((j) => j.portalSessionId === 'portal_b')).toMatchObject({
      reason: 'idle',
      attempts: 0,
    });
  });

  it('postpones scheduled logouts later, never earlier, never past their latest time, and leaves the rest', async () => {
    const store = newStore();
    const now = Date.now();
    await store.schedule(scheduled('portal_idle', now + 10_000));
    await store.schedule(scheduled('portal_capped', now + 10_000, { latestAt: now + 15_000 }));
    await store.schedule(scheduled('portal_late', now + 50_000));
    await store.add({ ...scheduled('portal_deferred', now + 10_000), attempts: 1, reason: 'circuit_open' });
    await store.postpone(
      ['portal_idle', 'portal_capped', 'portal_late', 'portal_deferred', 'portal_none'],
      now + 20_000,
    );
    near(await scoreOf('portal_idle'), now + 20_000);
    near(await scoreOf('portal_capped'), now + 15_000);
    near(await scoreOf('portal_late'), now + 50_000);
    near(await scoreOf('portal_deferred'), now + 10_000);
    expect(await client.hExists(`${prefix}jobs`, 'portal_none')).toBe(0);
    // The keys live at least as long as the postponed jobs need.
    expect(await client.pTTL(`${prefix}jobs`)).toBeGreaterThan(20_000 + 60_000);
  });

  it('cancels the jobs of ended portal sessions, except one handed over', async () => {
    const store = newStore();
    const now = Date.now();
    await store.schedule(scheduled('portal_x', now + 60_000));
    await store.schedule(scheduled('portal_y', now - 1));
    await store.takeDue(10, NO_LIMIT); // portal_y is handed over
    await store.cancel(['portal_x', 'portal_y', 'portal_unknown']);
    expect(await client.hKeys(`${prefix}jobs`)).toEqual(['portal_y']);
    // portal_y is in no lane while handed over, portal_x is gone from its lane.
    expect(await client.zRange(`${prefix}scheduled:${SITE}`, 0, -1)).toEqual([]);
    expect(await client.zRange(`${prefix}leased`, 0, -1)).toEqual(['portal_y']);
  });

  it('leaves a tenth of its room to deferrals', async () => {
    const store = newStore({ maxQueued: 10 });
    const later = Date.now() + 60_000;
    for (let i = 0; i < 9; i++) expect(await store.schedule(scheduled(`portal_s${i}`, later))).toBe(true);
    expect(await store.schedule(scheduled('portal_s9', later))).toBe(false);
    expect(await store.add({ ...scheduled('portal_d', later), attempts: 1, reason: 'budget_exhausted' })).toBe(true);
  });
});

describeRedis('instances on one Redis store', () => {
  function instance(env: Record<string, string>): Instance {
    const started = startInstance('test/fixtures/redis-instance.ts', {
      REDIS_URL: redis.url,
      PREFIX: prefix,
      BASE_URL: emulator.baseUrl('acme-test'),
      API_KEY,
      ...env,
    });
    running.push(started);
    return started;
  }
  const portOf = async (i: Instance) => Number((await i.waitForLine((l) => 'port' in l)).port);
  const openPortal = () => {
    const portal = emulator.createSession({ customerId: 'cus_expiry_redis' });
    emulator.openSession(portal.id);
    return portal.id;
  };
  const call = async (port: number, method: string, path: string, id: string) => {
    const res = await fetch(`http://127.0.0.1:${port}${path}`, { method, headers: { 'x-portal-session': id } });
    expect(res.status).toBe(200);
    return (await res.json()) as { at: number };
  };

  it('the instance that scheduled the logout is killed; the other ends the portal session on time', async () => {
    const MAX_AGE_MS = 6000;
    const a = instance({ MAX_AGE_MS: String(MAX_AGE_MS) });
    const b = instance({ MAX_AGE_MS: String(MAX_AGE_MS) });
    const [portA] = await Promise.all([portOf(a), portOf(b)]);
    const id = openPortal();
    const { at: rememberedAt } = await call(portA, 'POST', '/remember', id);
    await a.kill('SIGKILL');
    expect(await client.hLen(`${prefix}jobs`)).toBe(1);

    const final = await b.waitForLine((l) => l.final === hashPortalSessionId(id), 20_000);
    expect(final).toMatchObject({ status: 'logged_out', reason: 'portal_max_age' });
    const [logout] = emulator.logoutRequests(id);
    const late = logout.at - (rememberedAt + MAX_AGE_MS);
    process.stdout.write(`scheduled logout made by the other instance ${late} ms after its time\n`);
    expect(late).toBeGreaterThanOrEqual(-50); // not before (the clocks are one machine's)
    expect(late).toBeLessThan(2500); // the other instance looks at the store every 5 s, and at the due time
    expect(emulator.getSession(id)?.status).toBe('logged_out');
    expect(emulator.logoutRequests(id)).toHaveLength(1);
    let left = -1;
    await waitFor(
      () => {
        void client.hLen(`${prefix}jobs`).then((n) => (left = n));
        return left === 0;
      },
      5000,
      'the job to leave Redis',
    );
  });

  it('a scheduled logout due at a fraction of a millisecond is kept in Redis, and ended by the other instance once the first is killed', async () => {
    // Activity written every 500.5 ms puts the idle logout's due time (and first attempt) at a fraction of a
    // millisecond; the maximum age is one too. Redis refuses a fraction for an expiry: a script that sent one
    // failed halfway, the job was kept in the first process's memory only, and lost with it.
    const env = { IDLE_MS: '4000', ACTIVITY_MS: '500.5', MAX_AGE_MS: '60000.5' };
    const a = instance(env);
    const b = instance(env);
    const [portA] = await Promise.all([portOf(a), portOf(b)]);
    const id = openPortal();
    const { at: rememberedAt } = await call(portA, 'POST', '/remember', id); // due 4500.5 ms after this
    await a.kill('SIGKILL');
    expect(await client.hLen(`${prefix}jobs`)).toBe(1);
    // The script ran to its end: every key of the store got its expiry.
    for (const key of ['jobs', 'since', 'sites', `scheduled:${hashSite(emulator.baseUrl('acme-test'))}`])
      expect(await client.pTTL(`${prefix}${key}`)).toBeGreaterThan(60_000);

    const final = await b.waitForLine((l) => l.final === hashPortalSessionId(id), 20_000);
    expect(final).toMatchObject({ status: 'logged_out', reason: 'idle' });
    const [logout] = emulator.logoutRequests(id);
    const late = logout.at - (rememberedAt + 4500.5);
    expect(late).toBeGreaterThanOrEqual(-50); // not before its time
    expect(late).toBeLessThan(5000 + 1000); // the other instance looks at the store every 5 s at least
    expect(emulator.logoutRequests(id)).toHaveLength(1);
    expect(emulator.getSession(id)?.status).toBe('logged_out');
  });

  it('activity on one instance postpones an idle logout another scheduled', async () => {
    const env = { IDLE_MS: '4000', ACTIVITY_MS: '500' };
    const a = instance(env);
    const b = instance(env);
    const [portA, portB] = await Promise.all([portOf(a), portOf(b)]);
    const id = openPortal();
    await call(portA, 'POST', '/remember', id); // due in 4.5 s without activity
    await new Promise((resolve) => setTimeout(resolve, 3000));
    const { at: activeAt } = await call(portB, 'GET', '/account', id); // now due 4.5 s after this
    await waitFor(() => emulator.logoutRequests(id).length > 0, 15_000, 'the idle logout');
    const [logout] = emulator.logoutRequests(id);
    expect(logout.at - activeAt).toBeGreaterThanOrEqual(4500 - 50);
    expect(logout.at - activeAt).toBeLessThan(4500 + 2500);
    const final = await Promise.race([a, b].map((i) => i.waitForLine((l) => l.final === hashPortalSessionId(id))));
    expect(final).toMatchObject({ status: 'logged_out', reason: 'idle' });
  });
});
