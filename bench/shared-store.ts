/**
 * What the benches of the shared stores (bench/redis.ts, bench/postgres.ts) measure the same way: the
 * healthy path of two app processes loaded in turns, the time one deferral spends in a store, and a backlog
 * drained by two app instances against the emulator. Each bench adds what is its store's own (memory or
 * bytes per job, database calls).
 */
import pino from 'pino';
import { MemoryDeferredLogoutStore } from '../src/queue/memory-store';
import { DeferredLogoutQueue } from '../src/queue/queue';
import type { DeferredLogoutJob, DeferredLogoutStore } from '../src/queue/store';
import { drainRate } from '../src/reliability/rate-limit';
import type { ChargebeeEmulator } from '../src/testing';
import { waitFor } from '../test/helpers/harness';
import type { Instance } from '../test/helpers/instances';
import { median, quantile, runLoad } from './load';

const HEALTHY_ROUNDS = 7;
const HEALTHY_REQUESTS = 1500;
const CONNECTIONS = 10;
const DEFERRALS = 3000;

export const round2 = (x: number) => Math.round(x * 100) / 100;

export async function sleep(ms: number): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, ms));
}

export async function portOf(instance: Instance): Promise<number> {
  return Number((await instance.waitForLine((l) => 'port' in l, 30_000)).port);
}

/**
 * The healthy path: the same app on the memory store and on the shared one (their base URLs), loaded in
 * turns, the order alternating by round. Each round's two runs are back to back, so the machine's drift
 * cancels out in their ratio (shared ÷ memory req/s), of which the median is the figure. `roundsStarting`
 * runs after the warm-up, just before the measured rounds (whose time is `seconds`).
 */
export async function loadInTurns(base: { memory: string; shared: string }, roundsStarting?: () => Promise<void>) {
  type Store = keyof typeof base;
  const run = async (store: Store, requests: number) => {
    const ids = (await (await fetch(`${base[store]}/seed?n=${requests}`, { method: 'POST' })).json()) as string[];
    const result = await runLoad(
      `${base[store]}/logout`,
      ids.map((id) => `p=${id}`),
      CONNECTIONS,
    );
    if (result.errors > 0) throw new Error(`${store}: ${result.errors} errors`);
    return result;
  };
  for (let i = 0; i < 2; i++) {
    await run('memory', 500);
    await run('shared', 500);
  }
  const rps = { memory: [] as number[], shared: [] as number[] };
  const p99 = { memory: [] as number[], shared: [] as number[] };
  const ratios: number[] = [];
  await roundsStarting?.();
  const started = performance.now();
  let sharedLogouts = 0;
  for (let round = 0; round < HEALTHY_ROUNDS; round++) {
    for (const store of round % 2 ? (['memory', 'shared'] as const) : (['shared', 'memory'] as const)) {
      const result = await run(store, HEALTHY_REQUESTS);
      rps[store].push(result.rps);
      p99[store].push(result.p99Ms);
      if (store === 'shared') sharedLogouts += result.requests;
    }
    ratios.push(rps.shared[round] / rps.memory[round]);
  }
  return {
    memoryRps: Math.round(median(rps.memory)),
    sharedRps: Math.round(median(rps.shared)),
    ratio: round2(median(ratios)),
    memoryP99Ms: round2(median(p99.memory)),
    sharedP99Ms: round2(median(p99.shared)),
    sharedLogouts,
    seconds: round2((performance.now() - started) / 1000),
    rounds: { rps, p99, ratios },
  };
}

/** A deferred logout with the three origin headers a real one carries. */
function benchJob(id: string, now: number, extra: Partial<DeferredLogoutJob> = {}): DeferredLogoutJob {
  return {
    portalSessionId: id,
    headers: {
      'chargebee-request-origin-ip': '203.0.113.19',
      'chargebee-request-origin-device': 'Mozilla/5.0 (X11; Linux x86_64) bench/1.0',
      'chargebee-request-origin-user': 'customer.name@example.com',
    },
    idempotencyKey: `c2a4f1e0-5b7d-4e8a-9f3c-${id.slice(-12).padStart(12, '0')}`,
    firstAttemptAt: now,
    attempts: 4,
    notBefore: now,
    reason: 'budget_exhausted',
    ...extra,
  };
}

