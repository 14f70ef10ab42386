/**
 * `npm run bench:recovery`: how soon a backlog deferred during a Chargebee outage closes once Chargebee
 * answers again, with the package's default backoffs (1 s doubling to 60 s between background attempts),
 * budget, retries and circuit breaker: nothing of the package's fixed figures is changed.
 *  1. One process, the in-memory store: an app with the middleware (`deferred.ratePerMinute` 6,000) in front
 *     of the emulator (loopback HTTP). Every logout gets a 503 for 20 s while 200 users log out, spread over
 *     those 20 s (each one deferred); then the fault is cleared. Measured: the time from healing until every
 *     portal session is logged out at the emulator and every final outcome has reached `onOutcome`.
 *  2. Three app processes (bench/recovery-instance.ts) sharing a redis-server of the bench's own on
 *     loopback: 2,000 users spread over the three during the 20 s outage, `ratePerMinute` 10,000 shared;
 *     the same figure, plus no portal session with more than one logout request after healing and none
 *     left open.
 * Target for both: (jobs / rate) + 5 s. Every figure goes to bench/results/recovery.json.
 *
 * Environment: BENCH_RECOVERY_ONLY=memory|redis (one part), BENCH_RECOVERY_ROUNDS (rounds of each part,
 * default 1), BENCH_RECOVERY_FAULT=503|hang (hang: Chargebee accepts and never answers), BENCH_RECOVERY_OUTAGE_MS
 * (default 20 000), BENCH_RECOVERY_USERS and BENCH_RECOVERY_RATE (part 1: 200 at 6,000/min),
 * BENCH_RECOVERY_REDIS_USERS and BENCH_RECOVERY_REDIS_RATE (part 2: 2,000 at 10,000/min).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import express from 'express';
import pino from 'pino';
import { createClient } from 'redis';
import { chargebeePortalLogout, type PortalLogoutOutcome } from '../src';
import { DEFAULT_TUNING } from '../src/options/tuning';
import { DEFAULT_CIRCUIT_BREAKER } from '../src/reliability/circuit-breaker';
import { DEFAULT_BUDGET_MS, DEFAULT_MAX_ATTEMPTS } from '../src/reliability/retry';
import { ChargebeeEmulator, type EmulatorFault } from '../src/testing';
import { startInstance, type Instance } from '../test/helpers/instances';
import { listen } from '../test/helpers/listen';
import { postLogout } from '../test/helpers/post-logout';
import { startRedisServer } from '../test/helpers/redis-server';
import { portOf, round2, sleep } from './shared-store';

const env = process.env;
const ONLY = env.BENCH_RECOVERY_ONLY;
const ROUNDS = Number(env.BENCH_RECOVERY_ROUNDS ?? 1);
const FAULT = env.BENCH_RECOVERY_FAULT === 'hang' ? 'hang' : '503';
const OUTAGE_MS = Number(env.BENCH_RECOVERY_OUTAGE_MS ?? 20_000);
const MEMORY = { users: Number(env.BENCH_RECOVERY_USERS ?? 200), rate: Number(env.BENCH_RECOVERY_RATE ?? 6000) };
const REDIS = {
  users: Number(env.BENCH_RECOVERY_REDIS_USERS ?? 2000),
  rate: Number(env.BENCH_RECOVERY_REDIS_RATE ?? 10_000),
  processes: 3,
};
/** The target: the ideal drain (jobs / rate) plus this. */
const SLACK_S = 5;
/** Longest wait for a backlog after healing; past it the round counts what was left. */
const WAIT_LIMIT_MS = 180_000;
/** After the last final result: time for a late duplicate to show. */
const SETTLE_MS = 1000;
const API_KEY = 'test_bench_recovery';
const SITE = 'acme-test';
const ROOT = path.resolve(__dirname, '..');

const log = (line: string) => process.stdout.write(`${line}\n`);

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** The fault of the outage, on every logout call. */
function outageFault(): EmulatorFault {
  const match = { method: 'POST', path: /\/portal_sessions\/[^/]+\/logout$/ };
  return FAULT === 'hang' ? { match, hang: true } : { match, status: 503, apiErrorCode: 'site_not_ready' };
}

/** A final result of a deferred logout, or the queue's "Chargebee answers again" line (epoch ms). */
interface Final {
  at: number;
  status: string;
}
interface Woken {
  at: number;
  due: number;
}

