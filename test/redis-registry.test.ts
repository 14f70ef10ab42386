/**
 * The registry of open portal sessions on a real redis-server: the shared registry contract
 * (test/contracts/registry.ts) with node-redis 6 and once with node-redis 5, then what is Redis's own: what
 * it keeps and drops, sites and customers apart, that no key holds a customer ID, expiry, a Redis that
 * stops answering, and two app instances (child processes) sharing it.
 */
import request from 'supertest';
import { createClient as createClient5 } from 'redis5';
import { RedisPortalSessionRegistry } from '../src/redis';
import type { RegisteredPortalSession } from '../src/registry/registry';
import { siteKey } from '../src/reliability/rate-limit';
import { describeRegistryContract, SITE_A, SITE_B } from './contracts/registry';
import { createEverywhereApp } from './helpers/everywhere-app';
import { FAST } from './helpers/harness';
import { startInstance, type Instance } from './helpers/instances';
import { captureLogs } from './helpers/log-capture';
import { redisEmulatorSuite } from './helpers/redis-suite';
import { describeWithServer } from './helpers/servers';

const describeRedis = describeWithServer('redis-server');

jest.setTimeout(40_000);

const API_KEY = 'test_REDIS_REGISTRY_11';
const suite = redisEmulatorSuite(API_KEY, 'reg');

const entry = (
  id: string,
  customerId = 'cus_1',
  extra: { businessEntityId?: string; rememberedAt?: number; site?: string } = {},
): RegisteredPortalSession => ({
  id,
  customerId,
  site: extra.site ?? SITE_A,
  rememberedAt: extra.rememberedAt ?? Date.now(),
  ...(extra.businessEntityId === undefined ? {} : { businessEntityId: extra.businessEntityId }),
});

const ids = async (registry: RedisPortalSessionRegistry, customerId = 'cus_1', site = SITE_A) =>
  (await registry.list(site, customerId)).map((e) => e.id);

let count = 0;
describeRedis('the registry contract on Redis', () => {
  describeRegistryContract('RedisPortalSessionRegistry (node-redis 6)', {
    make: (bounds) => new RedisPortalSessionRegistry(suite.client, { prefix: `{regc${++count}}:`, ...bounds }),
  });

  describe('with node-redis 5', () => {
    let v5: ReturnType<typeof createClient5>;
    beforeAll(async () => {
      v5 = createClient5({ url: suite.redis.url });
      v5.on('error', () => undefined);
      await v5.connect();
    });
    afterAll(async () => {
      await v5.close();
    });
    describeRegistryContract('RedisPortalSessionRegistry (node-redis 5)', {
      make: (bounds) => new RedisPortalSessionRegistry(v5, { prefix: `{regc${++count}}:`, ...bounds }),
    });
  });
});

