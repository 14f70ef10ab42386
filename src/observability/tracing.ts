/**
 * The spans: a logout's (active while it runs, so that the HTTP client spans of its Chargebee calls are its
 * children), a background attempt's (a new trace, linked to the logout that deferred it), and the W3C
 * `traceparent` a deferred job keeps for that link. Until an SDK is registered the API's tracer would hand
 * out non-recording spans; {@link Tracing.live} tells that apart first, so that no span, context or
 * attribute object is made for nothing. No method throws: a faulty provider must not change a logout.
 */
import type { Attributes, Link, Span, Tracer, TracerProvider } from '@opentelemetry/api';
import { hashPortalSessionId } from '../base/identifiers';
import type { PortalLogoutOutcome, PortalSessionOutcome } from '../base/outcome';
import { VERSION } from '../base/version';
import type { DeferredLogoutJob } from '../queue/store';
import { ATTRIBUTES, INSTRUMENTATION_NAME, SPAN_NAMES } from './names';

type Api = typeof import('@opentelemetry/api');

/** The spans of one middleware. */
export class Tracing {
  private readonly tracer: Tracer | undefined;
  private readonly noopTracerProvider: unknown;
  /** The span of each background attempt under way, found again when its result is reported. */
  private readonly attemptSpans = new WeakMap<DeferredLogoutJob, Span>();

  constructor(
    private readonly api: Api,
    private readonly given: Pick<TracerProvider, 'getTracer'> | undefined,
  ) {
    try {
      this.tracer = (given ?? api.trace).getTracer(INSTRUMENTATION_NAME, VERSION);
    } catch {
      this.tracer = undefined;
    }
    // A proxy provider with no delegate hands out the API's no-op tracer provider: this one. The API has no
    // other way to tell that no SDK is registered; the class is deprecated for its next major only.
    // eslint-disable-next-line @typescript-eslint/no-deprecated
    this.noopTracerProvider = new api.ProxyTracerProvider().getDelegate();
  }

  /**
   * False when no span can be recorded: no tracer, or the global provider is still the API's no-op one (no
   * SDK registered). Asked at each span, as an SDK may be registered after the middleware was made.
   */
  live(): boolean {
    if (!this.tracer) return false;
    if (this.given) return true;
    const api = this.api;
    const global = api.trace.getTracerProvider();
    // eslint-disable-next-line @typescript-eslint/no-deprecated -- see the constructor
    return !(global instanceof api.ProxyTracerProvider && global.getDelegate() === this.noopTracerProvider);
  }

  /** A logout's span, under the active one; `undefined` when it would not be recorded. */
  startLogout(): Span | undefined {
    return this.live() ? this.start(SPAN_NAMES.logout, undefined) : undefined;
  }

  /**
   * Runs `work` with `span` active: in the active context (a logout) or in a new trace (an attempt), or just
   * runs it without a span. A synchronous throw becomes a rejection, which the callers record as a failure.
   */
  run<T>(span: Span | undefined, parent: 'active' | 'root', work: () => Promise<T>): Promise<T> {
    const api = this.api;
    try {
      if (!span) return work();
      const context = parent === 'root' ? api.ROOT_CONTEXT : api.context.active();
      return api.context.with(api.trace.setSpan(context, span), work);
    } catch (error) {
      return Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
  }

  /** Ends a logout's span with its outcome; `errorType` is given when the logout failed. */
  endLogout(span: Span, outcome: PortalLogoutOutcome, errorType: string | undefined): void {
    try {
      // A sampled-out span drops its attributes anyway: spare building them.
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
        if (errorType !== undefined) {
          span.setAttribute(ATTRIBUTES.errorType, errorType);
          const failed = sessions.filter((p) => p.status === 'failed').length;
          span.setStatus({
            code: this.api.SpanStatusCode.ERROR,
            message: outcome.error
              ? 'could not read the remembered portal sessions'
              : `${failed} portal session(s) could not be logged out`,
          });
        }
      }
      span.end();
    } catch {
      // A faulty provider must not change the logout.
    }
  }

  /** Ends a logout's span when the logout itself rejected (a bug, not an outcome). */
  failLogout(span: Span, errorType: string): void {
    try {
      span.setAttribute(ATTRIBUTES.result, 'failed');
      span.setAttribute(ATTRIBUTES.errorType, errorType);
      span.setStatus({ code: this.api.SpanStatusCode.ERROR, message: 'the logout failed unexpectedly' });
      span.end();
    } catch {
      // A faulty provider must not change the logout.
    }
  }

  /** The W3C `traceparent` of the active span, kept in a deferred job for the link of its attempts. */
  traceparent(): string | undefined {
    if (!this.live()) return undefined;
    const api = this.api;
    try {
      const context = api.trace.getSpanContext(api.context.active());
      if (!context || !api.isSpanContextValid(context)) return undefined;
      return `00-${context.traceId}-${context.spanId}-${(context.traceFlags & 0xff).toString(16).padStart(2, '0')}`;
    } catch {
      return undefined;
    }
  }

  /** A background attempt's span: a new trace, linked to the logout that deferred the job when it was traced. */
  startAttempt(job: DeferredLogoutJob): Span | undefined {
    if (!this.live()) return undefined;
    try {
      const linked = linkFromTraceparent(this.api, job.traceparent);
      const attributes: Attributes = {
        [ATTRIBUTES.idHash]: hashPortalSessionId(job.portalSessionId),
        [ATTRIBUTES.attempt]: job.attempts,
        [ATTRIBUTES.reason]: job.reason,
      };
      if (job.businessEntityId !== undefined) attributes[ATTRIBUTES.businessEntityId] = job.businessEntityId;
      const span = this.start(SPAN_NAMES.deferredAttempt, { root: true, links: linked ? [linked] : [], attributes });
      if (span) this.attemptSpans.set(job, span);
      return span;
    } catch {
      return undefined;
    }
  }

  /** Ends an attempt's span; `errorType` is given when the attempt failed (it will be retried). */
  endAttempt(span: Span, errorType: string | undefined): void {
    try {
      if (errorType !== undefined) {
        span.setAttribute(ATTRIBUTES.errorType, errorType);
        span.setStatus({ code: this.api.SpanStatusCode.ERROR, message: 'the attempt failed; it will be retried' });
      }
      span.end();
    } catch {
      // A faulty provider must not change the attempt.
    }
  }

  /** A deferred logout's final result, into the span of the attempt that reached it (if it was traced). */
  attemptResult(job: DeferredLogoutJob, outcome: PortalSessionOutcome, errorType: string | undefined): void {
    const span = this.attemptSpans.get(job);
    if (!span) return;
    try {
      span.setAttribute(ATTRIBUTES.status, outcome.status);
      if (outcome.reason) span.setAttribute(ATTRIBUTES.reason, outcome.reason);
      if (errorType !== undefined) {
        span.setAttribute(ATTRIBUTES.errorType, errorType);
        span.setStatus({ code: this.api.SpanStatusCode.ERROR, message: 'the deferred logout failed' });
      }
    } catch {
      // A faulty provider must not change the result.
    }
  }

  private start(
    name: string,
    options: { root?: boolean; links?: Link[]; attributes?: Attributes } | undefined,
  ): Span | undefined {
    try {
      return this.tracer?.startSpan(name, { kind: this.api.SpanKind.INTERNAL, ...options });
    } catch {
      return undefined;
    }
  }
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
