/**
 * `npm run bench:scheduled`: portal sessions that end by themselves (option `expiry`).
 *  1. The activity hook's cost per request, called as Express calls it (req.session holding 3 remembered
 *     portal sessions, 1,000 app sessions): when it does not write (within the activity interval), and when
 *     it does; the harness's own time subtracted. Then its writes: 1,000 app sessions called every 10 ms
 *     for 3 s with a 200 ms interval, store writes counted per app session.
 *  2. A 10,000-session run against the emulator (in this process, loopback HTTP), on the in-memory store
 *     and on the Redis store (a redis-server of its own, when one is installed): 10,000 portal sessions
 *     remembered over 10 s with a maximum age of 6 s and an idle time of 3 s (interval 0.5 s); a third get
 *     no activity (idle logout at 3.5 s), a third stop after 0.5 to 2.5 s, a third stay active (maximum age).
 *     Each one's scheduled end is followed from the store calls; reported: ended early, still open 1 s
 *     after its scheduled end (target 0), and how late the logouts came.
 *  3. What a scheduled logout costs the store: heap per job in memory (with --expose-gc), `used_memory` per
 *     job on Redis, and the round trip of one activity write (`postpone`) on Redis.
 * Figures go to bench/results/scheduled.json. All on loopback.
 *
 *   npm run bench:scheduled      (or: node --expose-gc --import tsx bench/scheduled.ts)
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { NextFunction, Request, Response } from 'express';
import pino from 'pino';
import { createClient, type RedisClientType } from 'redis';
import type { DeferredLogoutJob, DeferredLogoutStore, PortalLogoutMiddleware } from '../src';
import { RedisDeferredLogoutStore } from '../src/redis';
import { startRedisServer } from '../test/helpers/redis-server';
import { internals, library, libraryKind, testing } from './library';

type Emulator = Awaited<ReturnType<typeof testing.ChargebeeEmulator.start>>;
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type RedisClient = RedisClientType<any, any, any, any, any>;

const API_KEY = 'test_BENCH_SCHEDULED';
const APP_SESSIONS = 1000;
const PER_APP_SESSION = 3;
const HOOK_CALLS = 200_000;
const SESSIONS = Number(process.env.BENCH_SCHEDULED_SESSIONS ?? 10_000);
const RAMP_MS = 10_000;
const MAX_AGE_MS = 6000;
const IDLE_MS = 3000;
const INTERVAL_MS = 500;
/** A portal session still open this long after its scheduled end counts as open past it. */
const GRACE_MS = 1000;

const silent = pino({ level: 'silent' });
const round2 = (x: number) => Math.round(x * 100) / 100;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const quantile = (values: number[], q: number) => {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return Math.round(sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]);
};

let idCounter = 0;
const portalId = () => `portal_bench${(++idCounter).toString(36).padStart(8, '0')}_sched`;

/** An app session as the activity hook sees it through express-session: `req.session` with its portal sessions. */
function appSession(): Request {
  const remembered = Array.from({ length: PER_APP_SESSION }, () => ({ id: portalId() }));
  return { session: { chargebeePortalSessions: remembered }, headers: {} } as unknown as Request;
}

const res = {} as Response;
const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Calls a handler as Express does, resolving when it calls `next()`. */
function callHandler(handler: (req: Request, res: Response, next: NextFunction) => void, req: Request) {
  return new Promise<void>((resolve) => handler(req, res, resolve as NextFunction));
}

/** Microseconds per call of `handler`, cycling through `reqs`. */
async function microsPerCall(
  handler: (req: Request, res: Response, next: NextFunction) => void,
  reqs: Request[],
  calls: number,
): Promise<number> {
  for (let i = 0; i < 5000; i++) await callHandler(handler, reqs[i % reqs.length]); // warm-up
  const started = performance.now();
  for (let i = 0; i < calls; i++) await callHandler(handler, reqs[i % reqs.length]);
  return ((performance.now() - started) * 1000) / calls;
}