/** The middleware's log as a pino destination: the recovery's line is kept, errors go to stderr. */
function logReader(woken: Woken[]): { write(line: string): void } {
  return {
    write(line) {
      if (line.includes('Chargebee answers again')) {
        const entry = JSON.parse(line) as { time: number; chargebeePortalLogout?: { due?: number } };
        woken.push({ at: entry.time, due: entry.chargebeePortalLogout?.due ?? 0 });
      } else if (/"level":(50|60)/.test(line)) process.stderr.write(line);
    },
  };
}

function openSessions(emulator: ChargebeeEmulator, n: number): string[] {
  return Array.from({ length: n }, (_, i) => {
    const portal = emulator.createSession({ customerId: `cus_recovery_${i}` });
    emulator.openSession(portal.id);
    return portal.id;
  });
}

/** Fires `fire(i)` for i < n, evenly over `spanMs` from now; resolves with every answer (undefined: HTTP error). */
async function spread<T>(n: number, spanMs: number, fire: (i: number) => Promise<T>): Promise<Array<T | undefined>> {
  const start = Date.now();
  const pending: Array<Promise<T | undefined>> = [];
  for (let i = 0; i < n; i++) {
    const wait = start + ((i + 0.5) * spanMs) / n - Date.now();
    if (wait > 0) await sleep(wait);
    pending.push(fire(i).catch(() => undefined));
  }
  return Promise.all(pending);
}

/** The outage: the fault for OUTAGE_MS, the users' logouts spread over it; then healed. */
async function outage(
  emulator: ChargebeeEmulator,
  users: number,
  logout: (i: number) => Promise<PortalLogoutOutcome>,
): Promise<{ outcomes: Array<PortalLogoutOutcome | undefined>; healIndex: number; healedAt: number }> {
  emulator.injectFault(outageFault());
  const started = Date.now();
  const outcomes = await spread(users, OUTAGE_MS - 100, logout);
  const left = started + OUTAGE_MS - Date.now();
  if (left > 0) await sleep(left);
  // The record holds the requests in order: those past this index came after the fault was cleared.
  const healIndex = emulator.logoutRequests().length;
  emulator.clearFaults();
  const healedAt = Date.now();
  return { outcomes, healIndex, healedAt };
}

/** Waits until every portal session is logged out at the emulator and `finals()` has them all, or the limit. */
async function waitForBacklog(
  emulator: ChargebeeEmulator,
  ids: string[],
  finals: () => number,
  healedAt: number,
): Promise<void> {
  const open = new Set(ids);
  while (Date.now() - healedAt < WAIT_LIMIT_MS) {
    for (const id of open) if (emulator.getSession(id)?.status === 'logged_out') open.delete(id);
    if (open.size === 0 && finals() >= ids.length) break;
    await sleep(25);
  }
  await sleep(SETTLE_MS);
}

interface RoundFigures {
  users: number;
  ratePerMinute: number;
  processes: number;
  fault: string;
  outageMs: number;
  inline: Record<string, number>;
  deferReasons: Record<string, number>;
  inlineMaxMs: number;
  httpErrors: number;
  /** Logout calls Chargebee got during the outage: the inline attempts and the background ones (probes). */
  callsDuringOutage: number;
  /** From healing (s): the first logout call, the queue's "answers again" line, the last session logged out, the last final result. */
  firstCallS: number | null;
  wokenS: number | null;
  woken: number | null;
  loggedOutS: number | null;
  reportedS: number | null;
  /** The later of the two: the backlog is closed. */
  closedS: number | null;
  idealS: number;
  targetS: number;
  met: boolean;
  /** Logout calls after healing, and their rate (per minute, first to last). */
  callsAfterHealing: number;
  measuredPerMinute: number | null;
  /** Portal sessions that got more than one logout call after healing (when every call succeeds). */
  duplicates: number;
  maxCallsPerSession: number;
  leftOpen: number;
  finals: number;
  finalStatuses: Record<string, number>;
  leftInQueue: number | null;
  [extra: string]: unknown;
}

