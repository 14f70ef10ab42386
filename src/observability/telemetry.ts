import type {
  Attributes,
  BatchObservableCallback,
  Counter,
  Histogram,
  Link,
  Meter,
  MeterProvider,
  ObservableGauge,
  Span,
  Tracer,
  TracerProvider,
} from '@opentelemetry/api';
import { ChargebeeApiError } from '../base/errors';
import { hashPortalSessionId } from '../base/identifiers';
import type { PortalLogoutOutcome, PortalSessionOutcome } from '../base/outcome';
import type { DeferredLogoutJob } from '../queue/store';
import type { JobAttemptResult } from '../queue/queue';
import { VERSION } from '../base/version';
import { now } from '../base/time';

/**
 * OpenTelemetry through `@opentelemetry/api` only. The API is an optional peer dependency, loaded on first
 * use: without it (or with `telemetry: false`) every method here does nothing. With the API but no SDK the
 * API's no-op tracer and meter answer, and the metric work is skipped. Nothing here may break a logout: a
 * faulty provider is caught and the logout goes on untraced.
 */

type Api = typeof import('@opentelemetry/api');

/** The instrumentation scope: the package's name and version. */
export const INSTRUMENTATION_NAME = 'chargebee-portal-logout';

/** Span and metric names. */
export const SPAN_NAMES = {
  logout: 'chargebee_portal_logout.logout',
  deferredAttempt: 'chargebee_portal_logout.deferred_attempt',
} as const;

export const METRIC_NAMES = {
  portalSessions: 'chargebee_portal_logout.portal_sessions',
  logoutDuration: 'chargebee_portal_logout.logout.duration',
  callDuration: 'chargebee_portal_logout.chargebee.call.duration',
  attempts: 'chargebee_portal_logout.portal_session.attempts',
  queueDepth: 'chargebee_portal_logout.deferred_queue.depth',
  queueOldestAge: 'chargebee_portal_logout.deferred_queue.oldest_job.age',
  circuitState: 'chargebee_portal_logout.circuit.state',
} as const;

/** Attribute keys: semantic-convention ones where they apply, the package's own under its namespace. */
export const ATTRIBUTES = {
  result: 'chargebee_portal_logout.result',
  portalSessionCount: 'chargebee_portal_logout.portal_session.count',
  idHashes: 'chargebee_portal_logout.portal_session.id_hashes',
  idHash: 'chargebee_portal_logout.portal_session.id_hash',
  businessEntityIds: 'chargebee_portal_logout.business_entity.ids',
  businessEntityId: 'chargebee_portal_logout.business_entity.id',
  deferred: 'chargebee_portal_logout.deferred',
  background: 'chargebee_portal_logout.background',
  status: 'chargebee_portal_logout.status',
  reason: 'chargebee_portal_logout.reason',
  attempt: 'chargebee_portal_logout.attempt',
  site: 'chargebee_portal_logout.site',
  circuitState: 'chargebee_portal_logout.circuit.state',
  errorType: 'error.type',
  httpStatusCode: 'http.response.status_code',
} as const;

/** Buckets of the duration histograms, in seconds: those of OpenTelemetry's HTTP duration metrics. */
export const DURATION_BUCKETS_S = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10];
/** Buckets of the attempts histogram. */
export const ATTEMPT_BUCKETS = [0, 1, 2, 3, 4, 5, 6, 8, 10, 15, 20];

const CIRCUIT_STATES = ['closed', 'open', 'half_open'] as const;

/** The `telemetry` option after validation: off, or the providers to use (the global ones when absent). */
export type TelemetrySettings =
  false | { tracerProvider?: Pick<TracerProvider, 'getTracer'>; meterProvider?: Pick<MeterProvider, 'getMeter'> };

/** What the gauges read, when the SDK collects. */
export interface GaugeReading {
  /** Absent when the middleware has no deferred queue. */
  queue?: { depth: number; oldestJobAgeMs: number | undefined };
  circuits: Array<{ site: string; state: (typeof CIRCUIT_STATES)[number] }>;
}

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
  if (error instanceof ChargebeeApiError) return String(error.status);
  return error instanceof Error && error.name ? error.name : '_OTHER';
}

