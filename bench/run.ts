/**
 * `npm run bench`: our middleware against the logout routes a user would write instead.
 *
 * Three processes on loopback: the Chargebee emulator (src/testing/cli.ts, compiled), the app with the routes
 * (bench/app.ts: four, and route 2's code again as 2′, the A/A control), and this one, which generates the
 * load with autocannon. Then in-process benchmarks: memory (bench/memory.ts), per-request work
 * (bench/micro.ts) and what OpenTelemetry costs (bench/telemetry.ts). Prints every round of the healthy
 * scenarios and the medians, checks the performance targets (bench/README.md), and writes every figure to
 * bench/results/. Every child is killed at the end.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { median, runCapped, runLoad, type CappedResult, type LoadResult } from './load';
import type { MemoryResult } from './memory';
import type { MicroResult } from './micro';
import { runTelemetryBench, telemetryReport, type TelemetryResult } from './telemetry';
import {
  buildLibrary,
  killAll,
  ROOT,
  runChild,
  startApp,
  startEmulator,
  type AppProcess,
  type EmulatorProcess,
} from './processes';
import { ROUTE_LABELS, ROUTES, type AppStats, type RouteName } from './protocol';

/** Connections autocannon keeps open in the healthy scenarios (its own default). */
const CONNECTIONS = 10;
/** Rounds of the healthy scenarios (medians of these); the order of the routes rotates every round. */
const ROUNDS = 5;
/** Rounds of the other scenarios. */
const FEW_ROUNDS = 3;
const HEALTHY_REQUESTS = 1200;
const HEALTHY_LATENCY_REQUESTS = 600;
/** Connections in the several-sessions scenario: few, so its time is one logout's, not a queue's. */
const SEVERAL_CONNECTIONS = 2;
const SEVERAL_PORTAL_SESSIONS = 5;
const LATENCY_MS = 20;
/** The outage measurement stops waiting for an answer here. */
const OUTAGE_CAP_MS = 10_000;
const OUTAGE_REQUESTS = 20;
/** Logouts per run once route 4's breaker is open: enough for a p99 worth the name. */
const BREAKER_REQUESTS = 1000;
/** The whole run stops (children killed, exit code 1) past this, whatever is running. */
const DEADLINE_MS = 450_000;

/** One run: the load's figures, the app process's CPU time per logout, and whether the work was real. */
type Run = LoadResult & {
  cpuUsPerLogout: number;
  emulatorCpuUsPerLogout?: number;
  verified: boolean;
  /** The round (1-based) of a measured run of {@link rounds}, and the route's place in that round's order. */
  round?: number;
  position?: number;
};

interface Figures {
  rps: number;
  p50Ms: number;
  p99Ms: number;
  /** CPU time of the app process per logout (the emulator and autocannon not included). */
  cpuUsPerLogout: number;
  /** CPU time of the emulator process per logout (10 ms resolution over the run). */
  emulatorCpuUsPerLogout: number;
  runs: Run[];
}

interface Context {
  emulator: EmulatorProcess;
  app: AppProcess;
  /** Faults to put back after each reset of the emulator. */
  faults: unknown[];
}

const round1 = (x: number) => Math.round(x * 10) / 10;
const round2 = (x: number) => Math.round(x * 100) / 100;
const log = (line: string) => process.stdout.write(`${line}\n`);

async function resetEmulator(ctx: Context): Promise<void> {
  await ctx.emulator.control('POST', 'reset', {});
  for (const fault of ctx.faults) await ctx.emulator.control('POST', 'faults', fault);
}

/**
 * Checks that a run did the real work: every request logged its own portal sessions out in the emulator,
 * and the route counted them as ended. Then resets the emulator for the next run.
 */
async function verify(
  ctx: Context,
  route: RouteName,
  requests: number,
  perSession: number,
): Promise<{ verified: boolean; cpuUsPerLogout: number }> {
  const appStats = await ctx.app.call<AppStats>({ cmd: 'stats' });
  const stats = appStats.routes[route];
  const { sessions } = (await ctx.emulator.control('GET', 'sessions')) as { sessions: Array<{ status: string }> };
  await resetEmulator(ctx);
  const loggedOut = sessions.filter((s) => s.status === 'logged_out').length;
  const expected = route === 'bare' ? 0 : requests * perSession;
  const ok = stats.requests === requests && loggedOut === expected && stats.portalSessionsEnded === expected;
  if (!ok)
    log(
      `  ! ${route}: ${stats.requests}/${requests} requests, ${loggedOut}/${expected} portal sessions logged out in the emulator, ${stats.portalSessionsEnded} counted ended, failures ${JSON.stringify(stats.failureKinds)}`,
    );
  return { verified: ok, cpuUsPerLogout: appStats.cpuUs / requests };
}