describeRedis('RedisPortalSessionRegistry', () => {
  it("lists a customer's portal sessions oldest first, with entity and time, and forgets removed ones by ID", async () => {
    const registry = new RedisPortalSessionRegistry(suite.client, { prefix: suite.prefix });
    const at = Date.now();
    await registry.add(entry('p1', 'cus_1', { businessEntityId: 'acme-us', rememberedAt: at - 2 }));
    await registry.add(entry('p2', 'cus_2'));
    await registry.add(entry('p3', 'cus_1', { rememberedAt: at }));
    expect(await registry.list(SITE_A, 'cus_1')).toEqual([
      { id: 'p1', customerId: 'cus_1', site: SITE_A, businessEntityId: 'acme-us', rememberedAt: at - 2 },
      { id: 'p3', customerId: 'cus_1', site: SITE_A, rememberedAt: at },
    ]);
    await registry.remove(SITE_A, ['p1', 'p2', 'never-added']);
    expect(await ids(registry)).toEqual(['p3']);
    expect(await ids(registry, 'cus_2')).toEqual([]);
    expect(await registry.size()).toBe(1);
  });

  it('keeps customers whose IDs share a beginning apart, on every site', async () => {
    const registry = new RedisPortalSessionRegistry(suite.client, { prefix: suite.prefix });
    const customers = ['cus_1', 'cus_10', 'cus_1!', 'cus_1-', 'cus', '[cus_1', '(cus_1', 'a@b.c', '%d+'];
    for (const site of [SITE_A, SITE_B])
      for (const [i, customerId] of customers.entries()) await registry.add(entry(`p${i}`, customerId, { site }));
    for (const site of [SITE_A, SITE_B])
      for (const [i, customerId] of customers.entries())
        expect(await ids(registry, customerId, site)).toEqual([`p${i}`]);
    // Sites whose tags share a beginning are apart too.
    await registry.add(entry('p_short', 'cus_1', { site: 'aaaa' }));
    await registry.add(entry('p_long', 'cus_1', { site: 'aaaa0' }));
    expect(await ids(registry, 'cus_1', 'aaaa')).toEqual(['p_short']);
    expect(await ids(registry, 'cus_1', 'aaaa0')).toEqual(['p_long']);
  });

  it('puts no customer ID in a key, and every key expires with the newest entry', async () => {
    const registry = new RedisPortalSessionRegistry(suite.client, { prefix: suite.prefix, ttlMs: 3_600_000 });
    await registry.add(entry('p1', 'cus_secret_customer'));
    await registry.add(entry('p2', 'cus_secret_customer', { site: SITE_B }));
    const keys = await suite.client.keys(`${suite.prefix}*`);
    expect(keys.sort()).toEqual([`${suite.prefix}by-customer`, `${suite.prefix}by-time`, `${suite.prefix}entries`]);
    for (const key of keys) {
      const ttl = await suite.client.pTTL(key);
      expect(ttl).toBeGreaterThan(3_500_000);
      expect(ttl).toBeLessThanOrEqual(3_600_000);
    }
  });

  it('moves a portal session remembered again to its newest place and customer', async () => {
    const registry = new RedisPortalSessionRegistry(suite.client, { prefix: suite.prefix });
    await registry.add(entry('p1', 'cus_1', { rememberedAt: Date.now() - 4000 }));
    await registry.add(entry('p2', 'cus_1', { rememberedAt: Date.now() - 1000 }));
    await registry.add(entry('p1', 'cus_1'));
    expect(await ids(registry)).toEqual(['p2', 'p1']);
    await registry.add(entry('p2', 'cus_2'));
    expect(await ids(registry)).toEqual(['p1']);
    expect(await ids(registry, 'cus_2')).toEqual(['p2']);
    expect(await registry.size()).toBe(2);
  });

  it("drops a customer's oldest past maxPerCustomer, and the oldest of anyone past maxEntries", async () => {
    const registry = new RedisPortalSessionRegistry(suite.client, {
      prefix: suite.prefix,
      maxPerCustomer: 2,
      maxEntries: 4,
    });
    const t = Date.now() - 10_000;
    expect((await registry.add(entry('a1', 'cus_a', { rememberedAt: t }))).dropped).toEqual([]);
    await registry.add(entry('a2', 'cus_a', { rememberedAt: t + 1 }));
    expect((await registry.add(entry('a3', 'cus_a', { rememberedAt: t + 2 }))).dropped).toEqual(['a1']);
    expect(await ids(registry, 'cus_a')).toEqual(['a2', 'a3']);
    await registry.add(entry('b1', 'cus_b', { rememberedAt: t + 3 }));
    await registry.add(entry('c1', 'cus_c', { rememberedAt: t + 4 }));
    expect((await registry.add(entry('d1', 'cus_d', { rememberedAt: t + 5 }))).dropped).toEqual(['a2']);
    expect(await registry.size()).toBe(4);
  });

  it('forgets portal sessions once their time to live has passed', async () => {
    const registry = new RedisPortalSessionRegistry(suite.client, { prefix: suite.prefix, ttlMs: 300 });
    await registry.add(entry('old'));
    await registry.add(entry('stale', 'cus_2'));
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(await ids(registry)).toEqual([]);
    await registry.add(entry('new', 'cus_3'));
    expect(await registry.size()).toBe(1); // the sweep at recording forgot the other customer's too
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(await suite.client.keys(`${suite.prefix}*`)).toEqual([]); // Redis itself let the keys go
  });

  it('refuses values that do not belong in Redis with a TypeError', async () => {
    const registry = new RedisPortalSessionRegistry(suite.client, { prefix: suite.prefix });
    await expect(registry.add(entry('p 1'))).rejects.toThrow(TypeError);
    await expect(registry.add(entry('p1', 'cus 1'))).rejects.toThrow(/customer ID must not contain whitespace/);
    await expect(registry.add(entry('p1', 'cus_1', { site: 'has space' }))).rejects.toThrow(/the site must be/);
    await expect(registry.add(entry('p1', 'cus_1', { site: '' }))).rejects.toThrow(TypeError);
    await expect(registry.list(SITE_A, '')).rejects.toThrow(/customer ID must not be empty/);
    await expect(registry.list('a b', 'cus_1')).rejects.toThrow(/the site must be/);
    expect(() => new RedisPortalSessionRegistry(suite.client, { prefix: 'has space' })).toThrow(/option prefix/);
    expect(() => new RedisPortalSessionRegistry({} as never)).toThrow(/pass a node-redis client/);
    expect(await suite.client.keys(`${suite.prefix}*`)).toEqual([]);
  });

  it('gives up on a Redis that does not answer within commandTimeoutMs', async () => {
    const registry = new RedisPortalSessionRegistry(suite.client, { prefix: suite.prefix, commandTimeoutMs: 200 });
    await registry.add(entry('p1'));
    suite.redis.freeze();
    try {
      const started = Date.now();
      await expect(registry.list(SITE_A, 'cus_1')).rejects.toThrow(/did not answer within 200 ms|aborted/i);
      expect(Date.now() - started).toBeLessThan(2000);
    } finally {
      suite.redis.thaw();
    }
  });
});

