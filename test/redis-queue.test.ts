/**
 * The middleware's deferred queue on the Redis store, against a real redis-server (append-only, in a
 * temporary directory) and the emulator: Redis untouched while Chargebee answers, Redis stopped, frozen or
 * restarted while logouts are deferred, a full store, shutdown, and junk under the store's prefix.
 */
import { createClient } from 'redis';
import { RedisDeferredLogoutStore, type RedisClientLike } from '../src/redis';
import { FIGURES } from '../src/redis/scripts/store/figures-2';
import { LIST } from '../src/redis/scripts/store/list-7';
import { emulatorSuite, FAST, waitFor } from './helpers/harness';
import { startRedisServer, type RedisServer } from './helpers/redis-server';
import { describeWithServer } from './helpers/servers';

const describeRedis = describeWithServer('redis-server');

jest.setTimeout(30_000);

const API_KEY = 'test_REDIS_QUEUE';
const suite = emulatorSuite(API_KEY, 500);
let redis: RedisServer;
let client: ReturnType<typeof createClient>;
let prefixCount = 0;

beforeAll(async () => {
  redis = await startRedisServer({ persistent: true });
  client = createClient({ url: redis.url });
  client.on('error', () => undefined);
  await client.connect();
});
afterAll(async () => {
  await client.close();
  await redis.close();
});

/** A middleware on a Redis store of its own prefix; `calls` counts the store's Redis round trips. */
function setup(storeOptions: ConstructorParameters<typeof RedisDeferredLogoutStore>[1] = {}) {
  let calls = 0;
  const scripts: string[] = [];
  const counting: RedisClientLike = {
    evalSha: (sha, options) => (calls++, scripts.push(sha), client.evalSha(sha, options)),
    eval: (source, options) => (calls++, client.eval(source, options)),
  };
  const prefix = `{queue${++prefixCount}}:`;
  // A short lease: a take that Redis ran just before it went down is handed out again after it.
  const store = new RedisDeferredLogoutStore(counting, {
    prefix,
    commandTimeoutMs: 300,
    leaseMs: 2000,
    ...storeOptions,
  });
  // Retries while Chargebee is down spend the drain's rate too: a high one keeps these tests short.
  const h = suite.setup({ deferred: { ...FAST.deferred, store, ratePerMinute: 6000 } });
  return { ...h, store, prefix, calls: () => calls, scripts };
}

function openPortal(customerId: string): string {
  const portal = suite.emulator.createSession({ customerId });
  suite.emulator.openSession(portal.id);
  return portal.id;
}

const logoutFault = () => suite.emulator.injectFault({ match: { path: /\/logout$/ }, status: 503 });