/** One run: fresh logged-in users (one cookie per request), the load, then the check. */
async function measure(
  ctx: Context,
  route: RouteName,
  requests: number,
  perSession: number,
  connections: number,
): Promise<Run> {
  const cookies = await ctx.app.call<string[]>({ cmd: 'prepare', count: requests, perSession }, 120_000);
  await ctx.app.call({ cmd: 'stats' }); // starts the CPU count here, after the preparation
  const emulatorCpu = ctx.emulator.cpuUs();
  const result = await runLoad(`${ctx.app.url}/logout/${route}`, cookies, connections);
  const emulatorCpuUsPerLogout = (ctx.emulator.cpuUs() - emulatorCpu) / requests;
  return { ...result, emulatorCpuUsPerLogout, ...(await verify(ctx, route, requests, perSession)) };
}

function summarize(runs: Run[]): Figures {
  const med = (pick: (r: Run) => number) => round2(median(runs.map(pick)));
  return {
    rps: round1(median(runs.map((r) => r.rps))),
    p50Ms: med((r) => r.p50Ms),
    p99Ms: med((r) => r.p99Ms),
    cpuUsPerLogout: round1(median(runs.map((r) => r.cpuUsPerLogout))),
    emulatorCpuUsPerLogout: round1(median(runs.map((r) => r.emulatorCpuUsPerLogout ?? NaN))),
    runs,
  };
}

/** Warm-up, then `count` rounds with the routes in rotating order; medians per route. */
async function rounds(
  ctx: Context,
  count: number,
  routes: readonly RouteName[],
  requests: number,
  warmup: number,
  perSession: number,
  connections: number,
): Promise<Record<string, Figures>> {
  for (const route of routes) await measure(ctx, route, warmup, perSession, connections);
  const runs = new Map<RouteName, Run[]>(routes.map((r) => [r, []]));
  for (let round = 0; round < count; round++) {
    for (let i = 0; i < routes.length; i++) {
      const route = routes[(i + round) % routes.length];
      const run = await measure(ctx, route, requests, perSession, connections);
      runs.get(route)?.push({ ...run, round: round + 1, position: i + 1 });
    }
  }
  return Object.fromEntries([...runs].map(([route, r]) => [route, summarize(r)]));
}

async function healthy(
  ctx: Context,
  latencyMs: number,
  requests: number,
  warmup: number,
): Promise<Record<string, Figures>> {
  ctx.faults = latencyMs ? [{ latencyMs, match: { method: 'POST', pathRegex: '/logout$' } }] : [];
  await resetEmulator(ctx);
  return rounds(ctx, ROUNDS, ROUTES, requests, warmup, 1, CONNECTIONS);
}

async function several(ctx: Context): Promise<Record<string, { single: Figures; several: Figures; ratio: number }>> {
  ctx.faults = [{ latencyMs: LATENCY_MS, match: { method: 'POST', pathRegex: '/logout$' } }];
  await resetEmulator(ctx);
  const routes: RouteName[] = ['axios', 'sdk', 'ours'];
  const single = await rounds(ctx, FEW_ROUNDS, routes, 100, 20, 1, SEVERAL_CONNECTIONS);
  const many = await rounds(ctx, FEW_ROUNDS, routes, 100, 20, SEVERAL_PORTAL_SESSIONS, SEVERAL_CONNECTIONS);
  return Object.fromEntries(
    routes.map((r) => [r, { single: single[r], several: many[r], ratio: round2(many[r].p50Ms / single[r].p50Ms) }]),
  );
}

interface Outage {
  sdk: CappedResult;
  ours: CappedResult;
  breaker?: { bare: Figures; ours: Figures; oursFailures: Record<string, number> };
}