function analyse(
  emulator: ChargebeeEmulator,
  ids: string[],
  heal: { healIndex: number; healedAt: number },
  outcomes: Array<PortalLogoutOutcome | undefined>,
  finals: Final[],
  woken: Woken[],
  rate: number,
): RoundFigures {
  const since = (at: number | undefined) => (at === undefined ? null : round2((at - heal.healedAt) / 1000));
  const requests = emulator.logoutRequests();
  const after = requests.slice(heal.healIndex);
  const calls = new Map<string, { count: number; first: number }>();
  for (const r of after) {
    const id = /portal_sessions\/([^/]+)\/logout/.exec(r.path)?.[1] ?? r.path;
    const seen = calls.get(id);
    if (seen) seen.count += 1;
    else calls.set(id, { count: 1, first: r.at });
  }
  const leftOpen = ids.filter((id) => emulator.getSession(id)?.status !== 'logged_out').length;
  const firstCalls = ids.map((id) => calls.get(id)?.first);
  const loggedOutAt =
    leftOpen === 0 && firstCalls.every((at) => at !== undefined) ? Math.max(...firstCalls) : undefined;
  const reportedAt = finals.length >= ids.length ? Math.max(...finals.map((f) => f.at)) : undefined;
  const loggedOutS = since(loggedOutAt);
  const reportedS = since(reportedAt);
  const closedS = loggedOutS === null || reportedS === null ? null : Math.max(loggedOutS, reportedS);
  const idealS = ids.length / (rate / 60);
  const targetS = idealS + SLACK_S;
  const count = (values: string[]) => {
    const out: Record<string, number> = {};
    for (const v of values) out[v] = (out[v] ?? 0) + 1;
    return out;
  };
  const answered = outcomes.filter((o): o is PortalLogoutOutcome => o !== undefined);
  const times = after.map((r) => r.at);
  const spanMs = times.length > 1 ? times[times.length - 1] - times[0] : 0;
  const firstWoken = woken.find((w) => w.at >= heal.healedAt);
  return {
    users: ids.length,
    ratePerMinute: rate,
    processes: 1,
    fault: FAULT,
    outageMs: OUTAGE_MS,
    inline: count(answered.map((o) => o.result)),
    deferReasons: count(answered.flatMap((o) => o.portalSessions.map((p) => p.reason ?? p.status))),
    inlineMaxMs: Math.round(Math.max(0, ...answered.map((o) => o.durationMs))),
    httpErrors: outcomes.length - answered.length,
    callsDuringOutage: heal.healIndex,
    firstCallS: since(after[0]?.at),
    wokenS: since(firstWoken?.at),
    woken: firstWoken?.due ?? null,
    loggedOutS,
    reportedS,
    closedS,
    idealS: round2(idealS),
    targetS: round2(targetS),
    met: closedS !== null && closedS <= targetS,
    callsAfterHealing: after.length,
    measuredPerMinute: spanMs > 0 ? Math.round(((times.length - 1) * 60_000) / spanMs) : null,
    duplicates: [...calls.values()].filter((c) => c.count > 1).length,
    maxCallsPerSession: Math.max(0, ...[...calls.values()].map((c) => c.count)),
    leftOpen,
    finals: finals.length,
    finalStatuses: count(finals.map((f) => f.status)),
    leftInQueue: null,
  };
}

/** Part 1: one process, the in-memory store. */
async function memoryRound(): Promise<RoundFigures> {
  const emulator = await ChargebeeEmulator.start({ sites: { [SITE]: { apiKey: API_KEY } }, recordLimit: 100_000 });
  const finals: Final[] = [];
  const woken: Woken[] = [];
  const portalLogout = chargebeePortalLogout({
    apiKey: API_KEY,
    baseUrl: emulator.baseUrl(SITE),
    store: (req) => [req.get('x-portal-session') ?? ''],
    deferred: { ratePerMinute: MEMORY.rate },
    onOutcome: (outcome, req) => {
      if (!req) finals.push({ at: Date.now(), status: outcome.status });
    },
    logger: pino({ level: 'info' }, logReader(woken)),
  });
  const app = express();
  app.post('/logout', portalLogout, (_req, res) => void res.json(res.locals.chargebeePortalLogout));
  const served = await listen(app);
  const port = Number(new URL(served.url).port);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  try {
    const ids = openSessions(emulator, MEMORY.users);
    const heal = await outage(emulator, ids.length, (i) => postLogout(port, agent, ids[i]));
    await waitForBacklog(emulator, ids, () => finals.length, heal.healedAt);
    const figures = analyse(emulator, ids, heal, heal.outcomes, finals, woken, MEMORY.rate);
    figures.leftInQueue = (await portalLogout.stats()).queue?.depth ?? null;
    return figures;
  } finally {
    agent.destroy();
    await portalLogout.close({ timeoutMs: 1000 });
    await served.close();
    await emulator.close();
  }
}