interface Instruments {
  provider: Pick<MeterProvider, 'getMeter'>;
  portalSessions: Counter;
  logoutDuration: Histogram;
  callDuration: Histogram;
  attempts: Histogram;
  gauges: ObservableGauge[];
  observer?: BatchObservableCallback;
  meter: Meter;
}

/** Tracing and metrics for one middleware. */
export class Telemetry {
  private readonly tracer: Tracer | undefined;
  private readonly noopMeter: (new () => unknown) | undefined;
  private readonly noopTracerProvider: unknown;
  private instruments: Instruments | undefined;
  /** A provider whose meter is the API's no-op one: asked once, then skipped. */
  private noopProvider: unknown;
  private gauges: (() => Promise<GaugeReading>) | undefined;
  /** The span of each background attempt under way, found again when its result is reported. */
  private readonly attemptSpans = new WeakMap<DeferredLogoutJob, Span>();
  private closed = false;

  constructor(
    private readonly api: Api | null,
    private readonly settings: Exclude<TelemetrySettings, false> | undefined,
  ) {
    if (!api || !settings) return;
    try {
      this.tracer = (settings.tracerProvider ?? api.trace).getTracer(INSTRUMENTATION_NAME, VERSION);
    } catch {
      this.tracer = undefined;
    }
    this.noopMeter = api.createNoopMeter().constructor as new () => unknown;
    // A proxy provider with no delegate hands out the API's no-op tracer provider: this one. The API has no
    // other way to tell that no SDK is registered; the class is deprecated for its next major only.
    // eslint-disable-next-line @typescript-eslint/no-deprecated
    this.noopTracerProvider = new api.ProxyTracerProvider().getDelegate();
  }

  /** True when spans or metrics may be recorded at all. */
  get enabled(): boolean {
    return this.api !== null && this.settings !== undefined && !this.closed;
  }

