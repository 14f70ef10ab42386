/**
 * The Redis deferred-logout store against a real redis-server (started here on a free loopback port): the
 * shared store contract (test/contracts/deferred-store.ts) with node-redis 6 and once with node-redis 5,
 * then what is Redis's own: the stored layout, many takers at once, fencing, expiry of the keys, the shared
 * rate and sites that take turns however long a backlog, figures read from an index, whole milliseconds,
 * Redis's eviction policy, malformed data, and the clients it takes.
 */
import { createClient, createCluster } from 'redis';
import { createClient as createClient5 } from 'redis5';
import { RedisDeferredLogoutStore, type RedisClientLike } from '../src/redis';
import { ClockSkew, decodeJob, jobArguments, StoreClock } from '../src/redis/job-codec';
import { defineScript, runScript } from '../src/redis/scripts-runner';
import { CLOCK_PROBE } from '../src/redis/scripts/store/clock-1';
import type { DeferredLogoutJob, DueJobs } from '../src/queue/store';
import { drainRate } from '../src/reliability/rate-limit';
import { describeStoreContract } from './contracts/deferred-store';
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

const SITE = 'a1b2c3d4e5f60718';

function job(id: string, extra: Partial<DeferredLogoutJob> = {}): DeferredLogoutJob {
  return {
    portalSessionId: id,
    headers: { 'chargebee-request-origin-ip': '203.0.113.7', 'chargebee-request-origin-user': 'ann@example.com' },
    idempotencyKey: `key-${Buffer.from(id).toString('hex')}`,
    firstAttemptAt: Date.now(),
    attempts: 1,
    notBefore: Date.now() - 1,
    reason: 'budget_exhausted',
    site: SITE,
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
const NO_LIMIT = { perMinute: 0, burst: 0 };
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describeRedis('the store contract on Redis', () => {
  describeStoreContract('RedisDeferredLogoutStore (node-redis 6)', {
    shared: true,
    make: ({ maxQueued, leaseMs }) => newStore({ maxQueued, leaseMs }).store,
  });

  describe('with node-redis 5', () => {
    let v5: ReturnType<typeof createClient5>;
    beforeAll(async () => {
      v5 = createClient5({ url: server.url });
      v5.on('error', () => undefined);
      await v5.connect();
    });
    afterAll(async () => {
      await v5.close();
    });
    describeStoreContract('RedisDeferredLogoutStore (node-redis 5)', {
      shared: true,
      make: ({ maxQueued, leaseMs }) => newStore({ maxQueued, leaseMs }, v5).store,
    });
  });
});

describeRedis('RedisDeferredLogoutStore', () => {
  it('keeps a job round trip: every field the next attempt needs, nothing else', async () => {
    const { store } = newStore();
    const original = job('portal_a', {
      businessEntityId: 'acme-eu',
      lastError: 'connect ECONNREFUSED',
      traceparent: `00-${'a'.repeat(32)}-${'b'.repeat(16)}-01`,
      latestAt: Date.now() + 60_000,
    });
    expect(await store.add(original)).toBe(true);
    const [taken] = (await store.takeDue(10, NO_LIMIT)).jobs;
    const { lease, notBefore, firstAttemptAt, latestAt, ...rest } = taken;
    expect(typeof lease).toBe('string');
    // Times come back on this process's clock, through Redis's: within a few milliseconds.
    expect(Math.abs(notBefore - original.notBefore)).toBeLessThan(50);
    expect(Math.abs(firstAttemptAt - original.firstAttemptAt)).toBeLessThan(50);
    expect(Math.abs(latestAt! - original.latestAt!)).toBeLessThan(50);
    const { lastError, notBefore: _n, firstAttemptAt: _f, latestAt: _l, ...expected } = original;
    expect(lastError).toBeDefined();
    expect(rest).toEqual(expected);
    const stored = await client.hGet(`${store.prefix}jobs`, 'portal_a');
    expect(stored).not.toContain('ECONNREFUSED');
    expect(stored).not.toContain('portal_a'); // the ID is the field, not repeated in the value
  });

  it('keeps a well-formed traceparent only; a malformed one is dropped and the job kept', () => {
    const args = jobArguments(
      job('portal_t', { traceparent: '00-not-a-trace-01' }),
      new StoreClock(Date.now(), new ClockSkew()),
    );
    const body = JSON.parse(String(args[6])) as object;
    expect(body).not.toHaveProperty('t');
    const text = `1 budget_exhausted ${SITE} 1000 - ${JSON.stringify({ ...body, t: '<script>' })}`;
    const decoded = decodeJob('portal_t', text, 0, (at) => at);
    expect(decoded?.portalSessionId).toBe('portal_t');
    expect(decoded).not.toHaveProperty('traceparent');
  });

  it('keeps a job without a site in one shared line, with its own rate, pause and wake-up', async () => {
    const { store } = newStore();
    const now = Date.now();
    await store.add(job('portal_nosite', { site: undefined, notBefore: now + 3_600_000 }));
    await store.add(job('portal_nosite_due', { site: undefined }));
    await store.pauseSite('', Date.now() + 3_600_000);
    const paused = await store.takeDue(10, NO_LIMIT);
    expect(paused.jobs).toEqual([]);
    expect(paused.nextAt! - Date.now()).toBeGreaterThan(3_500_000);
    expect(await client.zCard(`${store.prefix}due:`)).toBe(2);
    expect(await store.wakeSite('')).toBe(1);
    const other = newStore({ prefix: store.prefix.replace('{', '{other-') }).store;
    await other.add(job('portal_nosite_other', { site: undefined }));
    const [taken] = (await other.takeDue(10, NO_LIMIT)).jobs;
    expect(taken).not.toHaveProperty('site');
    expect(taken.portalSessionId).toBe('portal_nosite_other');
    expect(await store.size()).toBe(2);
  });

  it("keeps the order and the value of an instance's times, whatever time each call takes to reach Redis", async () => {
    // Each call waits 0 to 40 ms before it leaves: times put on Redis's clock with each call's own TIME
    // would move by that much, and times a millisecond apart would change places.
    const slow: RedisClientLike = {
      evalSha: async (sha, options) => {
        await sleep(Math.random() * 40);
        return client.evalSha(sha, options);
      },
      eval: (source, options) => client.eval(source, options),
    };
    const { store } = newStore({}, slow);
    const now = Date.now();
    const written = Array.from({ length: 30 }, (_, i) => job(`portal_order_${i}`, { notBefore: now - 5000 + i }));
    for (const j of written) await store.add(j);
    const taken = (await store.takeDue(30, NO_LIMIT)).jobs;
    expect(taken.map((j) => j.portalSessionId)).toEqual(written.map((j) => j.portalSessionId));
    expect(taken.map((j) => j.notBefore)).toEqual(written.map((j) => j.notBefore));
    expect(taken.map((j) => j.firstAttemptAt)).toEqual(written.map((j) => j.firstAttemptAt));
  });

  it('estimates the skew from the tightest probe, and follows a clock that steps once a reply shows it', () => {
    const skew = new ClockSkew();
    expect(skew.estimate).toBeUndefined();
    skew.calibrate([
      { clock: 1_000_130, sentAt: 1_000_000, receivedAt: 1_000_060 }, // the first may load the script
      { clock: 1_000_205, sentAt: 1_000_100, receivedAt: 1_000_110 }, // Redis's clock ran 100 ms ahead
    ]);
    expect(skew.estimate).toBe(100);
    skew.observe(2_000_103, 2_000_000, 2_000_002); // within the margin: kept, times keep their order
    expect(skew.estimate).toBe(100);
    expect(skew.toCaller(2_000_100)).toBe(2_000_000);
    skew.observe(3_015_100, 3_000_000, 3_000_002); // ours stepped back 15 s
    expect(skew.estimate).toBe(15_099);
    expect(new StoreClock(3_000_000.4, skew).arguments).toEqual([3_000_000, 15_099]);
  });

  it('keeps one job per portal session: a second deferral of it keeps the queued one', async () => {
    const { store } = newStore();
    expect(await store.add(job('portal_a', { idempotencyKey: 'first' }))).toBe(true);
    expect(await store.add(job('portal_a', { idempotencyKey: 'second' }))).toBe(true);
    expect(await store.size()).toBe(1);
    const due = await store.takeDue(10, NO_LIMIT);
    expect(due.jobs.map((j) => j.idempotencyKey)).toEqual(['first']);
  });

  it('hands a due job to one taker only, even when many take at once', async () => {
    const { store } = newStore();
    for (let i = 0; i < 50; i++) await store.add(job(`portal_${i}`));
    const others = Array.from({ length: 5 }, () => new RedisDeferredLogoutStore(client, { prefix: store.prefix }));
    const takes = await Promise.all([store, ...others].map((s) => s.takeDue(20, NO_LIMIT)));
    const all = takes.flatMap((t) => t.jobs.map((j) => j.portalSessionId));
    expect(all).toHaveLength(50);
    expect(new Set(all).size).toBe(50);
    expect(await store.size()).toBe(50); // handed over, still kept until removed
  });

  it('waits for notBefore, and says when the next job is due', async () => {
    const { store } = newStore();
    const now = Date.now();
    await store.add(job('portal_later', { notBefore: now + 5000 }));
    const due = await store.takeDue(10, NO_LIMIT);
    expect(due.jobs).toEqual([]);
    expect(Math.abs(due.nextAt! - (now + 5000))).toBeLessThan(50);
  });

  it('hands a job out again once its lease has run out, and fences the late taker', async () => {
    const { store } = newStore({ leaseMs: 1000 });
    await store.add(job('portal_a'));
    const first = (await store.takeDue(10, NO_LIMIT)).jobs[0];
    expect((await store.takeDue(10, NO_LIMIT)).jobs).toEqual([]);
    await sleep(1050);
    const second = (await store.takeDue(10, NO_LIMIT)).jobs[0];
    expect(second.portalSessionId).toBe('portal_a');
    expect(second.lease).not.toBe(first.lease);
    // The first taker comes back late: its put-back and its giving up change nothing.
    expect(await store.add({ ...first, notBefore: Date.now() + 60_000, attempts: 9 })).toBe(true);
    await store.giveUp(first.portalSessionId, first.lease);
    expect(await store.size()).toBe(1);
    // The current taker puts it back: it is in line again, with its new attempt count.
    await store.add({ ...second, attempts: 3, notBefore: Date.now() - 1 });
    const third = (await store.takeDue(10, NO_LIMIT)).jobs[0];
    expect(third.attempts).toBe(3);
    await store.giveUp(third.portalSessionId, third.lease);
    expect(await store.size()).toBe(0);
  });

  it('refuses a new job past maxQueued, but always takes a put-back', async () => {
    const { store } = newStore({ maxQueued: 2 });
    expect(await store.add(job('portal_a'))).toBe(true);
    expect(await store.add(job('portal_b'))).toBe(true);
    expect(await store.add(job('portal_c'))).toBe(false);
    const [taken] = (await store.takeDue(1, NO_LIMIT)).jobs;
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
    // Every key of the store, the site's lane included, lives as long.
    for (const key of ['since', 'sites', `due:${SITE}`])
      expect(Math.abs((await client.pTTL(`${store.prefix}${key}`)) - newTtl)).toBeLessThan(100);
  });

  it('shares one rate per site between instances, and a pause', async () => {
    const { store } = newStore();
    const other = new RedisDeferredLogoutStore(client, { prefix: store.prefix });
    for (let i = 0; i < 10; i++) await store.add(job(`portal_s${i}`));
    await store.add(job('portal_other_site', { site: 'ffff0000ffff0000' }));
    const rate = { perMinute: 60, burst: 3 };
    const a = await store.takeDue(10, rate);
    const b = await other.takeDue(10, rate);
    const taken = [...a.jobs, ...b.jobs];
    // Three of the first site (its burst) and the one of the other site; the rest waits about a second.
    expect(taken.filter((j) => j.site === SITE)).toHaveLength(3);
    expect(taken.filter((j) => j.site === 'ffff0000ffff0000')).toHaveLength(1);
    expect(b.nextAt! - Date.now()).toBeGreaterThan(500);
    expect(b.nextAt! - Date.now()).toBeLessThanOrEqual(1100);

    // Paused for 4 s: a request the rate allows again after a second is still not made.
    await other.pauseSite(SITE, Date.now() + 4000);
    await sleep(1100);
    const paused = await store.takeDue(10, rate);
    expect(paused.jobs).toEqual([]);
    expect(paused.nextAt! - Date.now()).toBeGreaterThan(2000);
  });

  it("a site's backlog, paused or out of requests, never holds back another site's jobs however long it is", async () => {
    const { store } = newStore({ maxQueued: 10_000 });
    const other = new RedisDeferredLogoutStore(client, { prefix: store.prefix });
    const now = Date.now();
    // 3000 jobs of one site, all due before the other site's one job (the old take looked at the first
    // limit + 20 due jobs only, and held-back ones kept their place).
    const backlog = Array.from({ length: 3000 }, (_, i) => job(`portal_backlog_${i}`, { notBefore: now - 60_000 + i }));
    for (let i = 0; i < backlog.length; i += 200) await Promise.all(backlog.slice(i, i + 200).map((j) => store.add(j)));
    await store.add(job('portal_b', { site: 'bbbb0000bbbb0000', notBefore: now - 1 }));
    await other.pauseSite(SITE, Date.now() + 60_000);
    expect(ids(await store.takeDue(10, NO_LIMIT))).toEqual(['portal_b']);
    await store.add(job('portal_c', { site: 'cccc0000cccc0000', notBefore: now - 1 }));
    await store.add(job('portal_d', { site: 'dddd0000dddd0000', notBefore: now - 1 }));
    // Out of requests rather than paused: the same.
    const rate = drainRate(6); // one request, then one per 10 s
    expect(ids(await other.takeDue(10, rate))).toEqual(['portal_c', 'portal_d']);
    await store.add(job('portal_c2', { site: 'cccc0000cccc0000', notBefore: now - 1 }));
    await store.add(job('portal_e', { site: 'eeee0000eeee0000', notBefore: now - 1 }));
    expect(ids(await store.takeDue(10, rate))).toEqual(['portal_e']);
  });

  it('reads its figures from an index, over every job: one small reply, no job read', async () => {
    const { store } = newStore({ maxQueued: 10_000 });
    const replies: unknown[] = [];
    const recording: RedisClientLike = {
      evalSha: async (sha, options) => {
        const reply = await client.evalSha(sha, options);
        // A new store first probes Redis's clock (three calls that read no key).
        if (sha !== CLOCK_PROBE.sha) replies.push(reply);
        return reply;
      },
      eval: (source, options) => client.eval(source, options),
    };
    const watched = new RedisDeferredLogoutStore(recording, { prefix: store.prefix });
    const now = Date.now();
    // 1500 jobs; the one waiting longest is due last (the old figures looked at the first 1000 by due time).
    const jobs = Array.from({ length: 1500 }, (_, i) => job(`portal_f${i}`, { notBefore: now + 1000 + i }));
    jobs[1499].firstAttemptAt = now - 7_200_000;
    for (let i = 0; i < jobs.length; i += 250) await Promise.all(jobs.slice(i, i + 250).map((j) => store.add(j)));
    await store.schedule(job('portal_f_sched', { attempts: 0, reason: 'idle', notBefore: now + 3_600_000 }));
    const figures = await watched.figures();
    expect(figures.jobs).toBe(1501);
    expect(Math.abs(figures.oldestWaitingSince! - (now - 7_200_000))).toBeLessThan(50);
    expect(replies).toHaveLength(1);
    expect(JSON.stringify(replies[0])).not.toMatch(/ann@example\.com|203\.0\.113/);
    expect(replies[0]).toHaveLength(3);
  });

  it('sends Redis whole milliseconds only, whatever the times it is given', async () => {
    const { store } = newStore();
    store.attach({ maxAgeMs: 2500.5, log: captureLogs().logger });
    const now = Date.now() + 0.5;
    expect(
      await store.schedule(
        job('portal_sched', {
          attempts: 0,
          reason: 'idle',
          notBefore: now + 2500.5,
          firstAttemptAt: now + 2500.5,
          latestAt: now + 2500.5,
        }),
      ),
    ).toBe(true);
    expect(await store.add(job('portal_frac', { firstAttemptAt: now - 0.25, notBefore: now - 1000.75 }))).toBe(true);
    await store.postpone(['portal_sched'], now + 2400.5);
    await store.pauseSite('ffff', now + 100.5);
    const [taken] = (await store.takeDue(10.5, { perMinute: 0.5, burst: 1.5 })).jobs;
    expect(taken.portalSessionId).toBe('portal_frac');
    expect(await store.add({ ...taken, notBefore: now + 0.5 })).toBe(true);
    // Every script ran to its end: the jobs are in Redis, and every key got its expiry.
    expect(await client.hLen(`${store.prefix}jobs`)).toBe(2);
    for (const key of ['jobs', 'since', 'sites', `due:${SITE}`, `scheduled:${SITE}`])
      expect(await client.pTTL(`${store.prefix}${key}`)).toBeGreaterThan(60_000);
    for (const [, score] of (await client.zRangeWithScores(`${store.prefix}since`, 0, -1)).entries())
      expect(Number.isInteger(score.score)).toBe(true);
    // And the one loader refuses a fraction before Redis sees it.
    const script = defineScript('echo', 1, 'return ARGV[1]');
    await expect(runScript(client, script, ['{x}'], [1.5], 1000)).rejects.toThrow(RangeError);
    expect(await runScript(client, script, ['{x}'], [15], 1000)).toBe('15');
  });

  it('says nothing of a Redis that never evicts, and warns with the fix when it may evict keys', async () => {
    try {
      for (const policy of ['allkeys-lru', 'volatile-ttl']) {
        await client.configSet('maxmemory-policy', policy);
        const { logs } = newStore();
        await waitForLine(logs, /maxmemory-policy/);
        const [line] = logs.lines.filter((l) => /maxmemory-policy/.test(String(l.msg)));
        expect(line.level).toBe(40);
        expect(line.msg).toContain(`maxmemory-policy ${policy}`);
        expect(line.msg).toMatch(/Set maxmemory-policy noeviction/);
      }
      await client.configSet('maxmemory-policy', 'noeviction');
      const { logs, store } = newStore();
      await store.size();
      await sleep(50);
      expect(logs.lines).toEqual([]);
    } finally {
      await client.configSet('maxmemory-policy', 'noeviction');
    }
  });

  it('says nothing when it cannot read the eviction policy (INFO refused to its Redis user)', async () => {
    await client.configSet('maxmemory-policy', 'allkeys-lru');
    await client.sendCommand(['ACL', 'SETUSER', 'noinfo', 'on', '>secret', '~*', '+@all', '-info']);
    const limited = createClient({ url: server.url, username: 'noinfo', password: 'secret' });
    limited.on('error', () => undefined);
    await limited.connect();
    try {
      const { store, logs } = newStore({}, limited);
      expect(await store.add(job('portal_noinfo'))).toBe(true);
      await sleep(100);
      expect(logs.lines).toEqual([]);
    } finally {
      await limited.close();
      await client.configSet('maxmemory-policy', 'noeviction');
      await client.sendCommand(['ACL', 'DELUSER', 'noinfo']);
    }
  });

  it('drops malformed data under its prefix and goes on with the rest', async () => {
    const { store, logs } = newStore();
    await store.add(job('portal_good'));
    const jobs = `${store.prefix}jobs`;
    const lane = `${store.prefix}due:${SITE}`;
    await client.hSet(jobs, {
      'bad id!': '{}',
      portal_junk: '{not json',
      portal_wrong: '{"s":"","h":{"x":1}}', // this package's old layout
    });
    await client.zAdd(lane, [
      { score: 0, value: 'bad id!' },
      { score: 0, value: 'portal_junk' },
      { score: 0, value: 'portal_wrong' },
      { score: 0, value: 'portal_ghost' }, // no job behind it
    ]);
    await client.zAdd(`${store.prefix}sites`, { score: 0, value: SITE });
    const taken = await store.takeDue(10, NO_LIMIT);
    expect(ids(taken)).toEqual(['portal_good']);
    expect(await store.size()).toBe(1);
    expect(await client.zCard(lane)).toBe(0);
    expect(await client.zCard(`${store.prefix}leased`)).toBe(1);
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
      // The per-site lanes, derived in the scripts from their keys, carry the client's prefix too.
      expect(await client.zScore(`app1:${onPrefixed.prefix}due:${SITE}`, 'portal_p')).not.toBeNull();
      expect(ids(await onPrefixed.takeDue(5, NO_LIMIT))).toEqual(['portal_p']);

      const onV5 = newStore({}, v5).store;
      await onV5.add(job('portal_v5'));
      expect(ids(await onV5.takeDue(5, NO_LIMIT))).toEqual(['portal_v5']);
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
    // A plain client needs no hash tag: only a Cluster client does (test/redis-cluster.test.ts).
    expect(new RedisDeferredLogoutStore(client, { prefix: 'myapp:deferred:' }).prefix).toBe('myapp:deferred:');
  });
});

async function waitForLine(logs: ReturnType<typeof captureLogs>, pattern: RegExp): Promise<void> {
  for (const until = Date.now() + 2000; Date.now() < until; await sleep(10))
    if (logs.lines.some((l) => pattern.test(String(l.msg)))) return;
  throw new Error(`no log line matching ${pattern}`);
}
