import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { ChargebeeClient, ChargebeeHeaders, PortalSession } from '../chargebee/client';
import { CircuitBreaker } from '../reliability/circuit-breaker';
import {
  type DeferReason,
  isScheduledReason,
  type DeferredLogoutJob,
  type ScheduledLogoutReason,
} from '../queue/store';
import { DeferredLogoutQueue, MIN_DEFERRAL_WAIT_MS, type JobAttemptResult } from '../queue/queue';
import { ChargebeeApiError, ChargebeeCircuitOpenError, ChargebeeError } from '../base/errors';
import type { PortalSessionOutcome } from '../base/outcome';
import { isRetryable, queueRetryDelay, retryAfterMs, withRetries } from '../reliability/retry';
import type { CoreSettings, DeferredSettings } from './settings';
import { epochNow, remaining } from '../base/time';

/**
 * Logging out one portal session: the inline attempts (retries, budget, circuit breaker), the hand-over
 * to the deferred queue, the background attempts, and the reading of Chargebee's answers into a status.
 */

/**
 * A logout that Chargebee reports with a `logout_at` this much older than the first attempt is counted as
 * "already logged out". The margin absorbs clock skew between this server and Chargebee.
 */
const ALREADY_LOGGED_OUT_MARGIN_MS = 5000;

export const IDEMPOTENCY_KEY_HEADER = 'chargebee-idempotency-key';

const KNOWN_STATUSES = new Set<unknown>(['created', 'logged_in', 'logged_out', 'not_yet_activated', 'activated']);

/** What one portal session's logout came to, before the fields of the call (ID, hash, entity, duration). */
export type PortalSessionResult = Omit<PortalSessionOutcome, 'id' | 'idHash' | 'businessEntityId' | 'durationMs'>;

/** Reads a 200 answer: `sentAt` is when the first attempt of this logout was made (ms since the epoch). */
export function resultOfAnswer(session: PortalSession, sentAt: number, attempts: number): PortalSessionResult {
  if (session.status !== 'logged_out') {
    // The status is Chargebee's text: only a known one is quoted.
    const status = KNOWN_STATUSES.has(session.status) ? session.status : 'in an unknown status';
    const error = new ChargebeeApiError({
      status: 200,
      message: `Chargebee answered 200 but left the portal session ${status}`,
    });
    return { status: 'failed', httpStatus: 200, error, attempts };
  }
  const already =
    typeof session.logout_at === 'number' && session.logout_at * 1000 < sentAt - ALREADY_LOGGED_OUT_MARGIN_MS;
  const status = already ? 'already_logged_out' : 'logged_out';
  return { status, httpStatus: 200, attempts };
}

/** Reads a failure that no retry will change. */
export function resultOfError(error: ChargebeeError): PortalSessionResult {
  if (!(error instanceof ChargebeeApiError)) return { status: 'failed', error };
  return {
    status: error.status === 404 && error.apiErrorCode === 'resource_not_found' ? 'not_found' : 'failed',
    httpStatus: error.status,
    apiErrorCode: error.apiErrorCode,
    error,
  };
}

const QUEUE_FAILURE_REASONS = {
  full: 'queue_full',
  closed: 'queue_closed',
  timeout: 'store_timeout',
} as const satisfies Record<string, PortalSessionOutcome['reason']>;

/** How a logout's result counts for the circuit breaker: any answer but a retryable failure shows Chargebee is up. */
function breakerVerdict(error: unknown): 'success' | 'failure' | 'neutral' {
  if (error === undefined) return 'success';
  if (isRetryable(error)) return 'failure';
  return error instanceof ChargebeeError ? 'success' : 'neutral';
}

/** The machinery shared by every logout of one middleware: breakers, the queue and how results are reported. */
export class PortalSessionLogout {
  readonly breakers = new Map<ChargebeeClient, CircuitBreaker>();
  readonly queue: DeferredLogoutQueue | undefined;

  constructor(
    private readonly settings: CoreSettings,
    /** Reports the final result of a deferred logout (log line and `onOutcome`). */
    private readonly reportDeferred: (job: DeferredLogoutJob, result: PortalSessionResult) => void,
    log: Logger,
  ) {
    const deferred: DeferredSettings | false = settings.deferred;
    this.queue =
      deferred === false
        ? undefined
        : new DeferredLogoutQueue({
            ...deferred,
            timeoutMs: settings.timeoutMs,
            attempt: (job, timeoutMs) => settings.observer.attempt(job, () => this.attemptDeferred(job, timeoutMs)),
            givenUp: (job, reason, lastError) =>
              this.reportDeferred(job, {
                status: 'failed',
                reason,
                attempts: job.attempts,
                ...(lastError instanceof ChargebeeError ? { error: lastError } : {}),
                ...(lastError instanceof ChargebeeApiError
                  ? { httpStatus: lastError.status, apiErrorCode: lastError.apiErrorCode }
                  : {}),
              }),
            log,
          });
  }

  breakerFor(client: ChargebeeClient): CircuitBreaker | undefined {
    if (this.settings.circuitBreaker === false) return undefined;
    let breaker = this.breakers.get(client);
    if (!breaker) {
      breaker = new CircuitBreaker(this.settings.circuitBreaker);
      this.breakers.set(client, breaker);
    }
    return breaker;
  }

