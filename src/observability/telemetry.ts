/**
 * OpenTelemetry for one middleware, through `@opentelemetry/api` only: what the logout core reports (a
 * logout, a Chargebee call, a background attempt, a deferred logout's result) turned into the spans of
 * ./tracing and the metrics of ./metrics, with the error types both share. The API is an optional peer
 * dependency, loaded once on first use: without it (or with `telemetry: false`) every method here does
 * nothing. With the API but no SDK the API's providers are no-ops, and each method asks first whether
 * anything would record: this runs on every logout, so when nothing does it makes no span, no attribute
 * object and no closure. Nothing here may break a logout: a faulty provider is caught and the logout goes
 * on untraced.
 */
import type { MeterProvider, Span, TracerProvider } from '@opentelemetry/api';
import { ChargebeeApiError } from '../base/errors';
import type { PortalLogoutOutcome, PortalSessionOutcome } from '../base/outcome';
import { now } from '../base/time';
import type { JobAttemptResult } from '../queue/queue';
import type { DeferredLogoutJob } from '../queue/store';
import { Metrics, type GaugeReading } from './metrics';
import { Tracing } from './tracing';

// The gauges' reading is defined beside the gauges; the rest of the package takes it from here.
export type { GaugeReading };

type Api = typeof import('@opentelemetry/api');

/** The `telemetry` option after validation: off, or the providers to use (the global ones when absent). */
export type TelemetrySettings =
  false | { tracerProvider?: Pick<TracerProvider, 'getTracer'>; meterProvider?: Pick<MeterProvider, 'getMeter'> };

let loaded: Api | null | undefined;

/** `@opentelemetry/api` when the app has it installed, `null` when not. Required once, on first use. */
export function openTelemetryApi(): Api | null {
  if (loaded === undefined) {
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      loaded = require('@opentelemetry/api') as Api;
    } catch {
      loaded = null;
    }
  }
  return loaded;
}

/** The `error.type` of a failure: the HTTP status of an answer (as the HTTP conventions do), else the error's class. */
export function errorType(error: unknown): string {
  try {
    if (error instanceof ChargebeeApiError) return String(error.status);
    return error instanceof Error && error.name ? error.name : '_OTHER';
  } catch {
    // Any value may be thrown, a proxy or a throwing getter too: telemetry must not be what fails.
    return '_OTHER';
  }
}

/** Tracing and metrics for one middleware. */
export class Telemetry {
  /** Both absent without the API or with `telemetry: false`: every method is then a pass-through. */
  private readonly tracing: Tracing | undefined;
  private readonly metrics: Metrics | undefined;
  private closed = false;

  constructor(api: Api | null, settings: Exclude<TelemetrySettings, false> | undefined) {
    if (!api || !settings) return;
    this.tracing = new Tracing(api, settings.tracerProvider);
    this.metrics = new Metrics(api, settings.meterProvider);
  }

  /** True when spans or metrics may be recorded at all. */
  get enabled(): boolean {
    return this.metrics !== undefined && !this.closed;
  }

  /**
   * Runs one logout with its span active, so that the HTTP client spans of the Chargebee calls are its
   * children; the outcome goes into the span and the metrics. The continuation runs outside the span.
   */
  logout(work: () => Promise<PortalLogoutOutcome>): Promise<PortalLogoutOutcome> {
    const tracing = this.tracing;
    if (!tracing || this.closed) return work();
    const span = tracing.startLogout();
    if (!span && !this.metrics?.instruments()) return work();
    const started = now();
    return tracing.run(span, 'active', work).then(
      (outcome) => {
        this.finishLogout(span, outcome);
        return outcome;
      },
      (error: unknown) => {
        if (span) tracing.failLogout(span, errorType(error));
        const failed: PortalLogoutOutcome = {
          result: 'failed',
          portalSessions: [],
          error: error instanceof Error ? error : new Error('the logout failed unexpectedly'),
          durationMs: now() - started,
        };
        this.metrics?.instruments()?.logout(failed.result, failed.durationMs, logoutErrorType(failed));
        throw error;
      },
    );
  }