describeRedis('the deferred queue on Redis', () => {
  it('leaves Redis alone while Chargebee answers', async () => {
    const h = setup();
    await new Promise((resolve) => setTimeout(resolve, 200)); // the queue's first look for jobs left by others
    const before = h.calls();
    for (let i = 0; i < 20; i++) {
      h.remember([openPortal(`cus_ok${i}`)]);
      expect((await h.logout()).outcome.result).toBe('ended');
    }
    // The only calls are the queue's own look for other instances' jobs, once every few seconds.
    expect(h.calls() - before).toBeLessThanOrEqual(2);
  });

  it('does not hold back logouts inside requests by the drain rate', async () => {
    const store = new RedisDeferredLogoutStore(client, { prefix: `{queue${++prefixCount}}:` });
    const h = suite.setup({ deferred: { ...FAST.deferred, store, ratePerMinute: 1 } });
    for (let i = 0; i < 5; i++) {
      h.remember([openPortal(`cus_inline${i}`)]);
      expect((await h.logout()).outcome.result).toBe('ended');
    }
    expect(suite.emulator.logoutRequests()).toHaveLength(5);
  });

  it('keeps a deferral in memory while Redis is down, moves it there when Redis is back, then ends it', async () => {
    const h = setup();
    const down = logoutFault();
    await redis.stop();
    try {
      const id = openPortal('cus_redis_down');
      h.remember([id]);
      const { outcome, wallMs } = await h.logout();
      expect(outcome.result).toBe('deferred');
      expect(wallMs).toBeLessThan(700 + 250);
      expect(h.logs.text()).toMatch(/did not answer; the logout waits in this process's memory/);
      expect(h.logs.text()).not.toContain(id);
    } finally {
      await redis.start();
    }
    await waitFor(() => /moved from this process's memory/.test(h.logs.text()), 10_000, 'the move to Redis');
    down();
    await waitFor(() => h.finals.length === 1, 10_000, 'the final result');
    expect(h.finals[0]).toMatchObject({ status: 'logged_out', deferred: true });
    // The final result is reported before the job is removed from Redis: give the removal its round trip.
    let left = await client.hLen(`${h.prefix}jobs`);
    for (const until = Date.now() + 2000; left > 0 && Date.now() < until; left = await client.hLen(`${h.prefix}jobs`))
      await new Promise((resolve) => setTimeout(resolve, 10));
    expect(left).toBe(0);
  });

  it('does not wait past the budget on a Redis that takes commands and never answers', async () => {
    const h = setup();
    const down = logoutFault();
    const id = openPortal('cus_frozen');
    h.remember([id]);
    redis.freeze();
    let wallMs: number;
    try {
      const result = await h.logout();
      wallMs = result.wallMs;
      expect(result.outcome.result).toBe('deferred');
    } finally {
      redis.thaw();
    }
    expect(wallMs).toBeLessThan(700 + 250);
    down();
    await waitFor(() => h.finals.length === 1, 10_000, 'the final result');
    expect(h.finals[0]).toMatchObject({ status: 'logged_out', deferred: true });
    expect(suite.emulator.getSession(id)?.status).toBe('logged_out');
  });

  it('loses nothing when Redis is killed and restarted while logouts are deferred', async () => {
    const h = setup();
    const down = logoutFault();
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) {
      ids.push(openPortal(`cus_restart${i}`));
      h.remember([ids[i]]);
      expect((await h.logout()).outcome.result).toBe('deferred');
    }
    await redis.stop('SIGKILL');
    for (let i = 4; i < 6; i++) {
      ids.push(openPortal(`cus_restart${i}`));
      h.remember([ids[i]]);
      expect((await h.logout()).outcome.result).toBe('deferred'); // kept in memory meanwhile
    }
    await redis.start();
    down();
    await waitFor(() => new Set(h.finals.map((f) => f.id)).size === ids.length, 15_000, 'every final result');
    expect(h.finals.every((f) => f.status === 'logged_out')).toBe(true);
    for (const id of ids) expect(suite.emulator.getSession(id)?.status).toBe('logged_out');
  });

  it("stats() reads the queue's depth and oldest age from Redis's index: no job is read", async () => {
    const h = setup();
    logoutFault();
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      ids.push(openPortal(`cus_stats${i}`));
      h.remember([ids[i]]);
      expect((await h.logout()).outcome.result).toBe('deferred');
    }
    const before = h.scripts.length;
    const stats = await h.portalLogout.stats();
    const during = h.scripts.slice(before);
    expect(stats.queue).toMatchObject({ depth: 3, durable: true });
    expect(stats.queue?.oldestJobAgeMs).toBeGreaterThanOrEqual(0);
    expect(stats.queue?.oldestJobAgeMs).toBeLessThan(10_000);
    expect(during).toContain(FIGURES.sha);
    expect(during).not.toContain(LIST.sha);
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

  it('close() leaves the waiting jobs in Redis for the other instances and logs them as handed over', async () => {
    const h = setup();
    logoutFault();
    h.remember([openPortal('cus_close')]);
    expect((await h.logout()).outcome.result).toBe('deferred');
    await h.portalLogout.close({ timeoutMs: 500 });
    expect(await client.hLen(`${h.prefix}jobs`)).toBe(1);
    const line = h.logs.lines.find((l) => /handed over/.test(String(l.msg)));
    expect(line).toMatchObject({ level: 40, chargebeePortalLogout: { left: 1 } });
  });

  it('junk of the wrong type under the prefix: logged, nothing lost, and the queue goes on once it is gone', async () => {
    const h = setup();
    const down = logoutFault();
    await client.set(`${h.prefix}jobs`, 'not a hash');
    const id = openPortal('cus_junk');
    h.remember([id]);
    expect((await h.logout()).outcome.result).toBe('deferred');
    expect(h.logs.text()).toMatch(/WRONGTYPE/);
    await client.del(`${h.prefix}jobs`);
    down();
    await waitFor(() => h.finals.length === 1, 10_000, 'the final result');
    expect(h.finals[0]).toMatchObject({ status: 'logged_out' });
  });
});