/** A store that counts `postpone` calls per first ID (an app session) and follows each scheduled end. */
function followed(store: DeferredLogoutStore) {
  const dueAt = new Map<string, number>();
  const latestAt = new Map<string, number>();
  const postpones = new Map<string, number>();
  const schedule = store.schedule?.bind(store);
  const postpone = store.postpone?.bind(store);
  const cancel = store.cancel?.bind(store);
  if (!schedule || !postpone || !cancel) throw new Error('the store cannot keep scheduled logouts');
  const wrapped: DeferredLogoutStore = {
    durable: store.durable,
    leaseMs: store.leaseMs,
    add: (job) => store.add(job),
    takeDue: (limit, rate) => store.takeDue(limit, rate),
    remove: (id) => store.remove(id),
    giveUp: (id, lease) => store.giveUp(id, lease),
    wakeSite: (site, count) => store.wakeSite(site, count),
    size: () => store.size(),
    figures: store.figures?.bind(store),
    list: store.list?.bind(store),
    pauseSite: (site, until) => store.pauseSite(site, until),
    attach: store.attach?.bind(store),
    schedule: (job: DeferredLogoutJob) => {
      dueAt.set(job.portalSessionId, job.notBefore);
      if (job.latestAt !== undefined) latestAt.set(job.portalSessionId, job.latestAt);
      return schedule(job);
    },
    postpone: (ids, at) => {
      postpones.set(ids[0], (postpones.get(ids[0]) ?? 0) + 1);
      for (const id of ids) {
        const due = dueAt.get(id);
        if (due !== undefined) dueAt.set(id, Math.min(latestAt.get(id) ?? Infinity, Math.max(due, at)));
      }
      return postpone(ids, at);
    },
    cancel,
  };
  return { store: wrapped, dueAt, postpones };
}

function middleware(
  emulator: Emulator,
  store: DeferredLogoutStore,
  expiry: { maxAgeMs?: number; idleMs?: number },
  onFinal?: (id: string, at: number, reason: string | undefined) => void,
  activityIntervalMs?: number,
): PortalLogoutMiddleware {
  return internals.middleware.createPortalLogout(
    {
      apiKey: API_KEY,
      baseUrl: emulator.baseUrl('acme-test'),
      registry: false,
      // Ten thousand scheduled ends in ten seconds: a drain rate of its own, not the default 30 a minute.
      deferred: { store, ratePerMinute: false },
      expiry,
      logger: silent,
      onOutcome: (outcome, req) => {
        if (!req && outcome.id !== undefined) onFinal?.(outcome.id, Date.now(), outcome.reason);
      },
    },
    { concurrency: 16, activityIntervalMs },
  );
}

async function hookFigures(emulator: Emulator) {
  const reqs = Array.from({ length: APP_SESSIONS }, appSession);
  const baseline = await microsPerCall((_req, _res, next) => next(), reqs, HOOK_CALLS);

  const quiet = followed(new library.MemoryDeferredLogoutStore());
  const portalLogout = middleware(emulator, quiet.store, { idleMs: 30 * 60_000 });
  const noWrite = await microsPerCall(portalLogout.activity, reqs, HOOK_CALLS);
  const writesWithin = [...quiet.postpones.values()].reduce((a, b) => a + b, 0);
  await portalLogout.close({ timeoutMs: 100 });

  // The same app sessions in the signed cookie store: the hook reads (and verifies) the cookie each time.
  const secret = 'bench-cookie-secret-0123456789';
  const cookieReqs = reqs.map((req) => {
    const list = (req as unknown as { session: { chargebeePortalSessions: unknown } }).session.chargebeePortalSessions;
    const value = internals.cookieSignature.signCookieValue(`j:${JSON.stringify(list)}`, secret);
    return { headers: { cookie: `chargebee_portal_sessions=${encodeURIComponent(value)}` } } as unknown as Request;
  });
  const inCookie = library.chargebeePortalLogout({
    apiKey: API_KEY,
    baseUrl: emulator.baseUrl('acme-test'),
    store: 'cookie',
    cookie: { secret },
    registry: false,
    expiry: { idleMs: 30 * 60_000 },
    logger: silent,
  });
  const noWriteCookie = await microsPerCall(inCookie.activity, cookieReqs, HOOK_CALLS / 2);
  await inCookie.close({ timeoutMs: 100 });

  const busy = followed(new library.MemoryDeferredLogoutStore());
  const everyRequest = middleware(emulator, busy.store, { idleMs: 30 * 60_000 }, undefined, 0);
  const write = await microsPerCall(everyRequest.activity, reqs, HOOK_CALLS / 4);
  await everyRequest.close({ timeoutMs: 100 });

  // Writes per app session per interval, in real time.
  const counted = followed(new library.MemoryDeferredLogoutStore());
  const RUN_MS = 3000;
  const WRITE_INTERVAL_MS = 200;
  const timed = middleware(emulator, counted.store, { idleMs: 60_000 }, undefined, WRITE_INTERVAL_MS);
  const started = performance.now();
  let calls = 0;
  while (performance.now() - started < RUN_MS) {
    for (const req of reqs) await callHandler(timed.activity, req);
    calls += reqs.length;
    await sleep(10);
  }
  const elapsed = performance.now() - started;
  await timed.close({ timeoutMs: 100 });
  const perSession = reqs.map((req) => counted.postpones.get(firstId(req)) ?? 0);
  const intervals = elapsed / WRITE_INTERVAL_MS;
  return {
    appSessions: APP_SESSIONS,
    portalSessionsPerAppSession: PER_APP_SESSION,
    harnessUs: round2(baseline),
    noWriteUs: round2(noWrite - baseline),
    noWriteCookieStoreUs: round2(noWriteCookie - baseline),
    writeMemoryUs: round2(write - baseline),
    writesWithinInterval: writesWithin,
    writeRun: {
      runMs: Math.round(elapsed),
      intervalMs: WRITE_INTERVAL_MS,
      requestsPerAppSession: Math.round(calls / APP_SESSIONS),
      maxWritesPerAppSession: Math.max(...perSession),
      maxWritesPerAppSessionPerInterval: round2(Math.max(...perSession) / intervals),
      // At most one per interval begun: floor(elapsed / interval) + 1.
      limit: Math.floor(intervals) + 1,
    },
  };
}