/** The time one `enqueue` spends in a store, p50 and p99 over 3,000 (after 300 of warm-up), in ms. */
async function deferralTime(store: DeferredLogoutStore) {
  const queue = new DeferredLogoutQueue({
    store,
    maxAgeMs: 3_600_000,
    baseDelayMs: 1000,
    maxDelayMs: 60_000,
    concurrency: 4,
    timeoutMs: 5000,
    attempt: async () => 'done',
    givenUp: () => undefined,
    log: pino({ level: 'silent' }),
  });
  const times: number[] = [];
  const later = Date.now() + 3_000_000;
  for (let i = 0; i < DEFERRALS + 300; i++) {
    const started = performance.now();
    await queue.enqueue(benchJob(`portal_deferral_${i}`, Date.now(), { notBefore: later }));
    if (i >= 300) times.push(performance.now() - started);
  }
  await queue.close(0);
  times.sort((a, b) => a - b);
  const ms = (x: number) => Math.round(x * 1000) / 1000;
  return { p50Ms: ms(quantile(times, 0.5)), p99Ms: ms(quantile(times, 0.99)), maxMs: ms(times[times.length - 1]) };
}

/** {@link deferralTime} on the memory store and on `shared`. */
export async function deferralTimes(shared: DeferredLogoutStore) {
  const memory = await deferralTime(new MemoryDeferredLogoutStore(DEFERRALS + 1000));
  return { deferrals: DEFERRALS, memory, shared: await deferralTime(shared) };
}

/** `jobs` open portal sessions at the emulator, each deferred in `store` (in batches of `batch`). */
export async function seedBacklog(
  emulator: ChargebeeEmulator,
  store: DeferredLogoutStore,
  jobs: number,
  site: string,
  batch: number,
): Promise<string[]> {
  const now = Date.now();
  const ids: string[] = [];
  for (let i = 0; i < jobs; i++) {
    const portal = emulator.createSession({ customerId: `cus_${i}` });
    emulator.openSession(portal.id);
    ids.push(portal.id);
  }
  for (let i = 0; i < jobs; i += batch) {
    const kept = await Promise.all(ids.slice(i, i + batch).map(async (id) => store.add(benchJob(id, now, { site }))));
    if (kept.includes(false)) throw new Error('the store refused a job');
  }
  return ids;
}

/**
 * Waits for `instances` to report a final result for each of `ids`, then reads the drain at the emulator:
 * its time against the ideal (the bucket's first burst goes at once, the rest at `rate` a minute), the rate
 * seen, duplicates and portal sessions left open.
 */
export async function drainFigures(emulator: ChargebeeEmulator, ids: string[], instances: Instance[], rate: number) {
  await Promise.all(instances.map(portOf));
  const finalsOf = (i: Instance) => i.lines.filter((l) => 'final' in l).length;
  const finals = () => instances.reduce((n, i) => n + finalsOf(i), 0);
  const jobs = ids.length;
  await waitFor(() => finals() >= jobs, (jobs / (rate / 60)) * 1500 + 60_000, 'the drain');
  await sleep(500);
  const requests = emulator.logoutRequests();
  const perId = new Map<string, number>();
  for (const r of requests) {
    const id = /portal_sessions\/([^/]+)\/logout/.exec(r.path)?.[1] ?? r.path;
    perId.set(id, (perId.get(id) ?? 0) + 1);
  }
  const times = requests.map((r) => r.at).sort((a, b) => a - b);
  const tookS = (times[times.length - 1] - times[0]) / 1000;
  const paceS = (jobs - drainRate(rate).burst) / (rate / 60);
  return {
    jobs,
    ratePerMinute: rate,
    processes: instances.length,
    tookS: round2(tookS),
    idealS: round2(paceS),
    vsIdeal: round2(tookS / paceS),
    measuredPerMinute: Math.round(((times.length - 1) * 60) / tookS),
    requests: requests.length,
    duplicates: [...perId.values()].reduce((n, c) => n + c - 1, 0),
    lost: ids.filter((id) => emulator.getSession(id)?.status !== 'logged_out').length,
    finals: finals(),
    finalsPerProcess: instances.map(finalsOf),
  };
}