describeRedis('the middleware on the Redis registry', () => {
  it('a frozen Redis: the logout still ends this app session’s portal session and calls the handler', async () => {
    const logs = captureLogs();
    const registry = new RedisPortalSessionRegistry(suite.client, { prefix: suite.prefix, commandTimeoutMs: 200 });
    const { app, portalLogout, handlerCalls } = createEverywhereApp({
      apiKey: API_KEY,
      baseUrl: suite.emulator.baseUrl('acme-test'),
      ...FAST,
      registry,
      logger: logs.logger,
    });
    try {
      const agent = request.agent(app);
      await agent.post('/login').send({ email: 'a@example.com', customerId: 'cus_frozen' }).expect(200);
      const { id } = (await agent.post('/portal').send({}).expect(200)).body as { id: string };
      suite.redis.freeze();
      const res = await agent.post('/logout/everywhere').expect(200);
      suite.redis.thaw();
      expect(handlerCalls()).toBe(1);
      expect(suite.emulator.getSession(id)?.status).toBe('logged_out');
      expect(res.body.outcome).toMatchObject({ result: 'failed', error: { name: 'PortalSessionRegistryError' } });
      expect(logs.text()).toContain("could not read the customer's portal sessions from the registry");
    } finally {
      suite.redis.thaw();
      await portalLogout.close({ timeoutMs: 200 });
    }
  });
});

describeRedis('two instances sharing one Redis (child processes)', () => {
  function instance(): Instance {
    const started = startInstance('test/fixtures/everywhere-instance.ts', {
      REDIS_URL: suite.redis.url,
      PREFIX: suite.prefix,
      BASE_URL: suite.emulator.baseUrl('acme-test'),
      API_KEY,
    });
    suite.running.push(started);
    return started;
  }
  const urlOf = async (i: Instance) => `http://127.0.0.1:${Number((await i.waitForLine((l) => 'port' in l)).port)}`;

  it('a portal session opened through one instance is ended by logoutCustomer on the other', async () => {
    const [one, other] = [instance(), instance()];
    const [oneUrl, otherUrl] = await Promise.all([urlOf(one), urlOf(other)]);
    const device = request.agent(oneUrl);
    await device.post('/login').send({ email: 'a@example.com', customerId: 'cus_shared' }).expect(200);
    const { id } = (await device.post('/portal').send({}).expect(200)).body as { id: string };
    suite.emulator.openSession(id);
    const site = siteKey(suite.emulator.baseUrl('acme-test'));
    const registry = new RedisPortalSessionRegistry(suite.client, { prefix: suite.prefix });
    expect(await ids(registry, 'cus_shared', site)).toEqual([id]);

    const res = await request(otherUrl).post('/admin/logout-customer').send({ customerId: 'cus_shared' }).expect(200);
    expect(res.body.outcome).toMatchObject({ result: 'ended', portalSessions: [{ id, status: 'logged_out' }] });
    expect(suite.emulator.getSession(id)?.status).toBe('logged_out');
    expect(await registry.list(site, 'cus_shared')).toEqual([]);
  });

  it('"sign out of all devices" on one instance ends the portal session another device opened through the other', async () => {
    const [one, other] = [instance(), instance()];
    const [oneUrl, otherUrl] = await Promise.all([urlOf(one), urlOf(other)]);
    const laptop = request.agent(oneUrl);
    const phone = request.agent(otherUrl);
    const opened: string[] = [];
    for (const agent of [laptop, phone]) {
      await agent.post('/login').send({ email: 'a@example.com', customerId: 'cus_two_devices' }).expect(200);
      opened.push(((await agent.post('/portal').send({}).expect(200)).body as { id: string }).id);
    }
    const res = await phone.post('/logout/everywhere').expect(200);
    expect(res.body.outcome.result).toBe('ended');
    for (const id of opened) expect(suite.emulator.getSession(id)?.status).toBe('logged_out');
  });
});