function firstId(req: Request): string {
  return (req as unknown as { session: { chargebeePortalSessions: Array<{ id: string }> } }).session
    .chargebeePortalSessions[0].id;
}

/** The 10,000-session run on one store; `redisStore` when on Redis (its round trip is timed too). */
async function sessionRun(emulator: Emulator, base: DeferredLogoutStore, label: string) {
  emulator.reset();
  const follow = followed(base);
  const ended = new Map<string, { at: number; reason: string | undefined }>();
  const portalLogout = middleware(
    emulator,
    follow.store,
    { maxAgeMs: MAX_AGE_MS, idleMs: IDLE_MS },
    (id, at, reason) => ended.set(id, { at, reason }),
    INTERVAL_MS,
  );
  type Entry = { id: string; req: Request; group: 0 | 1 | 2; stopAt: number };
  const entries: Entry[] = [];
  const started = Date.now();
  let rememberErrors = 0;

  // Activity: every 100 ms, each active app session makes a request (the hook writes once per interval).
  let activityCalls = 0;
  let stopActivity = false;
  const activity = (async () => {
    while (!stopActivity) {
      const now = Date.now();
      for (const entry of entries) {
        if (entry.group === 0 || now >= entry.stopAt || ended.has(entry.id)) continue;
        await callHandler(portalLogout.activity, entry.req);
        // Requests of an app come one event at a time: the queue's timers and sockets get their turn.
        if (++activityCalls % 100 === 0) await nextTurn();
      }
      await sleep(100);
    }
  })();

  // Remember SESSIONS portal sessions evenly over RAMP_MS, one app session each.
  for (let i = 0; i < SESSIONS; i++) {
    const wait = started + (i * RAMP_MS) / SESSIONS - Date.now();
    if (wait > 0) await sleep(wait);
    const portal = emulator.createSession({ customerId: `cus_sched_${i}` });
    emulator.openSession(portal.id);
    const req = { session: {}, headers: {} } as unknown as Request;
    try {
      await portalLogout.remember(req, res, portal.id);
    } catch {
      rememberErrors += 1;
    }
    const group = (i % 3) as 0 | 1 | 2;
    const stopAt = group === 1 ? Date.now() + 500 + ((i * 7919) % 2000) : Infinity;
    entries.push({ id: portal.id, req, group, stopAt });
  }

  // Watch: each portal session is looked at once, GRACE_MS after its scheduled end.
  let openAfterEnd = 0;
  let endedEarly = 0;
  const checked = new Set<string>();
  const lateness: number[] = [];
  const byReason: Record<string, number> = {};
  const deadline = Date.now() + MAX_AGE_MS + 30_000;
  while (checked.size < entries.length && Date.now() < deadline) {
    const now = Date.now();
    for (const { id } of entries) {
      if (checked.has(id)) continue;
      const due = follow.dueAt.get(id);
      if (due === undefined || now < due + GRACE_MS) continue;
      checked.add(id);
      if (emulator.getSession(id)?.status !== 'logged_out') openAfterEnd += 1;
    }
    await sleep(50);
  }
  stopActivity = true;
  await activity;
  for (const { id } of entries) {
    const end = ended.get(id);
    const due = follow.dueAt.get(id);
    if (!end || due === undefined) continue;
    if (end.at < due - 5) endedEarly += 1; // a few ms: Date.now() read on either side of the timer
    lateness.push(end.at - due);
    byReason[end.reason ?? 'none'] = (byReason[end.reason ?? 'none'] ?? 0) + 1;
  }
  await portalLogout.close({ timeoutMs: 1000 });
  const stillOpen = entries.filter(({ id }) => emulator.getSession(id)?.status !== 'logged_out').length;
  return {
    store: label,
    sessions: entries.length,
    rememberErrors,
    activityCalls,
    activityWrites: [...follow.postpones.values()].reduce((a, b) => a + b, 0),
    ended: ended.size,
    byReason,
    endedEarly,
    openAfterScheduledEnd: openAfterEnd,
    notChecked: entries.length - checked.size,
    stillOpenAtTheEnd: stillOpen,
    latenessMs: { p50: quantile(lateness, 0.5), p99: quantile(lateness, 0.99), max: quantile(lateness, 1) },
    runMs: Date.now() - started,
  };
}