  /**
   * Logs one valid portal session out inside the request: attempts until an answer, the budget's end
   * (`deadline`, on `now()`) or an open breaker; then hands a retryable failure to the queue,
   * whose store must answer by `deadline` too.
   */
  async inline(
    id: string,
    businessEntityId: string | undefined,
    headers: ChargebeeHeaders,
    deadline: number,
  ): Promise<PortalSessionResult> {
    const client = this.settings.clientFor(businessEntityId);
    const breaker = this.breakerFor(client);
    const idempotencyKey = randomUUID();
    const sentAt = epochNow();
    const callHeaders = { ...headers, [IDEMPOTENCY_KEY_HEADER]: idempotencyKey };
    const logout = (timeoutMs: number) =>
      this.settings.observer.call(client, false, () => client.logout(id, callHeaders, { timeoutMs }));
    // The breaker counts logouts, not attempts: one portal session's retries are one failure, so a fault of a
    // single session (a lock, say) cannot open it for everybody. A half-open breaker lets one logout probe.
    const permit = breaker?.acquire();
    const result =
      breaker && !permit
        ? {
            ok: false as const,
            error: circuitOpen(breaker),
            attempts: 0,
            stop: 'circuit_open' as const,
          }
        : await withRetries((attempt) => logout(attempt.timeoutMs), {
            policy: this.settings.retry,
            deadline,
            timeoutMs: this.settings.timeoutMs,
            // Opened by other logouts meanwhile: stop retrying and defer (a probe carries on).
            gate: breaker && permit ? () => breaker.isCurrent(permit) : undefined,
            gateError: () => circuitOpen(breaker),
          });
    breaker?.record(result.ok ? 'success' : breakerVerdict(result.error), permit);
    if (result.ok) {
      this.queue?.siteAnswered(this.settings.siteOf(client));
      return resultOfAnswer(result.value, sentAt, result.attempts);
    }
    const error = result.error;
    if (!(error instanceof ChargebeeError)) throw error; // a bug, not Chargebee: the middleware logs it
    if (result.stop === 'not_retryable') return { ...resultOfError(error), attempts: result.attempts };

    const reason: DeferReason = result.stop;
    const failed: PortalSessionResult = {
      status: 'failed',
      error,
      reason,
      attempts: result.attempts,
      ...(error instanceof ChargebeeApiError ? { httpStatus: error.status, apiErrorCode: error.apiErrorCode } : {}),
    };
    if (!this.queue) return failed;
    const now = epochNow();
    const site = this.settings.siteOf(client);
    // Not before Chargebee's Retry-After (within the queue's limits), nor (breaker open) before the
    // cool-off ends, nor straight away.
    const backoffOrAsked = queueRetryDelay(result.retryAfterMs, 1, this.settings.deferred as DeferredSettings);
    // Chargebee's rate limit is the site's: the background drain waits too.
    if (result.retryAfterMs !== undefined) this.queue.pauseSite(site, now + backoffOrAsked);
    const coolOff = reason === 'circuit_open' && breaker?.retryAt !== undefined ? remaining(breaker.retryAt) : 0;
    const wait = Math.max(backoffOrAsked, coolOff);
    const job: DeferredLogoutJob = {
      portalSessionId: id,
      ...(businessEntityId === undefined ? {} : { businessEntityId }),
      headers: Object.fromEntries(
        Object.entries(headers).filter((e): e is [string, string] => typeof e[1] === 'string'),
      ),
      idempotencyKey,
      firstAttemptAt: sentAt,
      attempts: result.attempts,
      notBefore: now + Math.max(0, wait),
      reason,
      lastError: error.message,
      site,
      ...this.settings.observer.jobFields(),
    };
    const queued = await this.queue.enqueue(job, Math.max(remaining(deadline), MIN_DEFERRAL_WAIT_MS));
    if (queued === 'queued') return { ...failed, status: 'deferred' };
    return { ...failed, reason: QUEUE_FAILURE_REASONS[queued] };
  }

  /** One background attempt of a deferred logout; a final result is reported here. */
  private async attemptDeferred(job: DeferredLogoutJob, timeoutMs: number): Promise<JobAttemptResult> {
    const client = this.settings.clientFor(job.businessEntityId);
    const breaker = this.breakerFor(client);
    const id = job.portalSessionId;
    try {
      const session = await this.settings.observer.call(client, true, () =>
        client.logout(id, { ...job.headers, [IDEMPOTENCY_KEY_HEADER]: job.idempotencyKey }, { timeoutMs }),
      );
      breaker?.record('success');
      this.reportDeferred(job, {
        ...resultOfAnswer(session, job.firstAttemptAt, job.attempts),
        ...scheduledReason(job),
      });
      return 'done';
    } catch (error) {
      // Background failures are not counted: a job retries one portal session, whose fault may be its own.
      if (isRetryable(error)) return { error, retryAfterMs: retryAfterMs(error) };
      if (error instanceof ChargebeeError) breaker?.record('success');
      const result: PortalSessionResult =
        error instanceof ChargebeeError
          ? resultOfError(error)
          : { status: 'failed', error: new ChargebeeError('The deferred logout failed unexpectedly', false) };
      this.reportDeferred(job, { ...result, attempts: job.attempts, ...scheduledReason(job) });
      return 'done';
    }
  }
}

/** A scheduled logout's final result says why it was made (`portal_max_age`, `idle`). */
function scheduledReason(job: DeferredLogoutJob): { reason?: ScheduledLogoutReason } {
  return isScheduledReason(job.reason) ? { reason: job.reason } : {};
}

/** The error of a logout the open breaker kept from being tried; `retryAt` on the epoch, as the error says. */
function circuitOpen(breaker: CircuitBreaker | undefined): ChargebeeCircuitOpenError {
  return new ChargebeeCircuitOpenError(epochNow() + (breaker?.retryAt === undefined ? 0 : remaining(breaker.retryAt)));
}