async function outage(ctx: Context): Promise<Outage> {
  ctx.faults = [{ hang: true, match: { method: 'POST', pathRegex: '/logout$' } }];
  await resetEmulator(ctx);
  const [sdkCookies, oursCookies] = await Promise.all([
    ctx.app.call<string[]>({ cmd: 'prepare', count: OUTAGE_REQUESTS, perSession: 1 }),
    ctx.app.call<string[]>({ cmd: 'prepare', count: OUTAGE_REQUESTS, perSession: 1 }),
  ]);
  // Both at once: the SDK's requests wait 80 s, ours at most the budget; together they take the cap.
  const [sdk, ours] = await Promise.all([
    runCapped(`${ctx.app.url}/logout/sdk`, sdkCookies, OUTAGE_CAP_MS),
    runCapped(`${ctx.app.url}/logout/ours`, oursCookies, OUTAGE_CAP_MS),
  ]);
  await ctx.app.call({ cmd: 'stats' });
  if (!ctx.app.features.circuitBreaker) return { sdk, ours };
  // Those failures (OUTAGE_REQUESTS, past the default failureThreshold of 5) opened route 4's breaker,
  // for the default coolOffMs of 30 s: measure it against the floor while the emulator still hangs.
  const breakerRuns = new Map<RouteName, Run[]>([
    ['bare', []],
    ['ours', []],
  ]);
  const failures: Record<string, number> = {};
  for (let round = 0; round < FEW_ROUNDS; round++) {
    for (const route of round % 2 ? (['ours', 'bare'] as const) : (['bare', 'ours'] as const)) {
      const cookies = await ctx.app.call<string[]>({ cmd: 'prepare', count: BREAKER_REQUESTS, perSession: 1 });
      await ctx.app.call({ cmd: 'stats' });
      const load = await runLoad(`${ctx.app.url}/logout/${route}`, cookies, CONNECTIONS);
      const stats = await ctx.app.call<AppStats>({ cmd: 'stats' });
      // Nothing is logged out here: route 4 skips the call (breaker open) and keeps the IDs for later.
      breakerRuns.get(route)?.push({
        ...load,
        cpuUsPerLogout: stats.cpuUs / BREAKER_REQUESTS,
        verified: stats.routes[route].requests === BREAKER_REQUESTS,
      });
      for (const [kind, n] of Object.entries(stats.routes.ours.failureKinds))
        failures[kind] = (failures[kind] ?? 0) + n;
    }
  }
  return {
    sdk,
    ours,
    breaker: {
      bare: summarize(breakerRuns.get('bare') ?? []),
      ours: summarize(breakerRuns.get('ours') ?? []),
      oursFailures: failures,
    },
  };
}

// ---- report ----

function table(rows: string[][]): string {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  return rows
    .map((r) => r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join('  '))
    .join('\n');
}

const signed = (x: number, digits: number) => `${x >= 0 ? '+' : ''}${x.toFixed(digits)}`;

function healthyTable(title: string, figures: Record<string, Figures>): string {
  const ref = figures.axios;
  const rows = [
    [
      'route',
      'req/s',
      '× route 2',
      'p50 ms',
      'p99 ms',
      'p99 − route 2',
      'app CPU µs/logout',
      '× route 2',
      'emulator CPU µs/logout',
    ],
  ];
  for (const route of ROUTES) {
    const f = figures[route];
    rows.push([
      ROUTE_LABELS[route],
      f.rps.toFixed(0),
      (f.rps / ref.rps).toFixed(2),
      f.p50Ms.toFixed(2),
      f.p99Ms.toFixed(2),
      route === 'axios' ? '' : signed(f.p99Ms - ref.p99Ms, 2),
      f.cpuUsPerLogout.toFixed(0),
      (f.cpuUsPerLogout / ref.cpuUsPerLogout).toFixed(2),
      f.emulatorCpuUsPerLogout.toFixed(0),
    ]);
  }
  return `${title}\n${table(rows)}`;
}

/**
 * Every measured round of a healthy scenario, one row per route: req/s and app CPU per logout, their median
 * and spread ((max − min) ÷ median), and the same-round ratios of route 4 and of the A/A route 2′ to route 2.
 */
