import { ChargebeeApiError, ChargebeeNetworkError } from '../src/base/errors';
import type { DeferredLogoutJob } from '../src/queue/store';
import { sharedStoreDown, shimStore } from './helpers/store-shims';
import { MemoryDeferredLogoutStore } from '../src/queue/memory-store';
import { DeferredLogoutQueue, type DeferredQueueOptions, type JobAttemptResult } from '../src/queue/queue';
import { hashPortalSessionId } from '../src/base/identifiers';
import { captureLogs } from './helpers/log-capture';

function job(id: string, extra: Partial<DeferredLogoutJob> = {}): DeferredLogoutJob {
  return {
    portalSessionId: id,
    headers: { 'chargebee-request-origin-ip': '203.0.113.1' },
    idempotencyKey: `key-${id}`,
    firstAttemptAt: Date.now(),
    attempts: 1,
    notBefore: Date.now(),
    reason: 'budget_exhausted',
    ...extra,
  };
}

async function waitFor(predicate: () => boolean, timeoutMs = 5000): Promise<void> {
  const started = Date.now();
  while (!predicate()) {
    if (Date.now() - started > timeoutMs) throw new Error('waitFor: timed out');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

function queueWith(script: (job: DeferredLogoutJob) => JobAttemptResult, extra: Partial<DeferredQueueOptions> = {}) {
  const logs = captureLogs();
  const attempts: Array<{ id: string; at: number; attempts: number; key: string }> = [];
  const givenUp: Array<{ id: string; reason: string }> = [];
  const store = (extra.store as MemoryDeferredLogoutStore | undefined) ?? new MemoryDeferredLogoutStore(100);
  const queue = new DeferredLogoutQueue({
    store,
    maxAgeMs: 60_000,
    baseDelayMs: 5,
    maxDelayMs: 20,
    concurrency: 4,
    timeoutMs: 500,
    attempt: async (j) => {
      attempts.push({ id: j.portalSessionId, at: Date.now(), attempts: j.attempts, key: j.idempotencyKey });
      return script(j);
    },
    givenUp: (j, reason) => givenUp.push({ id: j.portalSessionId, reason }),
    log: logs.logger,
    ...extra,
  });
  return { queue, store, logs, attempts, givenUp };
}

describe('DeferredLogoutQueue', () => {
  it('retries with backoff until the attempt ends the job, with the same idempotency key', async () => {
    let calls = 0;
    const { queue, attempts, store } = queueWith(() =>
      ++calls < 3 ? { error: new ChargebeeNetworkError('ECONNREFUSED') } : 'done',
    );
    await queue.enqueue(job('a'));
    await waitFor(() => queue.stats.done === 1);
    expect(attempts.map((a) => a.attempts)).toEqual([2, 3, 4]);
    expect(new Set(attempts.map((a) => a.key))).toEqual(new Set(['key-a']));
    expect(store.size()).toBe(0);
    await queue.close(100);
  });

  it('waits for notBefore', async () => {
    const { queue, attempts } = queueWith(() => 'done');
    const queuedAt = Date.now();
    await queue.enqueue(job('a', { notBefore: queuedAt + 150 }));
    await waitFor(() => attempts.length === 1);
    expect(attempts[0].at).toBeGreaterThanOrEqual(queuedAt + 140);
    await queue.close(100);
  });

  it('pauses every job for as long as a 429 asks', async () => {
    const script = (j: DeferredLogoutJob): JobAttemptResult =>
      j.portalSessionId === 'a' && j.attempts === 2
        ? { error: new ChargebeeApiError({ status: 429, message: 'limit', retryAfterSeconds: 1 }), retryAfterMs: 400 }
        : 'done';
    const { queue, attempts } = queueWith(script, { concurrency: 1, maxDelayMs: 1000 });
    await queue.enqueue(job('a'));
    await waitFor(() => attempts.length === 1);
    const limitedAt = attempts[0].at;
    await queue.enqueue(job('b'));
    await waitFor(() => attempts.length === 3);
    expect(
      attempts
        .map((a) => a.id)
        .slice(1)
        .sort(),
    ).toEqual(['a', 'b']);
    for (const later of attempts.slice(1)) expect(later.at).toBeGreaterThanOrEqual(limitedAt + 380);
    await queue.close(100);
  });

  it('gives a job up at its maximum age, and says so', async () => {
    const { queue, givenUp, store } = queueWith(() => ({ error: new ChargebeeNetworkError('ECONNRESET') }), {
      maxAgeMs: 200,
    });
    await queue.enqueue(job('a'));
    await waitFor(() => givenUp.length === 1);
    expect(givenUp).toEqual([{ id: 'a', reason: 'max_age' }]);
    expect(queue.stats.expired).toBe(1);
    expect(store.size()).toBe(0);
    await queue.close(100);
  });

  it('logs a full store at error level with the count, and counts the loss', async () => {
    const { queue, logs } = queueWith(() => 'done', { store: new MemoryDeferredLogoutStore(1) });
    expect(await queue.enqueue(job('a', { notBefore: Date.now() + 60_000 }))).toBe('queued');
    expect(await queue.enqueue(job('b'))).toBe('full');
    const line = logs.lines.find((l) => l.level === 50);
    expect(line?.msg).toMatch(/queue full \(1 queued\)/);
    expect(line?.chargebeePortalLogout).toMatchObject({ idHash: hashPortalSessionId('b'), queued: 1, lost: 1 });
    expect(logs.text()).not.toContain('"b"');
    expect(queue.stats.lost).toBe(1);
    await queue.close(0);
  });

  it('close() drains waiting jobs at once, ignoring their backoff', async () => {
    const { queue, attempts, logs } = queueWith(() => 'done');
    for (const id of ['a', 'b', 'c']) await queue.enqueue(job(id, { notBefore: Date.now() + 3_600_000 }));
    const started = Date.now();
    await queue.close(2000);
    expect(Date.now() - started).toBeLessThan(1500);
    expect(attempts.map((a) => a.id).sort()).toEqual(['a', 'b', 'c']);
    expect(queue.stats).toMatchObject({ done: 3, lost: 0 });
    expect(logs.lines.some((l) => /nothing left/.test(String(l.msg)))).toBe(true);
    expect(await queue.enqueue(job('d'))).toBe('closed');
  });

  it('close() logs what it could not drain within the limit: count and ID hashes, never the IDs', async () => {
    const { queue, logs } = queueWith(() => ({ error: new ChargebeeNetworkError('ECONNREFUSED') }));
    for (const id of ['portal_a', 'portal_b']) await queue.enqueue(job(id));
    const started = Date.now();
    await queue.close(300);
    expect(Date.now() - started).toBeLessThan(2000);
    const line = logs.lines.find((l) => l.level === 50 && /not drained/.test(String(l.msg)));
    expect(line?.chargebeePortalLogout).toEqual({
      left: 2,
      idHashes: expect.arrayContaining([hashPortalSessionId('portal_a'), hashPortalSessionId('portal_b')]),
    });
    expect(logs.text()).not.toMatch(/portal_a|portal_b/);
    expect(queue.stats.lost).toBe(2);
  });

  it('close() leaves a durable store to the other instances and logs what is left there', async () => {
    const memory = new MemoryDeferredLogoutStore(10);
    const shared = shimStore(memory, { durable: true });
    const { queue, attempts, logs } = queueWith(() => 'done', { store: shared });
    await queue.enqueue(job('a', { notBefore: Date.now() + 3_600_000 }));
    await queue.close(1000);
    expect(attempts).toHaveLength(0);
    expect(memory.size()).toBe(1);
    expect(logs.lines.find((l) => l.level === 40)?.msg).toMatch(/1 logouts left in the shared store/);
    expect(queue.stats.lost).toBe(0);
  });

  it('keeps going when a store method throws, and logs it', async () => {
    const memory = new MemoryDeferredLogoutStore(10);
    let failures = 1;
    const flaky = shimStore(memory, {
      guard: (method) => {
        if (method === 'takeDue' && failures-- > 0) throw new Error('store down');
      },
    });
    const { queue, logs } = queueWith(() => 'done', { store: flaky });
    await queue.enqueue(job('a'));
    await waitFor(() => queue.stats.done === 1, 4000);
    expect(logs.text()).toMatch(/store failed/);
    await queue.close(100);
  });
});

describe('DeferredLogoutQueue: rate and shared stores', () => {
  it('keeps to ratePerMinute per site in this process, after a burst of at most ten', async () => {
    const { queue, attempts } = queueWith(() => 'done', { ratePerMinute: 600 });
    for (let i = 0; i < 14; i++) await queue.enqueue(job(`r${i}`, { site: 'aaaa' }));
    await queue.enqueue(job('other', { site: 'bbbb' }));
    await waitFor(() => attempts.length === 15, 5000);
    const siteA = attempts.filter((a) => a.id !== 'other').map((a) => a.at);
    // Ten at once, then one every 100 ms: the 14th about 400 ms after the first.
    expect(siteA[9] - siteA[0]).toBeLessThan(80);
    expect(siteA[13] - siteA[0]).toBeGreaterThanOrEqual(350);
    // Another site has its own budget: not held back by the first one's.
    expect(attempts.find((a) => a.id === 'other')!.at - siteA[0]).toBeLessThan(80);
    await queue.close(100);
  });

  it('keeps jobs in memory while a durable store fails, and moves them there once it answers', async () => {
    const { memory, shared, answer } = sharedStoreDown();
    const { queue, logs, attempts } = queueWith(() => 'done', { store: shared });
    expect(await queue.enqueue(job('a', { notBefore: Date.now() + 60_000 }))).toBe('queued');
    expect(queue.stats.inMemory).toBe(1);
    expect(logs.text()).toMatch(/waits in this process's memory/);
    answer();
    await waitFor(() => memory.size() === 1, 4000);
    expect(queue.stats.inMemory).toBe(0);
    expect(attempts).toHaveLength(0);
    await queue.close(100);
  });

  it('a scheduled logout made while a durable store fails waits in memory and moves there without replacing a deferral', async () => {
    const { memory, shared, answer } = sharedStoreDown({ scheduling: true });
    const { queue } = queueWith(() => 'done', { store: shared });
    const later = Date.now() + 60_000;
    const scheduled = (id: string) => job(id, { attempts: 0, reason: 'idle', notBefore: later, firstAttemptAt: later });
    expect(await queue.schedule(scheduled('a'))).toBe('scheduled');
    expect(await queue.schedule(scheduled('b'))).toBe('scheduled');
    expect(queue.stats).toMatchObject({ inMemory: 2, scheduled: 2 });
    expect(await queue.postpone(['a'], later + 5000)).toBe(false); // the store is down: moved in memory only
    memory.add(job('b', { notBefore: later + 10 })); // meanwhile another instance deferred b's logout
    answer();
    await waitFor(() => memory.size() === 2, 4000);
    expect(memory.list().map((j) => [j.portalSessionId, j.reason, j.notBefore])).toEqual([
      ['b', 'budget_exhausted', later + 10],
      ['a', 'idle', later + 5000],
    ]);
    await queue.close(100);
  });

  it('starts a scheduled logout: its age counts from its first attempt, and one past its latest time is for the maximum age', async () => {
    const seen: DeferredLogoutJob[] = [];
    const { queue } = queueWith(
      (j) => {
        seen.push(j);
        return 'done';
      },
      { maxAgeMs: 1000 },
    );
    const longAgo = Date.now() - 10_000;
    const base = { attempts: 0, notBefore: longAgo, firstAttemptAt: longAgo };
    await queue.schedule(job('idle', { ...base, reason: 'idle', latestAt: Date.now() + 60_000 }));
    await queue.schedule(job('capped', { ...base, reason: 'idle', latestAt: longAgo }));
    await waitFor(() => seen.length === 2);
    const byId = Object.fromEntries(seen.map((j) => [j.portalSessionId, j]));
    expect(byId.idle.reason).toBe('idle');
    expect(byId.capped.reason).toBe('portal_max_age');
    for (const j of seen) expect(Date.now() - j.firstAttemptAt).toBeLessThan(1000); // not given up as too old
    await queue.close(100);
  });
});

describe('DeferredLogoutQueue: review findings', () => {
  it('when Chargebee answers again, the backed-off backlog goes at once, not after its backoff', async () => {
    // Backoffs of a minute: without the recovery, the jobs would wait that long after the site healed.
    let healed = false;
    const { queue, attempts } = queueWith(
      () => (healed ? 'done' : { error: new ChargebeeNetworkError('ECONNREFUSED') }),
      {
        baseDelayMs: 60_000,
        maxDelayMs: 60_000,
      },
    );
    for (let i = 0; i < 5; i++) await queue.enqueue(job(`b${i}`, { site: 'aaaa' }));
    await waitFor(() => attempts.length >= 5, 4000);
    healed = true;
    const healedAt = Date.now();
    // A probe every 2 s finds the site answering; then every backed-off job of the site is due.
    await waitFor(() => queue.stats.done === 5, 6000);
    expect(Date.now() - healedAt).toBeLessThan(4000);
    await queue.close(100);
  });

  it('an inline answer of the site makes its backed-off jobs due at once', async () => {
    let healed = false;
    const { queue, attempts } = queueWith(
      () => (healed ? 'done' : { error: new ChargebeeNetworkError('ECONNRESET') }),
      {
        baseDelayMs: 60_000,
        maxDelayMs: 60_000,
      },
    );
    await queue.enqueue(job('i0', { site: 'aaaa' }));
    await waitFor(() => attempts.length === 1, 2000);
    healed = true;
    queue.siteAnswered('aaaa');
    await waitFor(() => queue.stats.done === 1, 1500);
    await queue.close(100);
  });

  it('a new deferral of a job being tried is not lost when that attempt gives up at its maximum age', async () => {
    const logs = captureLogs();
    const attempts: number[] = [];
    const givenUp: string[] = [];
    let enteredFirst: () => void = () => undefined;
    const firstStarted = new Promise<void>((resolve) => (enteredFirst = resolve));
    const queue = new DeferredLogoutQueue({
      store: new MemoryDeferredLogoutStore(10),
      maxAgeMs: 300,
      baseDelayMs: 5,
      maxDelayMs: 20,
      concurrency: 4,
      timeoutMs: 500,
      attempt: async () => {
        attempts.push(Date.now());
        if (attempts.length > 1) return 'done';
        enteredFirst();
        // The first attempt takes long, and fails: by then its job is past the maximum age.
        await new Promise((resolve) => setTimeout(resolve, 150));
        return { error: new ChargebeeNetworkError('ETIMEDOUT') };
      },
      givenUp: (j) => givenUp.push(j.portalSessionId),
      log: logs.logger,
    });
    await queue.enqueue(job('r', { firstAttemptAt: Date.now() - 250 }));
    await firstStarted;
    // Meanwhile another logout (a sign-out everywhere, say) defers the same portal session again.
    expect(await queue.enqueue(job('r', { firstAttemptAt: Date.now() }))).toBe('queued');
    await waitFor(() => queue.stats.done === 1, 3000);
    expect(attempts).toHaveLength(2); // the renewed job is made...
    expect(givenUp).toEqual([]); // ...and the logout was never reported given up
    await queue.close(100);
  });

  it('close() while a shared store blips deletes nothing of it: not a not-due scheduled logout, not another instance’s job', async () => {
    const memory = new MemoryDeferredLogoutStore(10);
    const calls: string[] = [];
    let failing = true;
    const shared = shimStore(memory, {
      durable: true,
      scheduling: true,
      guard: (method) => {
        calls.push(method);
        // Writes fail; deletions would get through (a blip: some calls answer).
        if (failing && ['add', 'schedule', 'takeDue', 'size', 'list', 'wakeSite'].includes(method))
          throw new Error('shared store down');
      },
    });
    const { queue } = queueWith(() => 'done', { store: shared });
    const later = Date.now() + 60_000;
    expect(
      await queue.schedule(job('s', { attempts: 0, reason: 'idle', notBefore: later, firstAttemptAt: later })),
    ).toBe('scheduled');
    expect(queue.stats.inMemory).toBe(1);
    // Meanwhile another instance deferred the same portal session's logout in the shared store.
    memory.add(job('s', { notBefore: later }));
    await queue.close(300);
    failing = false;
    expect(calls).not.toContain('remove');
    expect(calls).not.toContain('giveUp');
    expect(memory.list().map((j) => [j.portalSessionId, j.reason])).toEqual([['s', 'budget_exhausted']]);
  });
});