/** Part 2: three processes on one Redis. */
async function redisRound(redisUrl: string, round: number): Promise<RoundFigures> {
  const emulator = await ChargebeeEmulator.start({ sites: { [SITE]: { apiKey: API_KEY } }, recordLimit: 100_000 });
  const prefix = `{bench-recovery-${Date.now()}-${round}}:`;
  const client = createClient({ url: redisUrl });
  client.on('error', () => undefined);
  await client.connect();
  const instances: Instance[] = [];
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  try {
    const instanceEnv = {
      REDIS_URL: redisUrl,
      PREFIX: prefix,
      BASE_URL: emulator.baseUrl(SITE),
      API_KEY,
      RATE: String(REDIS.rate),
    };
    for (let i = 0; i < REDIS.processes; i++) instances.push(startInstance('bench/recovery-instance.ts', instanceEnv));
    const ports = await Promise.all(instances.map(portOf));
    const ids = openSessions(emulator, REDIS.users);
    const finalsOf = (instance: Instance): Final[] =>
      instance.lines.filter((l) => 'final' in l).map((l) => ({ at: Number(l.at), status: String(l.status) }));
    const heal = await outage(emulator, ids.length, (i) => postLogout(ports[i % ports.length], agent, ids[i]));
    await waitForBacklog(
      emulator,
      ids,
      () => instances.reduce((n, instance) => n + finalsOf(instance).length, 0),
      heal.healedAt,
    );
    const woken = instances
      .flatMap((instance) => instance.lines.filter((l) => 'woken' in l))
      .map((l) => ({ at: Number(l.at), due: Number(l.woken) }))
      .sort((a, b) => a.at - b.at);
    const figures = analyse(emulator, ids, heal, heal.outcomes, instances.flatMap(finalsOf), woken, REDIS.rate);
    figures.processes = REDIS.processes;
    figures.finalsPerProcess = instances.map((instance) => finalsOf(instance).length);
    // Each process's first "answers again" after healing: seconds from healing, and how many it made due.
    figures.wokenPerProcess = instances.map((instance) => {
      const line = instance.lines.find((l) => 'woken' in l && Number(l.at) >= heal.healedAt);
      return line ? { s: round2((Number(line.at) - heal.healedAt) / 1000), due: Number(line.woken) } : null;
    });
    // When each process got its first final result after healing: how soon the others joined the drain.
    figures.firstFinalPerProcess = instances.map((instance) => {
      const ats = finalsOf(instance).map((f) => f.at);
      return ats.length ? round2((Math.min(...ats) - heal.healedAt) / 1000) : null;
    });
    figures.leftInQueue = await client.hLen(`${prefix}jobs`);
    return figures;
  } finally {
    agent.destroy();
    await Promise.all(instances.map((instance) => instance.kill('SIGTERM')));
    const keys = await client.keys(`${prefix}*`);
    if (keys.length > 0) await client.del(keys);
    await client.close();
    await emulator.close();
  }
}

function describe(name: string, f: RoundFigures): string {
  const reasons = Object.entries(f.deferReasons)
    .map(([reason, n]) => `${reason} ${n}`)
    .join(', ');
  const inline = Object.entries(f.inline)
    .map(([result, n]) => `${n} ${result}`)
    .join(', ');
  return (
    `${name}: ${inline} (${reasons}; slowest ${f.inlineMaxMs} ms${f.httpErrors ? `, ${f.httpErrors} HTTP errors` : ''}); ` +
    `${f.callsDuringOutage} logout calls during the ${f.outageMs / 1000} s outage. After healing: first call +${f.firstCallS} s, ` +
    `"answers again" +${f.wokenS ?? '-'} s (${f.woken ?? '-'} due), all logged out +${f.loggedOutS ?? '-'} s, ` +
    `all reported +${f.reportedS ?? '-'} s (ideal ${f.idealS} s, target ${f.targetS} s: ${f.met ? 'met' : 'MISSED'}); ` +
    `${f.callsAfterHealing} calls at ${f.measuredPerMinute ?? '-'}/min; ${f.duplicates} sessions with more than one call ` +
    `(most ${f.maxCallsPerSession}), ${f.leftOpen} left open, ${f.finals} final results, ${f.leftInQueue ?? '-'} left in the queue`
  );
}

interface Part {
  name: string;
  rounds: RoundFigures[];
}

