/**
 * The contract of a deferred-logout store (src/queue/store.ts), as tests that any store must pass: the
 * in-memory one, the Redis one and the PostgreSQL one run the same file. Real time: a job due "now" is due
 * a second ago, one "later" is due in an hour; the few waits are a second or less.
 */
import type { DeferredLogoutJob, DeferredLogoutStore, DueJobs } from '../../src/queue/store';
import { drainRate, NO_RATE_LIMIT, type DrainRate } from '../../src/reliability/rate-limit';

/** What a store suite gives the contract: a new, empty store per test (with these bounds). */
export interface StoreFactory {
  /** A fresh store; `maxQueued` its bound, `leaseMs` its lease (when it has leases that expire). */
  make(options: { maxQueued: number; leaseMs?: number }): Promise<DeferredLogoutStore> | DeferredLogoutStore;
  /** Whether the store is shared (its leases expire, and it keeps time on its own clock). */
  shared: boolean;
}

const HOUR = 3_600_000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let sequence = 0;
/** A deferred job, due a second ago unless told otherwise. */
export function job(id: string, extra: Partial<DeferredLogoutJob> = {}): DeferredLogoutJob {
  const now = Date.now();
  return {
    portalSessionId: id,
    headers: { 'chargebee-request-origin-ip': '203.0.113.1' },
    idempotencyKey: `key-${id}-${++sequence}`,
    firstAttemptAt: now - 1000,
    attempts: 1,
    notBefore: now - 1000,
    reason: 'budget_exhausted',
    site: 'aaaa',
    ...extra,
  };
}

/** A scheduled logout not tried yet, due `inMs` from now. */
export function scheduled(id: string, inMs: number, extra: Partial<DeferredLogoutJob> = {}): DeferredLogoutJob {
  const at = Date.now() + inMs;
  return job(id, { attempts: 0, reason: 'idle', notBefore: at, firstAttemptAt: at, ...extra });
}

const ids = (due: DueJobs) => due.jobs.map((j) => j.portalSessionId).sort();
const take = async (store: DeferredLogoutStore, limit = 10, rate: DrainRate = NO_RATE_LIMIT) =>
  await store.takeDue(limit, rate);

