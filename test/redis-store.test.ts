/**
 * The Redis deferred-logout store against a real redis-server (started here on a free loopback port):
 * leases, fencing, one job per portal session, the shared rate, expiry, bounds, malformed data, and
 * both node-redis majors.
 */
import { createClient, createCluster } from 'redis';
import { createClient as createClient5 } from 'redis5';
import { RedisDeferredLogoutStore, type RedisClientLike } from '../src/redis';
import { decodeJob, encodeJob } from '../src/redis/job-codec';
import type { DeferredLogoutJob, DueJobs } from '../src/queue/store';
import { captureLogs } from './helpers/log-capture';
import { startRedisServer, type RedisServer } from './helpers/redis-server';
import { describeWithServer } from './helpers/servers';

const describeRedis = describeWithServer('redis-server');

let server: RedisServer;
let client: ReturnType<typeof createClient>;
let prefixCount = 0;

beforeAll(async () => {
  server = await startRedisServer();
  client = createClient({ url: server.url });
  client.on('error', () => undefined);
  await client.connect();
});
afterAll(async () => {
  await client.close();
  await server.close();
});

function job(id: string, extra: Partial<DeferredLogoutJob> = {}): DeferredLogoutJob {
  return {
    portalSessionId: id,
    headers: { 'chargebee-request-origin-ip': '203.0.113.7', 'chargebee-request-origin-user': 'ann@example.com' },
    idempotencyKey: `key-${Buffer.from(id).toString('hex')}`,
    firstAttemptAt: Date.now(),
    attempts: 1,
    notBefore: Date.now() - 1,
    reason: 'budget_exhausted',
    site: 'a1b2c3d4e5f60718',
    ...extra,
  };
}

/** A store on its own prefix, so that tests do not see each other's jobs. */
function newStore(
  options: ConstructorParameters<typeof RedisDeferredLogoutStore>[1] = {},
  on: RedisClientLike = client,
) {
  const logs = captureLogs();
  const store = new RedisDeferredLogoutStore(on, { prefix: `{t${++prefixCount}}:`, ...options });
  store.attach({ maxAgeMs: 60_000, log: logs.logger });
  return { store, logs };
}

const ids = (due: DueJobs) => due.jobs.map((j) => j.portalSessionId).sort();

