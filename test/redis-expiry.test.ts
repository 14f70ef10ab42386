/**
 * Scheduled logouts (option `expiry`) on the Redis store, against a real redis-server: the store's
 * schedule, postpone and cancel scripts, then app instances as real child processes: a process that
 * scheduled a logout is killed and another ends the portal session on time; activity on one instance
 * postpones an idle logout that another scheduled.
 */
import { createClient } from 'redis';
import { hashPortalSessionId } from '../src';
import { RedisDeferredLogoutStore } from '../src/redis';
import type { DeferredLogoutJob } from '../src/queue/store';
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
    site: 'a1b2c3d4e5f60718',
    ...extra,
  };
}

const scoreOf = async (id: string) => Number(await client.zScore(`${prefix}due`, id));

describeRedis('RedisDeferredLogoutStore: scheduled logouts', () => {
  it('keeps a scheduled logout round trip, with its reason and latest time', async () => {
    const store = newStore();
    const now = Date.now();
    expect(await store.schedule(scheduled('portal_r', now - 1, { latestAt: now + 5000 }))).toBe(true);
    const [taken] = (await store.takeDue(now, 10)).jobs;
    expect(taken).toMatchObject({
      portalSessionId: 'portal_r',
      reason: 'idle',
      attempts: 0,
      latestAt: now + 5000,
      headers: { 'chargebee-business-entity-id': 'acme-eu' },
    });
  });

  it('a deferral replaces a scheduled logout; a schedule never replaces a deferral, nor a job handed over', async () => {
    const store = newStore();
    const later = Date.now() + 60_000;
    expect(await store.schedule(scheduled('portal_a', later))).toBe(true);
    expect(await store.schedule(scheduled('portal_a', later + 1000))).toBe(true); // a new schedule replaces it
    expect(await scoreOf('portal_a')).toBe(later + 1000);
    const deferral = { ...scheduled('portal_a', Date.now() - 1), attempts: 2, reason: 'budget_exhausted' as const };
    expect(await store.add(deferral)).toBe(true);
    expect((await store.list())[0]).toMatchObject({ reason: 'budget_exhausted', attempts: 2 });
    expect(await store.schedule(scheduled('portal_a', later))).toBe(true);
    expect((await store.list())[0]).toMatchObject({ reason: 'budget_exhausted' }); // kept

    expect(await store.schedule(scheduled('portal_b', Date.now() - 1))).toBe(true);
    const taken = await store.takeDue(Date.now(), 10);
    expect(taken.jobs.map((j) => j.portalSessionId).sort()).toEqual(['portal_a', 'portal_b']);
    await store.schedule(scheduled('portal_b', later));
    await store.add({ ...scheduled('portal_b', Date.now()), attempts: 1, reason: 'budget_exhausted' });
    expect(await client.hGet(`${prefix}leases`, 'portal_b')).toBeTruthy(); // still the taker's
    expect(JSON.parse((await client.hGet(`${prefix}jobs`, 'portal_b'))!)).toMatchObject({ r: 'idle', a: 0 });
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
    expect(await scoreOf('portal_idle')).toBe(now + 20_000);
    expect(await scoreOf('portal_capped')).toBe(now + 15_000);
    expect(await scoreOf('portal_late')).toBe(now + 50_000);
    expect(await scoreOf('portal_deferred')).toBe(now + 10_000);
    expect(await client.hExists(`${prefix}jobs`, 'portal_none')).toBe(0);
    // The keys live at least as long as the postponed jobs need.
    expect(await client.pTTL(`${prefix}jobs`)).toBeGreaterThan(20_000 + 60_000);
  });

  it('cancels the jobs of ended portal sessions, except one handed over', async () => {
    const store = newStore();
    const now = Date.now();
    await store.schedule(scheduled('portal_x', now + 60_000));
    await store.schedule(scheduled('portal_y', now - 1));
    await store.takeDue(now, 10); // portal_y is handed over
    await store.cancel(['portal_x', 'portal_y', 'portal_unknown']);
    expect(await client.hKeys(`${prefix}jobs`)).toEqual(['portal_y']);
    expect(await client.zRange(`${prefix}due`, 0, -1)).toEqual(['portal_y']);
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