  /** A logout that made no call (a cross-site GET): a span of its own, and its metrics. */
  logoutSkipped(outcome: PortalLogoutOutcome): void {
    if (!this.tracing || this.closed) return;
    this.finishLogout(this.tracing.startLogout(), outcome);
  }

  /** Times one Chargebee call. */
  call<T>(site: string, background: boolean, call: () => Promise<T>): Promise<T> {
    if (!this.metrics?.instruments()) return call();
    const started = now();
    return call().then(
      (value) => {
        this.metrics?.instruments()?.call(site, background, now() - started, 200, undefined);
        return value;
      },
      (error: unknown) => {
        this.metrics?.instruments()?.call(site, background, now() - started, answeredStatus(error), errorType(error));
        throw error;
      },
    );
  }

  /** The W3C `traceparent` of the active span, kept in a deferred job for the link of its attempts. */
  traceparent(): string | undefined {
    return this.closed ? undefined : this.tracing?.traceparent();
  }

  /** Runs one background attempt in a span of its own (a new trace), linked to the logout that deferred it. */
  attempt(job: DeferredLogoutJob, work: () => Promise<JobAttemptResult>): Promise<JobAttemptResult> {
    const tracing = this.tracing;
    const span = tracing && !this.closed ? tracing.startAttempt(job) : undefined;
    if (!tracing || !span) return work();
    return tracing.run(span, 'root', work).then(
      (result) => {
        const error = result === 'done' ? undefined : result.error;
        tracing.endAttempt(span, error === undefined ? undefined : errorType(error));
        return result;
      },
      (error: unknown) => {
        tracing.endAttempt(span, error === undefined ? undefined : errorType(error));
        throw error;
      },
    );
  }

  /** The final result of a deferred logout: into the span of the attempt that reached it, and the metrics. */
  deferredResult(job: DeferredLogoutJob, outcome: PortalSessionOutcome): void {
    if (!this.tracing) return;
    const failure = sessionErrorType(outcome);
    this.tracing.attemptResult(job, outcome, failure);
    this.metrics?.instruments()?.portalSession(outcome, true, failure);
  }

  /**
   * What the gauges read (queue depth, oldest job's age, circuit states). Registered with the meter now, and
   * again whenever the global meter provider changes.
   */
  observe(read: () => Promise<GaugeReading>): void {
    this.metrics?.observe(read);
  }

  /** Stops the gauges (the callbacks are removed) and the recording. */
  close(): void {
    this.closed = true;
    this.metrics?.close();
  }

  /** Ends a logout's span (if it has one) and records its metrics, building nothing when neither records. */
  private finishLogout(span: Span | undefined, outcome: PortalLogoutOutcome): void {
    const instruments = this.metrics?.instruments();
    if (!span && !instruments) return;
    const failure = outcome.result === 'failed' ? logoutErrorType(outcome) : undefined;
    if (span) this.tracing?.endLogout(span, outcome, failure);
    if (!instruments) return;
    instruments.logout(outcome.result, outcome.durationMs, failure);
    for (const item of outcome.portalSessions) instruments.portalSession(item, false, sessionErrorType(item));
  }
}

/** The HTTP status of a failed call that Chargebee answered. */
function answeredStatus(error: unknown): number | undefined {
  try {
    return error instanceof ChargebeeApiError ? error.status : undefined;
  } catch {
    return undefined;
  }
}

/** A failed logout's `error.type`: why the sessions could not be read, else the first failed session's. */
function logoutErrorType(outcome: PortalLogoutOutcome): string {
  if (outcome.error) return errorType(outcome.error);
  const failed = outcome.portalSessions.find((p) => p.status === 'failed');
  return failed?.error ? errorType(failed.error) : (failed?.reason ?? '_OTHER');
}

/** A portal session's `error.type`, for a failed one only. */
function sessionErrorType(outcome: PortalSessionOutcome): string | undefined {
  if (outcome.status !== 'failed') return undefined;
  return outcome.error ? errorType(outcome.error) : outcome.status;
}