describeRedis('RedisDeferredLogoutStore', () => {
  it('keeps a job round trip: every field the next attempt needs, nothing else', async () => {
    const { store } = newStore();
    const original = job('portal_a', {
      businessEntityId: 'acme-eu',
      lastError: 'connect ECONNREFUSED',
      traceparent: `00-${'a'.repeat(32)}-${'b'.repeat(16)}-01`,
    });
    expect(await store.add(original)).toBe(true);
    const [taken] = (await store.takeDue(Date.now(), 10)).jobs;
    const { lease, notBefore, ...rest } = taken;
    expect(typeof lease).toBe('string');
    expect(notBefore).toBeGreaterThan(0);
    const { lastError, notBefore: _n, ...expected } = original;
    expect(lastError).toBeDefined();
    expect(rest).toEqual(expected);
    const stored = await client.hGet(`${store.prefix}jobs`, 'portal_a');
    expect(stored).not.toContain('ECONNREFUSED');
    expect(stored).not.toContain('portal_a'); // the ID is the field, not repeated in the value
  });

  it('keeps a well-formed traceparent only; a malformed one is dropped and the job kept', () => {
    const stored = JSON.parse(encodeJob(job('portal_t', { traceparent: '00-not-a-trace-01' }))) as object;
    expect(stored).not.toHaveProperty('t');
    const text = JSON.stringify({ ...stored, t: '<script>' });
    const decoded = decodeJob('portal_t', text, 0);
    expect(decoded?.portalSessionId).toBe('portal_t');
    expect(decoded).not.toHaveProperty('traceparent');
  });

  it('keeps one job per portal session: a second deferral of it keeps the queued one', async () => {
    const { store } = newStore();
    expect(await store.add(job('portal_a', { idempotencyKey: 'first' }))).toBe(true);
    expect(await store.add(job('portal_a', { idempotencyKey: 'second' }))).toBe(true);
    expect(await store.size()).toBe(1);
    const due = await store.takeDue(Date.now(), 10);
    expect(due.jobs.map((j) => j.idempotencyKey)).toEqual(['first']);
  });

  it('hands a due job to one taker only, even when many take at once', async () => {
    const { store } = newStore();
    for (let i = 0; i < 50; i++) await store.add(job(`portal_${i}`));
    const others = Array.from({ length: 5 }, () => new RedisDeferredLogoutStore(client, { prefix: store.prefix }));
    const takes = await Promise.all([store, ...others].map((s) => s.takeDue(Date.now(), 20)));
    const all = takes.flatMap((t) => t.jobs.map((j) => j.portalSessionId));
    expect(all).toHaveLength(50);
    expect(new Set(all).size).toBe(50);
    expect(await store.size()).toBe(50); // handed over, still kept until removed
  });

  it('waits for notBefore, and says when the next job is due', async () => {
    const { store } = newStore();
    const now = Date.now();
    await store.add(job('portal_later', { notBefore: now + 5000 }));
    const due = await store.takeDue(now, 10);
    expect(due.jobs).toEqual([]);
    expect(due.nextAt).toBe(now + 5000);
    expect(await store.nextDueAt()).toBe(now + 5000);
  });

  it('hands a job out again once its lease has run out, and fences the late taker', async () => {
    const { store } = newStore({ leaseMs: 1000 });
    await store.add(job('portal_a'));
    const first = (await store.takeDue(Date.now(), 10)).jobs[0];
    expect((await store.takeDue(Date.now(), 10)).jobs).toEqual([]);
    const second = (await store.takeDue(Date.now() + 1001, 10)).jobs[0];
    expect(second.portalSessionId).toBe('portal_a');
    expect(second.lease).not.toBe(first.lease);
    // The first taker comes back late: its put-back and its removal change nothing.
    expect(await store.add({ ...first, notBefore: Date.now() + 60_000, attempts: 9 })).toBe(true);
    await store.remove(first.portalSessionId, first.lease);
    expect(await store.size()).toBe(1);
    // The current taker puts it back: it is in line again, with its new attempt count.
    await store.add({ ...second, attempts: 3, notBefore: Date.now() - 1 });
    const third = (await store.takeDue(Date.now(), 10)).jobs[0];
    expect(third.attempts).toBe(3);
    await store.remove(third.portalSessionId, third.lease);
    expect(await store.size()).toBe(0);
  });

  it('refuses a new job past maxQueued, but always takes a put-back', async () => {
    const { store } = newStore({ maxQueued: 2 });
    expect(await store.add(job('portal_a'))).toBe(true);
    expect(await store.add(job('portal_b'))).toBe(true);
    expect(await store.add(job('portal_c'))).toBe(false);
    const [taken] = (await store.takeDue(Date.now(), 1)).jobs;
    expect(await store.add({ ...taken, attempts: 2 })).toBe(true);
    expect(await store.size()).toBe(2);
  });

  it('lets its keys expire after the newest job has reached its maximum age', async () => {
    const { store } = newStore();
    store.attach({ maxAgeMs: 1000, log: captureLogs().logger });
    const now = Date.now();
    await store.add(job('portal_old', { firstAttemptAt: now - 5000 }));
    const oldTtl = await client.pTTL(`${store.prefix}jobs`);
    await store.add(job('portal_new', { firstAttemptAt: now }));
    const newTtl = await client.pTTL(`${store.prefix}jobs`);
    expect(oldTtl).toBeGreaterThan(0);
    expect(newTtl).toBeGreaterThan(oldTtl + 4000);
    expect(newTtl).toBeLessThanOrEqual(1000 + 30_000 + 60_000);
  });

  it('shares one rate per site between instances, and a pause', async () => {
    const { store } = newStore();
    const other = new RedisDeferredLogoutStore(client, { prefix: store.prefix });
    for (let i = 0; i < 10; i++) await store.add(job(`portal_s${i}`));
    await store.add(job('portal_other_site', { site: 'ffff0000ffff0000' }));
    const rate = { perMinute: 60, burst: 3 };
    const a = await store.takeDue(Date.now(), 10, rate);
    const b = await other.takeDue(Date.now(), 10, rate);
    const taken = [...a.jobs, ...b.jobs];
    // Three of the first site (its burst) and the one of the other site; the rest waits about a second.
    expect(taken.filter((j) => j.site === 'a1b2c3d4e5f60718')).toHaveLength(3);
    expect(taken.filter((j) => j.site === 'ffff0000ffff0000')).toHaveLength(1);
    expect(b.nextAt! - Date.now()).toBeGreaterThan(500);
    expect(b.nextAt! - Date.now()).toBeLessThanOrEqual(1100);

    await other.pauseSite('a1b2c3d4e5f60718', Date.now() + 3000);
    const paused = await store.takeDue(Date.now() + 1500, 10, rate);
    expect(paused.jobs).toEqual([]);
    expect(paused.nextAt! - Date.now()).toBeGreaterThan(2000);
  });

  it('drops malformed data under its prefix and goes on with the rest', async () => {
    const { store, logs } = newStore();
    await store.add(job('portal_good'));
    const jobs = `${store.prefix}jobs`;
    const due = `${store.prefix}due`;
    await client.hSet(jobs, { 'bad id!': '{}', portal_junk: '{not json', portal_wrong: '{"s":"","h":{"x":1}}' });
    await client.zAdd(due, [
      { score: 0, value: 'bad id!' },
      { score: 0, value: 'portal_junk' },
      { score: 0, value: 'portal_wrong' },
      { score: 0, value: 'portal_ghost' }, // no job behind it
    ]);
    const taken = await store.takeDue(Date.now(), 10);
    expect(ids(taken)).toEqual(['portal_good']);
    expect(await store.size()).toBe(1);
    expect(await client.zCard(due)).toBe(1);
    expect(logs.lines.filter((l) => /malformed/.test(String(l.msg)))).toHaveLength(3);
    expect(logs.text()).not.toMatch(/portal_junk|portal_wrong|bad id/);
  });

  it('loads its scripts again after SCRIPT FLUSH', async () => {
    const { store } = newStore();
    await store.add(job('portal_a'));
    await client.scriptFlush();
    expect(await store.size()).toBe(1);
    expect(await store.add(job('portal_b'))).toBe(true);
  });

  it('works with a client key prefix (node-redis 6) and with node-redis 5', async () => {
    const prefixed = createClient({ url: server.url, keyPrefix: 'app1:' } as Parameters<typeof createClient>[0]);
    const v5 = createClient5({ url: server.url });
    for (const c of [prefixed, v5]) {
      c.on('error', () => undefined);
      await c.connect();
    }
    try {
      const onPrefixed = newStore({}, prefixed).store;
      await onPrefixed.add(job('portal_p'));
      expect(await client.hExists(`app1:${onPrefixed.prefix}jobs`, 'portal_p')).toBe(1);
      expect(ids(await onPrefixed.takeDue(Date.now(), 5))).toEqual(['portal_p']);

      const onV5 = newStore({}, v5).store;
      await onV5.add(job('portal_v5'));
      expect(ids(await onV5.takeDue(Date.now(), 5))).toEqual(['portal_v5']);
      expect(await onV5.size()).toBe(1);
    } finally {
      await prefixed.close();
      await v5.close();
    }
  });

  it('takes any node-redis client by its shape: RESP2 or RESP3, 5 or 6, a cluster', () => {
    const clients: RedisClientLike[] = [
      createClient({ RESP: 2 }),
      createClient({ RESP: 3 }),
      createClient5(),
      createCluster({ rootNodes: [{ url: server.url }] }),
    ];
    for (const c of clients) expect(new RedisDeferredLogoutStore(c).durable).toBe(true);
  });

  it('refuses a bad client or options with a TypeError naming them', () => {
    expect(() => new RedisDeferredLogoutStore({} as never)).toThrow(/pass a node-redis client/);
    expect(() => new RedisDeferredLogoutStore(client, { prefix: 'has space' })).toThrow(/option prefix/);
    expect(() => new RedisDeferredLogoutStore(client, { leaseMs: 10 })).toThrow(/option leaseMs/);
    expect(() => new RedisDeferredLogoutStore(client, { maxQueued: 0 })).toThrow(/option maxQueued/);
  });
});