/** A scheduled logout as `remember()` makes it (an entity header, a site, an idempotency key). */
function scheduledJob(i: number, dueAt: number): DeferredLogoutJob {
  return {
    portalSessionId: portalId(),
    businessEntityId: 'acme-us',
    headers: { 'chargebee-business-entity-id': 'acme-us' },
    idempotencyKey: `0c9d6a4e-${(100000 + i).toString(16)}-4f2b-9a7e-3d5c8b1f2e6a`,
    firstAttemptAt: dueAt,
    attempts: 0,
    notBefore: dueAt,
    reason: 'idle',
    site: 'a1b2c3d4e5f60718',
    latestAt: dueAt + 3_600_000,
  };
}

function gcHeapBytes(): number | undefined {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) return undefined;
  for (let i = 0; i < 3; i++) gc();
  return process.memoryUsage().heapUsed;
}

/** Heap bytes per scheduled logout in the in-memory store; `undefined` without --expose-gc. */
function memoryBytesPerJob(count: number): number | undefined {
  const store = new library.MemoryDeferredLogoutStore(2 * count);
  const before = gcHeapBytes();
  const dueAt = Date.now() + 3_600_000;
  for (let i = 0; i < count; i++) store.schedule(scheduledJob(i, dueAt));
  const after = gcHeapBytes();
  if (store.size() !== count) throw new Error('the in-memory store did not keep every scheduled logout');
  return before === undefined || after === undefined ? undefined : Math.round((after - before) / count);
}

/** Redis `used_memory` per scheduled logout, and the time of one `postpone` of an app session's 3 portal sessions. */
async function redisFootprint(client: RedisClient, count: number) {
  const store = new RedisDeferredLogoutStore(client, { prefix: '{bench-footprint}:' });
  store.attach({ maxAgeMs: 24 * 3_600_000, log: silent });
  const usedMemory = async () => Number(/used_memory:(\d+)/.exec(String(await client.info('memory')))?.[1]);
  const before = await usedMemory();
  const dueAt = Date.now() + 3_600_000;
  const ids: string[] = [];
  for (let i = 0; i < count; i += 50) {
    const batch = Array.from({ length: Math.min(50, count - i) }, (_, k) => scheduledJob(i + k, dueAt));
    ids.push(...batch.map((j) => j.portalSessionId));
    await Promise.all(batch.map((job) => store.schedule(job)));
  }
  const after = await usedMemory();
  const times: number[] = [];
  for (let i = 0; i + 3 <= Math.min(ids.length, 6000); i += 3) {
    const started = performance.now();
    await store.postpone(ids.slice(i, i + 3), dueAt + 60_000);
    times.push((performance.now() - started) * 1000);
  }
  await client.del(['{bench-footprint}:jobs', '{bench-footprint}:due', '{bench-footprint}:leases']);
  return {
    bytesPerJob: Math.round((after - before) / count),
    postponeUs: { p50: quantile(times, 0.5), p99: quantile(times, 0.99) },
  };
}

