import fc from 'fast-check';
import { MemoryDeferredLogoutStore } from '../src/queue/memory-store';
import { drainRate, NO_RATE_LIMIT } from '../src/reliability/rate-limit';
import { describeStoreContract, job, scheduled } from './contracts/deferred-store';

describeStoreContract('MemoryDeferredLogoutStore', {
  shared: false,
  make: ({ maxQueued }) => new MemoryDeferredLogoutStore(maxQueued),
});

/** The in-memory store's own rules, on a clock passed in (every method takes the time last). */
describe('MemoryDeferredLogoutStore on a given clock', () => {
  const ids = (jobs: Array<{ portalSessionId: string }>) => jobs.map((j) => j.portalSessionId);

  it('hands due jobs over earliest first (ties in the order kept), and forgets the place of a job moved, removed or handed over', () => {
    const store = new MemoryDeferredLogoutStore(100);
    store.add(job('late', { notBefore: 300 }));
    store.add(job('early', { notBefore: 100 }));
    store.add(job('tie-first', { notBefore: 200 }));
    store.add(job('tie-second', { notBefore: 200 }));
    store.schedule(job('moved', { attempts: 0, reason: 'idle', notBefore: 50 }));
    store.postpone(['moved'], 1000);
    store.add(job('removed', { notBefore: 10 }));
    store.remove('removed');
    expect(store.takeDue(10, NO_RATE_LIMIT, 50)).toEqual({ jobs: [], nextAt: 100 });
    expect(ids(store.takeDue(2, NO_RATE_LIMIT, 250).jobs)).toEqual(['early', 'tie-first']);
    const rest = store.takeDue(10, NO_RATE_LIMIT, 250);
    expect(ids(rest.jobs)).toEqual(['tie-second']);
    expect(rest.nextAt).toBe(300);
    expect(ids(store.takeDue(10, NO_RATE_LIMIT, 5000).jobs)).toEqual(['late', 'moved']);
    expect(store.takeDue(10, NO_RATE_LIMIT, 5000)).toEqual({ jobs: [] });
    expect(store.size()).toBe(5);
  });

  it('keeps to the rate per site: a burst, then one request per interval', () => {
    const store = new MemoryDeferredLogoutStore(100);
    for (let i = 0; i < 5; i++) store.add(job(`r${i}`, { notBefore: 0, site: 'aaaa' }));
    const rate = drainRate(60); // a burst of 10, then one a second
    expect(store.takeDue(3, rate, 1000).jobs).toHaveLength(3);
    const rated = drainRate(6); // one a ten seconds, a burst of one, for another store
    const slow = new MemoryDeferredLogoutStore(100);
    for (let i = 0; i < 3; i++) slow.add(job(`s${i}`, { notBefore: 0, site: 'aaaa' }));
    expect(slow.takeDue(10, rated, 1000).jobs).toHaveLength(1);
    expect(slow.takeDue(10, rated, 1000)).toEqual({ jobs: [], nextAt: 11_000 });
    expect(slow.takeDue(10, rated, 11_000).jobs).toHaveLength(1);
  });

  it('keeps its due index in step with the jobs through any sequence of changes', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            op: fc.constantFrom('add', 'schedule', 'postpone', 'remove', 'cancel', 'take'),
            id: fc.integer({ min: 0, max: 7 }),
            at: fc.integer({ min: 0, max: 1000 }),
          }),
          { maxLength: 80 },
        ),
        (ops) => {
          const store = new MemoryDeferredLogoutStore(1000);
          const model = new Map<string, { at: number; pending: boolean; taken: boolean }>();
          for (const { op, id, at } of ops) {
            const name = `p${id}`;
            const kept = model.get(name);
            if (op === 'add') {
              store.add(job(name, { notBefore: at, site: 'aaaa' }));
              // A new deferral: added, or replacing a pending schedule; otherwise the job stays as it is.
              if (!kept || (kept.pending && !kept.taken)) model.set(name, { at, pending: false, taken: false });
            } else if (op === 'schedule') {
              store.schedule(job(name, { attempts: 0, reason: 'idle', notBefore: at, site: 'aaaa' }));
              if (!kept || (kept.pending && !kept.taken)) model.set(name, { at, pending: true, taken: false });
            } else if (op === 'postpone') {
              store.postpone([name], at);
              if (kept?.pending && !kept.taken) kept.at = Math.max(kept.at, at);
            } else if (op === 'remove') {
              store.remove(name);
              model.delete(name);
            } else if (op === 'cancel') {
              store.cancel([name]);
              if (kept && !kept.taken) model.delete(name);
            } else {
              const due = store.takeDue(3, NO_RATE_LIMIT, at);
              const expected = [...model.entries()]
                .filter(([, m]) => !m.taken && m.at <= at)
                .sort((a, b) => a[1].at - b[1].at)
                .slice(0, 3);
              expect(due.jobs.map((t) => model.get(t.portalSessionId)?.at)).toEqual(expected.map(([, m]) => m.at));
              for (const t of due.jobs) (model.get(t.portalSessionId) as { taken: boolean }).taken = true;
              if (due.jobs.length < 3) {
                const waiting = [...model.values()].filter((m) => !m.taken).map((m) => m.at);
                expect(due.nextAt).toBe(waiting.length ? Math.min(...waiting) : undefined);
              }
            }
            expect(store.size()).toBe(model.size);
          }
        },
      ),
    );
  });

  it('moves a scheduled logout later by activity within its latest time, and wakes no scheduled logout', () => {
    const store = new MemoryDeferredLogoutStore(10);
    store.schedule(scheduled('s', 0, { notBefore: 1000, firstAttemptAt: 1000, latestAt: 1500 }));
    store.postpone(['s'], 9000);
    expect(store.wakeSite('aaaa', undefined, 0)).toBe(0);
    expect(store.takeDue(10, NO_RATE_LIMIT, 1499).jobs).toEqual([]);
    expect(ids(store.takeDue(10, NO_RATE_LIMIT, 1500).jobs)).toEqual(['s']);
  });

  it('drains the jobs it keeps for a shared store that did not answer, whatever their due time', () => {
    const store = new MemoryDeferredLogoutStore(10);
    store.add(job('a', { notBefore: Date.now() + 3_600_000 }));
    store.add(job('b'));
    store.takeDue(1, NO_RATE_LIMIT);
    expect(ids(store.drain(10))).toEqual(['a']);
    expect(store.size()).toBe(1);
  });
});
