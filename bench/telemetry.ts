/**
 * What OpenTelemetry costs on the healthy path: our middleware's work per logout (upstream call stubbed, logger
 * silent, as in bench/micro.ts), three ways, each in a fresh process:
 * - `absent`: `@opentelemetry/api` cannot be resolved, as in an app that does not install it;
 * - `api`: the API is there but no SDK is registered (its no-op tracer and meter answer);
 * - `sdk`: the SDK with in-memory exporters (BasicTracerProvider + SimpleSpanProcessor + InMemorySpanExporter,
 *   MeterProvider + PeriodicExportingMetricReader + InMemoryMetricExporter, AsyncLocalStorageContextManager).
 * The modes alternate over several rounds, each a fresh process. The figure of a mode is its best round: on a
 * shared machine the other processes only ever add time, so the fastest round is the least disturbed. The
 * spread of the `absent` rounds (median minus best) is the noise the `api` figure is compared with. Run by bench/run.ts, or alone: `npm run bench:telemetry`.
 */
import Module from 'node:module';
import os from 'node:os';
import type { Middleware } from './micro';

export type TelemetryMode = 'absent' | 'api' | 'sdk';
const MODES: TelemetryMode[] = ['absent', 'api', 'sdk'];
const ROUNDS = 5;

export interface TelemetryResult {
  /** µs per logout (harness subtracted), best round, per mode. */
  us: Record<TelemetryMode, number>;
  /** Every round's figure, per mode. */
  rounds: Record<TelemetryMode, number[]>;
  /** Median minus best of the `absent` rounds: what a figure moves by with nothing changed. */
  noiseUs: number;
  /** `api` minus `absent`, and `sdk` minus `absent`, in µs. */
  apiCostUs: number;
  sdkCostUs: number;
  /** Spans the `sdk` rounds exported per logout (1 expected), as a check that the SDK did record. */
  sdkSpansPerLogout: number;
}

interface ChildResult {
  us: number;
  spansPerLogout: number;
}

/** The child: one mode, one figure, sent over IPC. */
async function child(mode: TelemetryMode): Promise<ChildResult> {
  if (mode === 'absent') {
    // As if the package were not installed: resolving it fails the way Node's own resolution does.
    const resolver = Module as unknown as { _resolveFilename: (request: string, ...rest: unknown[]) => string };
    const original = resolver._resolveFilename;
    resolver._resolveFilename = function (request: string, ...rest: unknown[]) {
      if (request === '@opentelemetry/api')
        throw Object.assign(new Error(`Cannot find module '${request}'`), { code: 'MODULE_NOT_FOUND' });
      return original.call(this, request, ...rest);
    };
  }
  let exportedSpans = 0;
  let reset: () => void = () => undefined;
  if (mode === 'sdk') {
    /* eslint-disable @typescript-eslint/no-require-imports */
    const api = require('@opentelemetry/api') as typeof import('@opentelemetry/api');
    const { AsyncLocalStorageContextManager } =
      require('@opentelemetry/context-async-hooks') as typeof import('@opentelemetry/context-async-hooks');
    const traceSdk = require('@opentelemetry/sdk-trace-base') as typeof import('@opentelemetry/sdk-trace-base');
    const metricsSdk = require('@opentelemetry/sdk-metrics') as typeof import('@opentelemetry/sdk-metrics');
    /* eslint-enable @typescript-eslint/no-require-imports */
    const spans = new traceSdk.InMemorySpanExporter();
    api.context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    api.trace.setGlobalTracerProvider(
      new traceSdk.BasicTracerProvider({ spanProcessors: [new traceSdk.SimpleSpanProcessor(spans)] }),
    );
    const exporter = new metricsSdk.InMemoryMetricExporter(metricsSdk.AggregationTemporality.CUMULATIVE);
    const reader = new metricsSdk.PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 3_600_000 });
    api.metrics.setGlobalMeterProvider(new metricsSdk.MeterProvider({ readers: [reader] }));
    // The exporter keeps every span; emptied now and then so that memory does not grow through the run.
    reset = () => {
      exportedSpans += spans.getFinishedSpans().length;
      spans.reset();
    };
  }
  const pino = (await import('pino')).default;
  const { perCall, runOnce, withStubbedClient, nextTurn } = await import('./micro.js');
  const middleware = withStubbedClient({ logger: pino({ level: 'silent' }) });
  const noop: Middleware = (_req, _res, next) => void nextTurn().then(() => next());
  let logouts = 0;
  const harness = await perCall(() => runOnce(noop));
  const gross = await perCall(() => {
    logouts += 1;
    if (logouts % 1000 === 0) reset();
    return runOnce(middleware);
  });
  reset();
  return { us: Math.max(0, gross - harness), spansPerLogout: exportedSpans / logouts };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const round2 = (x: number) => Math.round(x * 100) / 100;