function roundsTables(title: string, figures: Record<string, Figures>): string {
  const count = Math.max(...ROUTES.map((r) => figures[r].runs.length));
  const roundNumbers = Array.from({ length: count }, (_, i) => i + 1);
  const byRound = (route: RouteName, pick: (r: Run) => number) =>
    roundNumbers.map((n) => {
      const run = figures[route].runs.find((r) => r.round === n);
      return run ? pick(run) : NaN;
    });
  const part = (metric: string, pick: (r: Run) => number, digits: number): string => {
    const rows = [[`${metric}, by round`, ...roundNumbers.map(String), 'median', 'spread']];
    for (const route of ROUTES) {
      const values = byRound(route, pick);
      const med = round1(median(values)); // as in the medians table (summarize)
      const spread = (Math.max(...values) - Math.min(...values)) / med;
      rows.push([
        ROUTE_LABELS[route],
        ...values.map((v) => v.toFixed(digits)),
        med.toFixed(digits),
        `${(spread * 100).toFixed(0)} %`,
      ]);
    }
    const ref = byRound('axios', pick);
    for (const route of ['axiosAA', 'ours'] as const) {
      const ratios = byRound(route, pick).map((v, i) => v / ref[i]);
      rows.push([
        `${ROUTE_LABELS[route].split(' ')[0]} ÷ 2, same round`,
        ...ratios.map((v) => v.toFixed(2)),
        median(ratios).toFixed(2),
        '',
      ]);
    }
    return table(rows);
  };
  return `${title}\n${part('req/s', (r) => r.rps, 0)}\n\n${part('app CPU µs/logout', (r) => r.cpuUsPerLogout, 0)}`;
}

interface Check {
  target: string;
  value: string;
  met: boolean | undefined;
}

function checks(results: Results): Check[] {
  const out: Check[] = [];
  // At 0 ms: throughput ≥ 1.00 × route 2 and app CPU ≤ 1.00 × route 2; at +20 ms, throughput ≥ 0.95 × route 2.
  for (const [name, h, minRatio2, cpuTarget] of [
    ['healthy', results.healthy, 1.0, true],
    [`healthy +${LATENCY_MS} ms`, results.healthyLatency, 0.95, false],
  ] as const) {
    // The A/A route 2′ (route 2's code on a second path) measured the same way: how far identical routes differ.
    const ratio2 = h.ours.rps / h.axios.rps;
    const aaRatio = h.axiosAA.rps / h.axios.rps;
    const ratio3 = h.ours.rps / h.sdk.rps;
    const p99 = h.ours.p99Ms - h.axios.p99Ms;
    const aaP99 = h.axiosAA.p99Ms - h.axios.p99Ms;
    out.push({
      target: `${name}: throughput ≥ ${minRatio2.toFixed(2)} × route 2 (medians of ${ROUNDS} rounds)`,
      value: `${ratio2.toFixed(2)} (A/A 2′: ${aaRatio.toFixed(2)})`,
      met: ratio2 >= minRatio2,
    });
    if (cpuTarget) {
      const cpu2 = h.ours.cpuUsPerLogout / h.axios.cpuUsPerLogout;
      const aaCpu = h.axiosAA.cpuUsPerLogout / h.axios.cpuUsPerLogout;
      out.push({
        target: `${name}: app CPU per logout ≤ 1.00 × route 2 (medians of ${ROUNDS} rounds)`,
        value: `${cpu2.toFixed(2)} (A/A 2′: ${aaCpu.toFixed(2)})`,
        met: cpu2 <= 1,
      });
    }
    out.push({ target: `${name}: throughput ≥ route 3`, value: `${ratio3.toFixed(2)} × route 3`, met: ratio3 >= 1 });
    out.push({
      target: `${name}: p99 within 1 ms of route 2`,
      value: `${signed(p99, 2)} ms (A/A 2′: ${signed(aaP99, 2)} ms)`,
      met: p99 <= 1,
    });
  }
  const s = results.several.ours;
  out.push({
    target: `several sessions: ${SEVERAL_PORTAL_SESSIONS} < 1.5 × 1 session (p50)`,
    value: `${s.ratio.toFixed(2)} (${s.several.p50Ms.toFixed(1)} vs ${s.single.p50Ms.toFixed(1)} ms)`,
    met: s.ratio < 1.5,
  });
  const o = results.outage;
  out.push({
    target: `outage: p99 ≤ logout budget ${results.app.logoutBudgetMs} ms + 100 ms`,
    value: `${o.ours.p99Ms.toFixed(0)} ms`,
    met: o.ours.p99Ms <= results.app.logoutBudgetMs + 100,
  });
  if (o.breaker) {
    const d = o.breaker.ours.p99Ms - o.breaker.bare.p99Ms;
    out.push({
      target: 'breaker open: p99 within 5 ms of route 1',
      value: `${d >= 0 ? '+' : ''}${d.toFixed(2)} ms`,
      met: d <= 5,
    });
  } else {
    out.push({ target: 'breaker open: p99 within 5 ms of route 1', value: 'breaker not available', met: undefined });
  }
  out.push({
    target: 'memory: heap growth < 10 MB over 100,000 logouts',
    value: `${results.memory.growthMb.toFixed(2)} MB (${results.memory.logouts} logouts, ${results.memory.transport} transport)`,
    met: results.memory.growthMb < 10 && results.memory.logouts >= 100_000,
  });
  const u = results.micro;
  out.push({
    target: 'per-request work ≤ 10 µs: lookup, headers, outcome (logger silent)',
    value: `${u.middlewareSilentLogUs.toFixed(1)} µs`,
    met: u.middlewareSilentLogUs <= 10,
  });
  out.push({
    target: 'per-request work ≤ 15 µs: the same + the default log line',
    value: `${u.middlewareUs.toFixed(1)} µs`,
    met: u.middlewareUs <= 15,
  });
  out.push({
    target: 'our client over a bare axios.post ≤ 10 µs (with axios − middleware − bare axios.post)',
    value: `${u.middlewareWithAxiosUs.toFixed(2)} − ${u.middlewareUs.toFixed(2)} − ${u.plainAxiosUs.toFixed(2)} = ${u.clientOverheadUs.toFixed(2)} µs`,
    met: u.clientOverheadUs <= 10,
  });
  const t = results.telemetry;
  out.push({
    target: 'OpenTelemetry API without an SDK: within noise of no API',
    value: `${t.apiCostUs >= 0 ? '+' : ''}${t.apiCostUs} µs (noise ${t.noiseUs} µs)`,
    met: t.apiCostUs <= Math.max(t.noiseUs, 1),
  });
  return out;
}