function summary(part: Part) {
  const closed = part.rounds.map((r) => r.closedS ?? Infinity);
  const first = part.rounds[0];
  return {
    name: part.name,
    jobs: first.users,
    ratePerMinute: first.ratePerMinute,
    idealS: first.idealS,
    targetS: first.targetS,
    closedS: median(closed),
    minS: Math.min(...closed),
    maxS: Math.max(...closed),
    metRounds: part.rounds.filter((r) => r.met).length,
    rounds: part.rounds.length,
    duplicates: Math.max(...part.rounds.map((r) => r.duplicates)),
    leftOpen: Math.max(...part.rounds.map((r) => r.leftOpen)),
  };
}

function table(parts: Part[]): string[] {
  const lines = [
    '| scenario | jobs | rate/min | ideal s | target s | healed → closed, s | met | duplicates | left open |',
    '| --- | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: |',
  ];
  for (const part of parts) {
    const s = summary(part);
    const fmt = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : 'not closed');
    const closed = s.rounds > 1 ? `${fmt(s.closedS)} (${fmt(s.minS)} to ${fmt(s.maxS)})` : fmt(s.closedS);
    const met = s.metRounds === s.rounds ? 'met' : 'MISSED';
    lines.push(
      `| ${s.name} | ${s.jobs} | ${s.ratePerMinute} | ${s.idealS.toFixed(2)} | ${s.targetS.toFixed(2)} | ${closed} | ` +
        `${met}${s.rounds > 1 ? ` (${s.metRounds}/${s.rounds})` : ''} | ${s.duplicates} | ${s.leftOpen} |`,
    );
  }
  return lines;
}

async function main(): Promise<void> {
  log(
    `bench:recovery on ${os.cpus().length} CPUs (load average ${os.loadavg()[0].toFixed(1)}), Node ${process.version}; ` +
      `fault ${FAULT} for ${OUTAGE_MS / 1000} s; defaults: budget ${DEFAULT_BUDGET_MS} ms, ${DEFAULT_MAX_ATTEMPTS} attempts, ` +
      `queue backoff ${DEFAULT_TUNING.queueBaseDelayMs} ms to ${DEFAULT_TUNING.queueMaxDelayMs} ms, circuit breaker ` +
      `${DEFAULT_CIRCUIT_BREAKER.failureThreshold} failures / ${DEFAULT_CIRCUIT_BREAKER.coolOffMs} ms`,
  );
  const parts: Part[] = [];
  if (ONLY !== 'redis') {
    const part: Part = { name: 'one process, memory store', rounds: [] };
    for (let round = 1; round <= ROUNDS; round++) {
      const figures = await memoryRound();
      part.rounds.push(figures);
      log(describe(`memory, round ${round}`, figures));
    }
    parts.push(part);
  }
  if (ONLY !== 'memory') {
    const server = await startRedisServer();
    try {
      const part: Part = { name: `${REDIS.processes} processes, Redis store`, rounds: [] };
      for (let round = 1; round <= ROUNDS; round++) {
        const figures = await redisRound(server.url, round);
        part.rounds.push(figures);
        log(describe(`redis, round ${round}`, figures));
        log(
          `  per process: finals ${JSON.stringify(figures.finalsPerProcess)}, first final result +${JSON.stringify(figures.firstFinalPerProcess)} s, first "answers again" after healing ${JSON.stringify(figures.wokenPerProcess)}`,
        );
      }
      parts.push(part);
    } finally {
      await server.close();
    }
  }
  log('');
  for (const line of table(parts)) log(line);
  const results = {
    at: new Date().toISOString(),
    node: process.version,
    cpus: os.cpus().length,
    loadAverage: os.loadavg()[0],
    fault: FAULT,
    outageMs: OUTAGE_MS,
    slackS: SLACK_S,
    parts: parts.map((part) => ({ ...summary(part), roundFigures: part.rounds })),
  };
  mkdirSync(path.join(ROOT, 'bench/results'), { recursive: true });
  writeFileSync(path.join(ROOT, 'bench/results/recovery.json'), `${JSON.stringify(results, null, 2)}\n`);
  const failed = parts.flatMap((part) => {
    const s = summary(part);
    return [
      s.metRounds < s.rounds && `${part.name}: backlog not closed within the target`,
      s.duplicates > 0 && `${part.name}: duplicates`,
      s.leftOpen > 0 && `${part.name}: portal sessions left open`,
    ].filter((x): x is string => typeof x === 'string');
  });
  log(failed.length ? `targets missed: ${failed.join('; ')}` : 'targets met');
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`bench:recovery: ${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  },
);