/** The orchestrator: the modes alternate, each round a fresh process per mode. */
export async function runTelemetryBench(
  runChild: (script: string, args: string[]) => Promise<ChildResult>,
): Promise<TelemetryResult> {
  const rounds: Record<TelemetryMode, number[]> = { absent: [], api: [], sdk: [] };
  let spansPerLogout = 0;
  for (let round = 0; round < ROUNDS; round++) {
    for (let i = 0; i < MODES.length; i++) {
      const mode = MODES[(i + round) % MODES.length];
      const result = await runChild('bench/telemetry.ts', [mode]);
      rounds[mode].push(round2(result.us));
      if (mode === 'sdk') spansPerLogout = result.spansPerLogout;
    }
  }
  const best = (xs: number[]) => Math.min(...xs);
  const us = { absent: best(rounds.absent), api: best(rounds.api), sdk: best(rounds.sdk) };
  return {
    us,
    rounds,
    noiseUs: round2(median(rounds.absent) - best(rounds.absent)),
    apiCostUs: round2(us.api - us.absent),
    sdkCostUs: round2(us.sdk - us.absent),
    sdkSpansPerLogout: round2(spansPerLogout),
  };
}

export function telemetryReport(r: TelemetryResult): string {
  const line = (mode: TelemetryMode, label: string) =>
    `  ${label.padEnd(44)} ${r.us[mode].toFixed(2).padStart(7)} µs   (rounds: ${r.rounds[mode].join(', ')})`;
  return [
    `OpenTelemetry on the healthy path (µs of our work per logout, upstream stubbed, logger silent; best of ${ROUNDS} rounds):`,
    line('absent', 'without @opentelemetry/api'),
    line('api', 'with the API, no SDK registered'),
    line('sdk', 'with the SDK and in-memory exporters'),
    `  API without SDK costs ${r.apiCostUs >= 0 ? '+' : ''}${r.apiCostUs} µs (noise between rounds: ${r.noiseUs} µs); the SDK ${r.sdkCostUs >= 0 ? '+' : ''}${r.sdkCostUs} µs per logout (${r.sdkSpansPerLogout} span exported per logout)`,
  ].join('\n');
}

if (require.main === module) {
  const mode = process.argv[2] as TelemetryMode | undefined;
  if (mode && MODES.includes(mode)) {
    child(mode).then(
      (result) => (process.send ? process.send(result, () => process.exit(0)) : console.log(result)),
      (error: unknown) => {
        process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
        process.exit(1);
      },
    );
  } else {
    // Alone: compile the library as bench/run.ts does, then the rounds.
    void (async () => {
      const { buildLibrary, killAll, runChild } = await import('./processes.js');
      try {
        process.stdout.write(`Machine: ${os.cpus().length} CPUs, load average ${os.loadavg().map(round2).join(' ')}\n`);
        await buildLibrary();
        const result = await runTelemetryBench((script, args) => runChild(script, [], args, 120_000));
        process.stdout.write(`${telemetryReport(result)}\n`);
        process.stdout.write(`Load average at the end: ${os.loadavg().map(round2).join(' ')}\n`);
      } catch (error) {
        process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
        process.exitCode = 1;
      } finally {
        await killAll();
      }
    })();
  }
}