interface Results {
  machine: {
    cpus: number;
    cpu: string;
    node: string;
    platform: string;
    loadAverageStart: number[];
    loadAverageEnd?: number[];
  };
  settings: Record<string, number>;
  app: { features: AppProcess['features']; logoutBudgetMs: number };
  healthy: Record<string, Figures>;
  healthyLatency: Record<string, Figures>;
  several: Awaited<ReturnType<typeof several>>;
  outage: Outage;
  memory: MemoryResult;
  memoryHttp: MemoryResult;
  micro: MicroResult;
  telemetry: TelemetryResult;
  seconds?: number;
}

async function main(): Promise<void> {
  const started = performance.now();
  const machine: Results['machine'] = {
    cpus: os.cpus().length,
    cpu: os.cpus()[0]?.model ?? 'unknown',
    node: process.version,
    platform: `${os.platform()} ${os.release()}`,
    loadAverageStart: os.loadavg().map(round2),
  };
  const partial: Partial<Results> = {
    machine,
    settings: {
      connections: CONNECTIONS,
      rounds: ROUNDS,
      fewRounds: FEW_ROUNDS,
      healthyRequests: HEALTHY_REQUESTS,
      healthyLatencyRequests: HEALTHY_LATENCY_REQUESTS,
      latencyMs: LATENCY_MS,
      outageCapMs: OUTAGE_CAP_MS,
      severalConnections: SEVERAL_CONNECTIONS,
      breakerRequests: BREAKER_REQUESTS,
    },
  };
  const step = (name: string) => log(`[${((performance.now() - started) / 1000).toFixed(0).padStart(3)} s] ${name}`);

  step('compiling src/ (the benchmark measures the JavaScript users install)');
  await buildLibrary();
  step('starting the emulator and the app');
  const emulator = await startEmulator();
  const app = await startApp(emulator);
  const ctx: Context = { emulator, app, faults: [] };
  partial.app = { features: app.features, logoutBudgetMs: app.logoutBudgetMs };
  const available = Object.entries(app.features)
    .filter(([, v]) => v)
    .map(([k]) => k);
  log(
    `  reliability options found: ${available.length ? available.join(', ') : 'none'}; route 4's logout budget ${app.logoutBudgetMs} ms`,
  );

  step(`healthy: ${ROUTES.length} routes × ${ROUNDS} rounds × ${HEALTHY_REQUESTS} logouts, ${CONNECTIONS} connections`);
  partial.healthy = await healthy(ctx, 0, HEALTHY_REQUESTS, 300);
  step(`healthy, +${LATENCY_MS} ms: ${ROUTES.length} routes × ${ROUNDS} rounds × ${HEALTHY_LATENCY_REQUESTS} logouts`);
  partial.healthyLatency = await healthy(ctx, LATENCY_MS, HEALTHY_LATENCY_REQUESTS, 150);
  step(
    `several sessions: 1 vs ${SEVERAL_PORTAL_SESSIONS} portal sessions per logout, +${LATENCY_MS} ms, ${SEVERAL_CONNECTIONS} connections`,
  );
  partial.several = await several(ctx);
  step(`outage: the emulator never answers (capped at ${OUTAGE_CAP_MS / 1000} s)`);
  partial.outage = await outage(ctx);
  await app.call({ cmd: 'close' }, 10_000).catch(() => undefined);
  await killAll();

  step('memory: 100,000 logouts through our middleware (stubbed transport), then 20,000 over HTTP');
  partial.memory = await runChild<MemoryResult>('bench/memory.ts', ['--expose-gc'], ['stub', '100000'], 90_000);
  partial.memoryHttp = await runChild<MemoryResult>('bench/memory.ts', ['--expose-gc'], ['http', '20000'], 90_000);
  step('per-request work (upstream call stubbed)');
  partial.micro = await runChild<MicroResult>('bench/micro.ts', [], [], 60_000);
  step('OpenTelemetry: without the API, the API without an SDK, the SDK with in-memory exporters');
  partial.telemetry = await runTelemetryBench((script, args) => runChild(script, [], args, 60_000));

  machine.loadAverageEnd = os.loadavg().map(round2);
  partial.seconds = round1((performance.now() - started) / 1000);
  report(partial as Results);
}