export function describeStoreContract(name: string, factory: StoreFactory, describeIt: jest.Describe = describe): void {
  describeIt(`${name}: the deferred-logout store contract`, () => {
    const make = (maxQueued = 100, leaseMs?: number) => factory.make({ maxQueued, leaseMs });

    it('hands a due job over once, with a lease, counts it while handed over, and says when the next is due', async () => {
      const store = await make();
      expect(await store.add(job('p_due'))).toBe(true);
      const later = Date.now() + HOUR;
      expect(await store.add(job('p_later', { notBefore: later }))).toBe(true);
      const first = await take(store);
      expect(ids(first)).toEqual(['p_due']);
      expect(typeof first.jobs[0].lease).toBe('string');
      expect(first.jobs[0]).toMatchObject({ attempts: 1, reason: 'budget_exhausted', site: 'aaaa' });
      expect(first.jobs[0].headers).toEqual({ 'chargebee-request-origin-ip': '203.0.113.1' });
      const second = await take(store);
      expect(second.jobs).toEqual([]);
      expect(Math.abs((second.nextAt ?? 0) - later)).toBeLessThan(1000);
      expect(await store.size()).toBe(2);
    });

    it('keeps one job per portal session: a new deferral of a waiting job keeps it, its maximum age counting anew', async () => {
      const store = await make();
      const old = job('p_one', { firstAttemptAt: Date.now() - 10_000, notBefore: Date.now() + HOUR });
      await store.add(old);
      expect(await store.add(job('p_one', { firstAttemptAt: Date.now(), notBefore: Date.now() + HOUR }))).toBe(true);
      expect(await store.size()).toBe(1);
      expect(await store.wakeSite('aaaa')).toBe(1);
      const [taken] = (await take(store)).jobs;
      expect(taken.idempotencyKey).toBe(old.idempotencyKey);
      expect(taken.firstAttemptAt).toBeGreaterThan(Date.now() - 5000);
    });

    it('refuses a new job when full, keeps a tenth of its room for deferrals, and always takes a put-back', async () => {
      const store = await make(10);
      for (let i = 0; i < 9; i++) expect(await store.schedule?.(scheduled(`p_s${i}`, HOUR))).toBe(true);
      expect(await store.schedule?.(scheduled('p_s9', HOUR))).toBe(false);
      expect(await store.add(job('p_d1'))).toBe(true);
      expect(await store.add(job('p_d2'))).toBe(false);
      const [taken] = (await take(store)).jobs;
      expect(await store.add({ ...taken, attempts: 2, notBefore: Date.now() - 10 })).toBe(true);
      expect(await store.size()).toBe(10);
    });

    it('takes a put-back only from the lease holder, and the job is due again at its new time', async () => {
      const store = await make();
      await store.add(job('p_put'));
      const [taken] = (await take(store)).jobs;
      expect(await store.add({ ...taken, attempts: 2, notBefore: Date.now() + HOUR })).toBe(true);
      expect((await take(store)).jobs).toEqual([]);
      expect(await store.wakeSite('aaaa')).toBe(1);
      const [again] = (await take(store)).jobs;
      expect(again).toMatchObject({ portalSessionId: 'p_put', attempts: 2 });
      expect(again.lease).not.toBe(taken.lease);
      // The first taker comes back late: its lease is no longer the job's.
      await store.add({ ...taken, attempts: 9, notBefore: Date.now() - 10 });
      expect(await store.giveUp('p_put', taken.lease)).toBe(false);
      expect(await store.size()).toBe(1);
      expect((await take(store)).jobs).toEqual([]);
    });

    it('gives a job up only for its lease holder; a new deferral meanwhile renews it instead', async () => {
      const store = await make();
      await store.add(job('p_gone'));
      await store.add(job('p_renewed'));
      const taken = (await take(store)).jobs;
      const lease = (id: string) => taken.find((j) => j.portalSessionId === id)?.lease;
      // Another logout of the same portal session while its job is being tried.
      expect(await store.add(job('p_renewed', { firstAttemptAt: Date.now() }))).toBe(true);
      expect(await store.giveUp('p_gone', lease('p_gone'))).toBe(true);
      expect(await store.giveUp('p_renewed', lease('p_renewed'))).toBe(false);
      expect(await store.size()).toBe(1);
      const [again] = (await take(store)).jobs;
      expect(again.portalSessionId).toBe('p_renewed');
      expect(again.firstAttemptAt).toBeGreaterThan(Date.now() - 5000);
    });

    it('a renewal carries over to a put-back of the job: its maximum age counts from the new deferral', async () => {
      const store = await make();
      await store.add(job('p_carry', { firstAttemptAt: Date.now() - 60_000 }));
      const [taken] = (await take(store)).jobs;
      await store.add(job('p_carry', { firstAttemptAt: Date.now() }));
      await store.add({ ...taken, attempts: 2, notBefore: Date.now() - 10 });
      const [again] = (await take(store)).jobs;
      expect(again.firstAttemptAt).toBeGreaterThan(Date.now() - 5000);
    });

    it('removes a job whoever holds it: its portal session ended', async () => {
      const store = await make();
      await store.add(job('p_end'));
      await take(store);
      await store.remove('p_end');
      expect(await store.size()).toBe(0);
    });

    it('keeps scheduled logouts: postponed within their latest time, never earlier; replaced by a deferral, never over one; cancelled unless handed over', async () => {
      const store = await make();
      const now = Date.now();
      await store.schedule?.(scheduled('p_idle', HOUR));
      await store.schedule?.(scheduled('p_capped', HOUR, { latestAt: now + HOUR + 500_000 }));
      await store.add(job('p_deferred', { notBefore: now + HOUR }));
      await store.postpone?.(['p_idle', 'p_capped', 'p_deferred', 'p_unknown'], now + 2 * HOUR);
      await store.postpone?.(['p_idle'], now + HOUR + 10);
      const due = async (id: string) => (await store.list?.(100))?.find((j) => j.portalSessionId === id)?.notBefore;
      if (store.list) {
        expect(Math.abs((await due('p_idle'))! - (now + 2 * HOUR))).toBeLessThan(1000);
        expect(Math.abs((await due('p_capped'))! - (now + HOUR + 500_000))).toBeLessThan(1000);
        expect(Math.abs((await due('p_deferred'))! - (now + HOUR))).toBeLessThan(1000);
      }
      expect(await store.schedule?.(scheduled('p_deferred', 10))).toBe(true); // the deferral stays
      expect(await store.add(job('p_idle'))).toBe(true); // a deferral replaces the schedule, due now
      const taken = await take(store);
      expect(ids(taken)).toEqual(['p_idle']);
      expect(taken.jobs[0].reason).toBe('budget_exhausted');
      await store.cancel?.(['p_idle', 'p_capped', 'p_deferred']);
      expect(await store.size()).toBe(1); // p_idle is handed over
    });

    it('hands due jobs over earliest first, and wakes only backed-off jobs, earliest first', async () => {
      const store = await make();
      const now = Date.now();
      await store.add(job('p_late', { notBefore: now + 3 * HOUR }));
      await store.add(job('p_early', { notBefore: now + HOUR }));
      await store.add(job('p_other_site', { notBefore: now + HOUR, site: 'bbbb' }));
      await store.schedule?.(scheduled('p_sched', HOUR / 2));
      expect(await store.wakeSite('aaaa', 1)).toBe(1);
      expect(ids(await take(store))).toEqual(['p_early']);
      expect(await store.wakeSite('aaaa')).toBe(1);
      expect(ids(await take(store))).toEqual(['p_late']);
      expect((await take(store)).jobs).toEqual([]);
    });

    it("does not let one site's rate or pause hold back another site's jobs", async () => {
      const store = await make();
      const now = Date.now();
      for (let i = 0; i < 30; i++) await store.add(job(`p_a${i}`, { notBefore: now - 5000 + i, site: 'aaaa' }));
      await store.add(job('p_b', { notBefore: now - 10, site: 'bbbb' }));
      const rate = drainRate(6); // a burst of one request per site
      const first = await take(store, 10, rate);
      expect(ids(first)).toEqual(['p_a0', 'p_b']);
      expect(first.nextAt).toBeGreaterThan(now);
      await store.add(job('p_c', { site: 'cccc' }));
      await store.pauseSite('cccc', Date.now() + HOUR);
      await store.add(job('p_d', { site: 'dddd' }));
      expect(ids(await take(store, 10, rate))).toEqual(['p_d']);
    });

    it('hands out no more than the burst at once, even to takers at the same time, then the rate', async () => {
      const store = await make();
      const now = Date.now();
      for (let i = 0; i < 40; i++) await store.add(job(`p_r${i}`, { notBefore: now - 5000 + i }));
      const rate = drainRate(600); // 10 a second, a burst of 10
      const started = Date.now();
      const together = await Promise.all([take(store, 40, rate), take(store, 40, rate), take(store, 40, rate)]);
      const taken = together.reduce((sum, due) => sum + due.jobs.length, 0);
      // The burst, and what the rate added while the three took (a busy machine may take a while).
      expect(taken).toBeGreaterThanOrEqual(10);
      expect(taken).toBeLessThanOrEqual(10 + Math.floor(((Date.now() - started) * 10) / 1000));
      await sleep(500);
      const later = await take(store, 40, rate);
      // Half a second at 10 a second (one more for the time the first takes themselves took).
      expect(later.jobs.length).toBeGreaterThanOrEqual(4);
      expect(later.jobs.length).toBeLessThanOrEqual(Math.floor(((Date.now() - started) * 10) / 1000) + 1);
    });

    it('reports its figures from its indexes: jobs, and the oldest waiting since', async () => {
      const store = await make();
      const now = Date.now();
      await store.add(job('p_old', { firstAttemptAt: now - 50_000, notBefore: now + HOUR }));
      await store.add(job('p_new', { firstAttemptAt: now - 1000 }));
      await store.schedule?.(scheduled('p_future', HOUR));
      const figures = await store.figures?.();
      if (figures) {
        expect(figures.jobs).toBe(3);
        expect(Math.abs((figures.oldestWaitingSince ?? 0) - (now - 50_000))).toBeLessThan(1000);
      }
      expect(await store.size()).toBe(3);
    });

    it('takes times and rates with fractions of a millisecond: every call keeps its job', async () => {
      const store = await make();
      const now = Date.now();
      expect(await store.add(job('p_frac', { firstAttemptAt: now - 1000.5, notBefore: now - 500.25 }))).toBe(true);
      expect(await store.schedule?.(scheduled('p_frac_sched', 2500.5, { latestAt: now + HOUR + 0.5 }))).toBe(true);
      await store.postpone?.(['p_frac_sched'], now + 5000.75);
      await store.pauseSite('bbbb', now + 100.5);
      expect(await store.size()).toBe(store.schedule ? 2 : 1);
      const [taken] = (await take(store, 10, drainRate(0.5))).jobs;
      expect(taken.portalSessionId).toBe('p_frac');
      expect(Math.abs(taken.firstAttemptAt - (now - 1000.5))).toBeLessThan(1000);
      expect(await store.add({ ...taken, attempts: 2, notBefore: Date.now() + HOUR + 0.5 })).toBe(true);
      expect(await store.wakeSite('aaaa')).toBe(1);
      expect(ids(await take(store))).toEqual(['p_frac']);
      expect(await store.size()).toBe(store.schedule ? 2 : 1);
    });

    if (factory.shared) {
      it('hands a job out again once its lease has run out (its taker may have died)', async () => {
        const store = await make(100, 1000);
        await store.add(job('p_lease'));
        const [first] = (await take(store)).jobs;
        expect((await take(store)).jobs).toEqual([]);
        await sleep(1100);
        const [second] = (await take(store)).jobs;
        expect(second.portalSessionId).toBe('p_lease');
        expect(second.lease).not.toBe(first.lease);
      });

      it("compares due times and leases on the store's clock: an instance whose clock runs ahead takes nothing early", async () => {
        const store = await make(100, 30_000);
        await store.add(job('p_leased'));
        await store.schedule?.(scheduled('p_sched_soon', 10_000));
        const [leased] = (await take(store)).jobs;
        const realNow = Date.now;
        const ahead = jest.spyOn(Date, 'now').mockImplementation(() => realNow() + 15_000);
        try {
          expect((await take(store)).jobs).toEqual([]);
          // Times this instance writes are read on its own clock, and come back on it.
          await store.add({ ...leased, attempts: 2, notBefore: Date.now() + 5000 });
          const due = await take(store);
          expect(due.jobs).toEqual([]);
          expect(Math.abs((due.nextAt ?? 0) - (Date.now() + 5000))).toBeLessThan(1500);
        } finally {
          ahead.mockRestore();
        }
        const later = await take(store);
        expect(later.jobs).toEqual([]);
        expect(Math.abs((later.nextAt ?? 0) - (Date.now() + 5000))).toBeLessThan(1500);
      });
    }
  });
}