function redisInstalled(): boolean {
  return spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0;
}

async function main(): Promise<void> {
  const emulator = await testing.ChargebeeEmulator.start({
    sites: { 'acme-test': { apiKey: API_KEY } },
    recordLimit: 100,
  });
  try {
    const hook = await hookFigures(emulator);
    process.stdout.write(
      [
        `activity hook (${libraryKind}, Node ${process.versions.node}), ${APP_SESSIONS} app sessions × ${PER_APP_SESSION} portal sessions:`,
        `  no write (within the interval): ${hook.noWriteUs} µs per request (harness ${hook.harnessUs} µs subtracted); store writes: ${hook.writesWithinInterval} for ${APP_SESSIONS} app sessions`,
        `  no write, the signed cookie store (its signature checked at each request): ${hook.noWriteCookieStoreUs} µs per request`,
        `  a write (interval 0, in-memory store): ${hook.writeMemoryUs} µs per request`,
        `  ${hook.writeRun.requestsPerAppSession} requests per app session in ${hook.writeRun.runMs} ms, interval ${hook.writeRun.intervalMs} ms: at most ${hook.writeRun.maxWritesPerAppSession} writes per app session (limit ${hook.writeRun.limit})`,
        '',
      ].join('\n'),
    );
    const footprint: { memoryBytesPerJob?: number; redis?: Awaited<ReturnType<typeof redisFootprint>> } = {
      memoryBytesPerJob: memoryBytesPerJob(SESSIONS),
    };
    const runs = [await sessionRun(emulator, new library.MemoryDeferredLogoutStore(2 * SESSIONS), 'in memory')];
    if (redisInstalled()) {
      const server = await startRedisServer();
      const client = createClient({ url: server.url });
      client.on('error', () => undefined);
      await client.connect();
      try {
        footprint.redis = await redisFootprint(client, SESSIONS);
        runs.push(await sessionRun(emulator, new RedisDeferredLogoutStore(client), 'Redis'));
      } finally {
        await client.close();
        await server.close();
      }
    }
    for (const run of runs) {
      process.stdout.write(
        [
          `${run.sessions} portal sessions, ${run.store} store (max age ${MAX_AGE_MS} ms, idle ${IDLE_MS} ms, interval ${INTERVAL_MS} ms):`,
          `  ended ${run.ended} (${Object.entries(run.byReason)
            .map(([r, n]) => `${r} ${n}`)
            .join(
              ', ',
            )}); ended early ${run.endedEarly}; open ${GRACE_MS} ms after their scheduled end: ${run.openAfterScheduledEnd}; still open at the end: ${run.stillOpenAtTheEnd}`,
          `  lateness p50 ${run.latenessMs.p50} ms, p99 ${run.latenessMs.p99} ms, max ${run.latenessMs.max} ms; activity: ${run.activityCalls} requests, ${run.activityWrites} writes; ${run.runMs} ms`,
          '',
        ].join('\n'),
      );
    }
    process.stdout.write(
      `store per scheduled logout: ${footprint.memoryBytesPerJob ?? '(run with --expose-gc)'} bytes of heap in memory; ` +
        (footprint.redis
          ? `${footprint.redis.bytesPerJob} bytes of Redis used_memory; one activity write on Redis ${footprint.redis.postponeUs.p50} µs (p99 ${footprint.redis.postponeUs.p99} µs)\n`
          : 'no redis-server here\n'),
    );
    const dir = path.join(__dirname, 'results');
    mkdirSync(dir, { recursive: true });
    writeFileSync(
      path.join(dir, 'scheduled.json'),
      JSON.stringify({ node: process.versions.node, library: libraryKind, hook, runs, footprint }, null, 2),
    );
    const failed =
      hook.noWriteUs >= 20 ||
      hook.noWriteCookieStoreUs >= 20 ||
      hook.writeRun.maxWritesPerAppSession > hook.writeRun.limit ||
      runs.some((r) => r.openAfterScheduledEnd > 0 || r.endedEarly > 0 || r.stillOpenAtTheEnd > 0);
    if (failed) process.exitCode = 1;
  } finally {
    await emulator.close();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`bench/scheduled: ${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