  /**
   * Runs one logout with its span active, so that the HTTP client spans of the Chargebee calls are its
   * children; the outcome goes into the span and the metrics. The continuation runs outside the span.
   */
  logout(work: () => Promise<PortalLogoutOutcome>): Promise<PortalLogoutOutcome> {
    const api = this.api;
    const span = this.startSpan(SPAN_NAMES.logout);
    if (!api || (!span && !this.meter())) return work();
    const started = now();
    let running: Promise<PortalLogoutOutcome>;
    try {
      running = span ? api.context.with(api.trace.setSpan(api.context.active(), span), work) : work();
    } catch (error) {
      running = Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
    return running.then(
      (outcome) => {
        if (span) this.endLogoutSpan(span, outcome);
        else this.recordLogout(outcome);
        return outcome;
      },
      (error: unknown) => {
        if (span)
          this.safely(() => {
            span.setAttribute(ATTRIBUTES.result, 'failed');
            span.setAttribute(ATTRIBUTES.errorType, errorType(error));
            span.setStatus({ code: api.SpanStatusCode.ERROR, message: 'the logout failed unexpectedly' });
            span.end();
          });
        this.recordLogout({
          result: 'failed',
          portalSessions: [],
          error: error instanceof Error ? error : new Error('the logout failed unexpectedly'),
          durationMs: now() - started,
        });
        throw error;
      },
    );
  }

  /** A logout that made no call (a cross-site GET): a span of its own, and its metrics. */
  logoutSkipped(outcome: PortalLogoutOutcome): void {
    const span = this.startSpan(SPAN_NAMES.logout);
    if (span) this.endLogoutSpan(span, outcome);
    else this.recordLogout(outcome);
  }

  /** Times one Chargebee call. */
  call<T>(site: string, background: boolean, call: () => Promise<T>): Promise<T> {
    if (!this.meter()) return call();
    const started = now();
    const record = (error: unknown) =>
      this.safely(() => {
        const attributes: Attributes = { [ATTRIBUTES.site]: site, [ATTRIBUTES.background]: background };
        if (error === undefined) attributes[ATTRIBUTES.httpStatusCode] = 200;
        else {
          if (error instanceof ChargebeeApiError) attributes[ATTRIBUTES.httpStatusCode] = error.status;
          attributes[ATTRIBUTES.errorType] = errorType(error);
        }
        this.meter()?.callDuration.record((now() - started) / 1000, attributes);
      });
    return call().then(
      (value) => {
        record(undefined);
        return value;
      },
      (error: unknown) => {
        record(error);
        throw error;
      },
    );
  }

  /** The W3C `traceparent` of the active span, kept in a deferred job for the link of its attempts. */
  traceparent(): string | undefined {
    const api = this.api;
    if (!api || !this.tracing()) return undefined;
    try {
      const context = api.trace.getSpanContext(api.context.active());
      if (!context || !api.isSpanContextValid(context)) return undefined;
      return `00-${context.traceId}-${context.spanId}-${(context.traceFlags & 0xff).toString(16).padStart(2, '0')}`;
    } catch {
      return undefined;
    }
  }

  /** Runs one background attempt in a span of its own (a new trace), linked to the logout that deferred it. */
  attempt(job: DeferredLogoutJob, work: () => Promise<JobAttemptResult>): Promise<JobAttemptResult> {
    const api = this.api;
    const linked = api ? linkFromTraceparent(api, job.traceparent) : undefined;
    const span = this.startSpan(SPAN_NAMES.deferredAttempt, {
      root: true,
      links: linked ? [linked] : [],
      attributes: {
        [ATTRIBUTES.idHash]: hashPortalSessionId(job.portalSessionId),
        [ATTRIBUTES.attempt]: job.attempts,
        [ATTRIBUTES.reason]: job.reason,
        ...(job.businessEntityId === undefined ? {} : { [ATTRIBUTES.businessEntityId]: job.businessEntityId }),
      },
    });
    if (!api || !span) return work();
    this.attemptSpans.set(job, span);
    let running: Promise<JobAttemptResult>;
    try {
      running = api.context.with(api.trace.setSpan(api.ROOT_CONTEXT, span), work);
    } catch (error) {
      running = Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
    const end = (error: unknown) =>
      this.safely(() => {
        if (error !== undefined) {
          span.setAttribute(ATTRIBUTES.errorType, errorType(error));
          span.setStatus({ code: api.SpanStatusCode.ERROR, message: 'the attempt failed; it will be retried' });
        }
        span.end();
      });
    return running.then(
      (result) => {
        end(result === 'done' ? undefined : result.error);
        return result;
      },
      (error: unknown) => {
        end(error);
        throw error;
      },
    );
  }

  /** The final result of a deferred logout: into the span of the attempt that reached it, and the metrics. */
  deferredResult(job: DeferredLogoutJob, outcome: PortalSessionOutcome): void {
    const span = this.attemptSpans.get(job);
    if (span && this.api) {
      const api = this.api;
      this.safely(() => {
        span.setAttribute(ATTRIBUTES.status, outcome.status);
        if (outcome.reason) span.setAttribute(ATTRIBUTES.reason, outcome.reason);
        if (outcome.status === 'failed') {
          span.setAttribute(ATTRIBUTES.errorType, outcome.error ? errorType(outcome.error) : outcome.status);
          span.setStatus({ code: api.SpanStatusCode.ERROR, message: 'the deferred logout failed' });
        }
      });
    }
    this.recordPortalSession(outcome, true);
  }

  /**
   * What the gauges read (queue depth, oldest job's age, circuit states). Registered with the meter now, and
   * again whenever the global meter provider changes.
   */
  observe(read: () => Promise<GaugeReading>): void {
    this.gauges = read;
    this.meter();
  }

  /** Stops the gauges (the callbacks are removed) and the recording. */
  close(): void {
    this.closed = true;
    this.safely(() => this.unobserve(this.instruments));
  }

  /**
   * False when no span can be recorded: no tracer, or the global provider is still the API's no-op one (no
   * SDK registered), in which case the span, its context and its attributes are skipped altogether.
   */
  private tracing(): boolean {
    const api = this.api;
    if (!api || !this.tracer || this.closed) return false;
    if (this.settings?.tracerProvider) return true;
    const global = api.trace.getTracerProvider();
    // eslint-disable-next-line @typescript-eslint/no-deprecated -- see the constructor
    return !(global instanceof api.ProxyTracerProvider && global.getDelegate() === this.noopTracerProvider);
  }

  private startSpan(
    name: string,
    options: { root?: boolean; links?: Link[]; attributes?: Attributes } = {},
  ): Span | undefined {
    if (!this.tracing() || !this.tracer || !this.api) return undefined;
    try {
      return this.tracer.startSpan(name, { kind: this.api.SpanKind.INTERNAL, ...options });
    } catch {
      return undefined;
    }
  }

  private endLogoutSpan(span: Span, outcome: PortalLogoutOutcome): void {
    const api = this.api;
    this.safely(() => {
      if (span.isRecording()) {
        const sessions = outcome.portalSessions;
        const entities = [...new Set(sessions.flatMap((p) => (p.businessEntityId ? [p.businessEntityId] : [])))];
        span.setAttribute(ATTRIBUTES.result, outcome.result);
        span.setAttribute(ATTRIBUTES.portalSessionCount, sessions.length);
        span.setAttribute(
          ATTRIBUTES.deferred,
          sessions.some((p) => p.status === 'deferred'),
        );
        if (sessions.length)
          span.setAttribute(
            ATTRIBUTES.idHashes,
            sessions.map((p) => p.idHash),
          );
        if (entities.length) span.setAttribute(ATTRIBUTES.businessEntityIds, entities);
        if (outcome.result === 'failed' && api) {
          span.setAttribute(ATTRIBUTES.errorType, logoutErrorType(outcome));
          const failed = sessions.filter((p) => p.status === 'failed').length;
          span.setStatus({
            code: api.SpanStatusCode.ERROR,
            message: outcome.error
              ? 'could not read the remembered portal sessions'
              : `${failed} portal session(s) could not be logged out`,
          });
        }
      }
      span.end();
    });
    this.recordLogout(outcome);
  }

  private recordLogout(outcome: PortalLogoutOutcome): void {
    if (!this.enabled) return;
    this.safely(() => {
      const m = this.meter();
      if (!m) return;
      const attributes: Attributes = { [ATTRIBUTES.result]: outcome.result };
      if (outcome.result === 'failed') attributes[ATTRIBUTES.errorType] = logoutErrorType(outcome);
      m.logoutDuration.record(outcome.durationMs / 1000, attributes);
    });
    for (const item of outcome.portalSessions) this.recordPortalSession(item, false);
  }

  private recordPortalSession(outcome: PortalSessionOutcome, background: boolean): void {
    if (!this.enabled) return;
    this.safely(() => {
      const m = this.meter();
      if (!m) return;
      const attributes: Attributes = { [ATTRIBUTES.status]: outcome.status, [ATTRIBUTES.background]: background };
      if (outcome.reason) attributes[ATTRIBUTES.reason] = outcome.reason;
      if (outcome.businessEntityId) attributes[ATTRIBUTES.businessEntityId] = outcome.businessEntityId;
      if (outcome.status === 'failed')
        attributes[ATTRIBUTES.errorType] = outcome.error ? errorType(outcome.error) : outcome.status;
      m.portalSessions.add(1, attributes);
      if (outcome.attempts !== undefined)
        m.attempts.record(outcome.attempts, {
          [ATTRIBUTES.status]: outcome.status,
          [ATTRIBUTES.background]: background,
        });
    });
  }

  /**
   * The instruments, created on first use for the meter provider in force: a meter taken before the app
   * registered its SDK would stay a no-op, so a change of the global provider makes new ones. `undefined`
   * when the provider is the API's no-op one (nothing to record).
   */
  private meter(): Instruments | undefined {
    const api = this.api;
    if (!api || !this.settings || this.closed) return undefined;
    const provider = this.settings.meterProvider ?? api.metrics.getMeterProvider();
    if (this.instruments?.provider === provider) return this.withGauges(this.instruments);
    if (provider === this.noopProvider) return undefined;
    this.safely(() => this.unobserve(this.instruments));
    this.instruments = undefined;
    try {
      const meter = provider.getMeter(INSTRUMENTATION_NAME, VERSION);
      if (this.noopMeter && meter instanceof this.noopMeter) {
        this.noopProvider = provider;
        return undefined;
      }
      const duration = (name: string, description: string) =>
        meter.createHistogram(name, {
          description,
          unit: 's',
          advice: { explicitBucketBoundaries: DURATION_BUCKETS_S },
        });
      this.instruments = {
        provider,
        meter,
        portalSessions: meter.createCounter(METRIC_NAMES.portalSessions, {
          description:
            'Portal sessions handled, by status: at the logout (background false), and the final results of deferred logouts (background true)',
          unit: '{portal_session}',
        }),
        logoutDuration: duration(METRIC_NAMES.logoutDuration, 'Time one logout took in the request, by result'),
        callDuration: duration(METRIC_NAMES.callDuration, 'Time of one call to Chargebee (one attempt), by site'),
        attempts: meter.createHistogram(METRIC_NAMES.attempts, {
          description: 'Calls made to Chargebee for one portal session: inline, or in all for a deferred one',
          unit: '{attempt}',
          advice: { explicitBucketBoundaries: ATTEMPT_BUCKETS },
        }),
        gauges: [],
      };
      return this.withGauges(this.instruments);
    } catch {
      return undefined;
    }
  }

  private withGauges(instruments: Instruments): Instruments {
    const read = this.gauges;
    if (!read || instruments.gauges.length) return instruments;
    const meter = instruments.meter;
    const depth = meter.createObservableGauge(METRIC_NAMES.queueDepth, {
      description: 'Deferred logouts waiting or under way',
      unit: '{job}',
    });
    const age = meter.createObservableGauge(METRIC_NAMES.queueOldestAge, {
      description: 'Time since the first attempt of the oldest deferred logout (0 when the queue is empty)',
      unit: 's',
    });
    const circuit = meter.createObservableGauge(METRIC_NAMES.circuitState, {
      description: 'Circuit breaker state per Chargebee site: 1 for the current state, 0 for the others',
      unit: '1',
    });
    const observer: BatchObservableCallback = async (result) => {
      const reading = await read();
      if (reading.queue) {
        result.observe(depth, reading.queue.depth);
        result.observe(age, (reading.queue.oldestJobAgeMs ?? 0) / 1000);
      }
      for (const c of reading.circuits) {
        for (const state of CIRCUIT_STATES)
          result.observe(circuit, c.state === state ? 1 : 0, {
            [ATTRIBUTES.site]: c.site,
            [ATTRIBUTES.circuitState]: state,
          });
      }
    };
    instruments.gauges = [depth, age, circuit];
    instruments.observer = observer;
    meter.addBatchObservableCallback(observer, instruments.gauges);
    return instruments;
  }

  private unobserve(instruments: Instruments | undefined): void {
    if (instruments?.observer)
      instruments.meter.removeBatchObservableCallback(instruments.observer, instruments.gauges);
  }

  private safely(fn: () => void): void {
    try {
      fn();
    } catch {
      // A faulty telemetry provider must not change the logout.
    }
  }
}

function logoutErrorType(outcome: PortalLogoutOutcome): string {
  if (outcome.error) return errorType(outcome.error);
  const failed = outcome.portalSessions.find((p) => p.status === 'failed');
  return failed?.error ? errorType(failed.error) : (failed?.reason ?? '_OTHER');
}

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/** The link to a logout's span from its `traceparent`; `undefined` for anything malformed (a shared store's data). */
export function linkFromTraceparent(api: Api, traceparent: unknown): Link | undefined {
  if (typeof traceparent !== 'string') return undefined;
  const m = TRACEPARENT.exec(traceparent);
  if (!m) return undefined;
  const context = { traceId: m[1], spanId: m[2], traceFlags: parseInt(m[3], 16), isRemote: true };
  return api.isSpanContextValid(context) ? { context } : undefined;
}