function report(results: Results): void {
  const { machine } = results;
  log('');
  log(
    `Machine: ${machine.cpus} × ${machine.cpu}, Node ${machine.node}, ${machine.platform}; load average ${machine.loadAverageStart.join(' ')} at start, ${machine.loadAverageEnd?.join(' ')} at end`,
  );
  for (const [name, figures, requests] of [
    ['Healthy (emulator answers at once)', results.healthy, HEALTHY_REQUESTS],
    [`Healthy, emulator +${LATENCY_MS} ms`, results.healthyLatency, HEALTHY_LATENCY_REQUESTS],
  ] as const) {
    log('');
    log(
      roundsTables(
        `${name}: every round (${requests} logouts per route, ${CONNECTIONS} connections; the order of the routes rotates by one each round)`,
        figures,
      ),
    );
    log('');
    log(healthyTable(`${name}: medians of ${ROUNDS} rounds, ${CONNECTIONS} connections`, figures));
  }
  log('');
  const sev = [
    [
      'route',
      '1 session p50 ms',
      `${SEVERAL_PORTAL_SESSIONS} sessions p50 ms`,
      'ratio',
      '1 session p99',
      `${SEVERAL_PORTAL_SESSIONS} sessions p99`,
    ],
  ];
  for (const [route, s] of Object.entries(results.several))
    sev.push([
      ROUTE_LABELS[route as RouteName],
      s.single.p50Ms.toFixed(1),
      s.several.p50Ms.toFixed(1),
      s.ratio.toFixed(2),
      s.single.p99Ms.toFixed(1),
      s.several.p99Ms.toFixed(1),
    ]);
  log(`Several sessions (+${LATENCY_MS} ms, ${SEVERAL_CONNECTIONS} connections): time of one logout\n${table(sev)}`);
  log('');
  const o = results.outage;
  const capped = (r: CappedResult) =>
    r.hitCap ? `${r.hitCap}/${r.requests} hit the ${OUTAGE_CAP_MS / 1000} s cap` : 'none hit the cap';
  const out = [['route', 'p50 ms', 'p99 ms', 'max ms', 'note']];
  out.push([ROUTE_LABELS.sdk, o.sdk.p50Ms.toFixed(0), o.sdk.p99Ms.toFixed(0), o.sdk.maxMs.toFixed(0), capped(o.sdk)]);
  out.push([
    ROUTE_LABELS.ours,
    o.ours.p50Ms.toFixed(0),
    o.ours.p99Ms.toFixed(0),
    o.ours.maxMs.toFixed(0),
    `${capped(o.ours)}; budget ${results.app.logoutBudgetMs} ms`,
  ]);
  if (o.breaker) {
    out.push([
      `${ROUTE_LABELS.bare} (during outage)`,
      o.breaker.bare.p50Ms.toFixed(2),
      o.breaker.bare.p99Ms.toFixed(2),
      '',
      `${o.breaker.bare.rps.toFixed(0)} req/s, ${o.breaker.bare.cpuUsPerLogout.toFixed(0)} µs CPU/logout`,
    ]);
    out.push([
      `${ROUTE_LABELS.ours}, breaker open`,
      o.breaker.ours.p50Ms.toFixed(2),
      o.breaker.ours.p99Ms.toFixed(2),
      '',
      `${o.breaker.ours.rps.toFixed(0)} req/s, ${o.breaker.ours.cpuUsPerLogout.toFixed(0)} µs CPU/logout; ${Object.entries(
        o.breaker.oursFailures,
      )
        .map(([k, v]) => `${v} ${k}`)
        .join(', ')}`,
    ]);
  } else {
    out.push([`${ROUTE_LABELS.ours}, breaker open`, '', '', '', 'breaker not available']);
  }
  log(`Outage (emulator accepts and never answers), ${OUTAGE_REQUESTS} logouts per route at once\n${table(out)}`);
  log('');
  const m = results.memory;
  const mh = results.memoryHttp;
  log(
    `Memory: heap after full GC, ${m.logouts} logouts (stubbed transport): ${m.heapBeforeMb} → ${m.heapAfterMb} MB (${m.growthMb >= 0 ? '+' : ''}${m.growthMb} MB; quarters ${m.heapTrendMb.join(', ')}), ${m.notEnded} not ended, ${m.seconds} s`,
  );
  log(
    `        ${mh.logouts} logouts over HTTP to the emulator: ${mh.heapBeforeMb} → ${mh.heapAfterMb} MB (${mh.growthMb >= 0 ? '+' : ''}${mh.growthMb} MB), ${mh.notEnded} not ended, ${mh.seconds} s`,
  );
  const u = results.micro;
  log(
    `Per-request work (µs per logout, harness of ${u.harnessUs} µs subtracted): middleware ${u.middlewareUs} (with a silent logger ${u.middlewareSilentLogUs}); with our client and axios, transport stubbed ${u.middlewareWithAxiosUs}; a bare axios.post ${u.plainAxiosUs}; our client over the bare axios.post ${u.clientOverheadUs}`,
  );
  log(telemetryReport(results.telemetry));
  log('');
  const checked = [
    ...[results.healthy, results.healthyLatency].flatMap((byRoute) => Object.values(byRoute)),
    ...Object.values(results.several).flatMap((s) => [s.single, s.several]),
  ].flatMap((figures) => figures.runs);
  const unverified = checked.filter((r) => !r.verified).length;
  log(
    unverified === 0
      ? `Every one of the ${checked.length} measured runs logged out exactly its own portal sessions in the emulator.`
      : `WARNING: ${unverified} of ${checked.length} measured runs did not log out exactly their own portal sessions (see "!" above).`,
  );
  log('');
  const list = checks(results);
  log(
    `Targets\n${table([['target', 'measured', ''], ...list.map((c) => [c.target, c.value, c.met === undefined ? 'n/a' : c.met ? 'met' : 'MISSED'])])}`,
  );
  log('');
  const dir = path.join(ROOT, 'bench/results');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `bench-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  const json = JSON.stringify({ ...results, targets: list }, null, 2);
  writeFileSync(file, json);
  writeFileSync(path.join(dir, 'latest.json'), json);
  log(`Figures written to ${path.relative(ROOT, file)} (and bench/results/latest.json); ${results.seconds} s in all.`);
}

const deadline = setTimeout(() => {
  process.stderr.write(`bench: stopped after ${DEADLINE_MS / 1000} s\n`);
  void killAll(500).finally(() => process.exit(1));
}, DEADLINE_MS);
deadline.unref();
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => void killAll(500).finally(() => process.exit(130)));
}

main()
  .then(
    () => killAll(),
    async (error: unknown) => {
      process.stderr.write(
        `bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
      );
      await killAll(500);
      process.exitCode = 1;
    },
  )
  .finally(() => clearTimeout(deadline));
