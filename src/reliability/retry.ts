import { ChargebeeApiError, ChargebeeError } from '../base/errors';
import { now, sleep } from '../base/time';

/**
 * Retries inside one logout: which failures are worth another attempt, how long to wait (exponential
 * backoff with full jitter, or Chargebee's `Retry-After`), and the attempt loop bounded by one time budget.
 * Time and randomness are passed in, so the rules are tested without waiting.
 */

/** How often and how fast a logout is retried. */
export interface RetryPolicy {
  /** Most attempts, the first included. */
  maxAttempts: number;
  /** Cap of the first backoff delay; it doubles per retry. */
  baseDelayMs: number;
  /** Largest backoff delay. */
  maxDelayMs: number;
}

/** Default most attempts of one portal session's logout inside a request. */
export const DEFAULT_MAX_ATTEMPTS = 4;
/** Default total time one logout may take inline, all attempts and waits included. */
export const DEFAULT_BUDGET_MS = 3000;
/** An attempt given less time than this cannot get an answer from Chargebee; the budget counts as spent. */
export const MIN_ATTEMPT_MS = 50;

/** The passage of time, real or simulated. */
export interface Clock {
  now(): number;
  sleep(ms: number): Promise<void>;
}

export const realClock: Clock = { now, sleep };

/** `min(maxDelayMs, baseDelayMs * 2^(retry-1))`: the exponential ceiling both backoffs draw under. */
function backoffCeiling(retry: number, policy: Pick<RetryPolicy, 'baseDelayMs' | 'maxDelayMs'>): number {
  return Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.max(0, retry - 1));
}

/**
 * Full-jitter backoff before retry number `retry` (1 for the first retry): a random delay between 0 and
 * `min(maxDelayMs, baseDelayMs * 2^(retry-1))`, so that many clients failing together do not retry together.
 */
export function backoffDelay(
  retry: number,
  policy: Pick<RetryPolicy, 'baseDelayMs' | 'maxDelayMs'>,
  random: () => number = Math.random,
): number {
  return Math.floor(random() * backoffCeiling(retry, policy));
}

/**
 * Backoff of the background queue: between half and all of `min(maxDelayMs, baseDelayMs * 2^(retry-1))`
 * ("equal jitter"). Nobody waits on it, so it keeps a floor: a deferred logout does not come straight back.
 */
export function queueBackoffDelay(
  retry: number,
  policy: Pick<RetryPolicy, 'baseDelayMs' | 'maxDelayMs'>,
  random: () => number = Math.random,
): number {
  const ceiling = backoffCeiling(retry, policy);
  return Math.floor(ceiling / 2 + random() * (ceiling / 2));
}

/**
 * True for failures another attempt may cure: no connection, a timeout, a cut response, 429, 500, 502,
 * 503, 504, and a 2xx whose body is unusable (logout is idempotent, so asking again is safe).
 * Never for 400, 401, 403, 404, 409 or 422: the same call would get the same answer.
 */
export function isRetryable(error: unknown): boolean {
  return error instanceof ChargebeeError && error.retryable;
}

/** Chargebee's rate limits count per minute: a `Retry-After` up to this long is always honoured. */
export const RATE_LIMIT_WINDOW_MS = 60_000;

/**
 * The background queue's wait before its next attempt: Chargebee's `Retry-After` (ms) when it gave one, at
 * most `maxDelayMs` or a rate-limit window, whichever is longer; otherwise, and for a wait past the queue's
 * `maxAgeMs` (no real limit asks for that), the queue's backoff.
 */
export function queueRetryDelay(
  retryAfter: number | undefined,
  retry: number,
  policy: Pick<RetryPolicy, 'baseDelayMs' | 'maxDelayMs'> & { maxAgeMs: number },
  random: () => number = Math.random,
): number {
  if (retryAfter === undefined || !(retryAfter >= 0) || retryAfter > policy.maxAgeMs)
    return queueBackoffDelay(retry, policy, random);
  return Math.min(retryAfter, Math.max(policy.maxDelayMs, RATE_LIMIT_WINDOW_MS));
}

/** The wait Chargebee asked for with `Retry-After` on a 429, in milliseconds. */
export function retryAfterMs(error: unknown): number | undefined {
  if (!(error instanceof ChargebeeApiError) || error.status !== 429 || error.retryAfterSeconds === undefined)
    return undefined;
  return error.retryAfterSeconds * 1000;
}

/** One attempt's allowance. */
export interface Attempt {
  /** 1 for the first attempt. */
  number: number;
  /** Time this attempt may take: the smaller of the per-call timeout and the time left. */
  timeoutMs: number;
}

/**
 * Why the loop stopped without a value.
 * - `not_retryable`: an answer that another attempt would not change (400, 401, 404, ...).
 * - `attempts_exhausted`: `maxAttempts` retryable failures.
 * - `budget_exhausted`: the next wait (backoff or `Retry-After`) plus an attempt does not fit the time left.
 * - `circuit_open`: the gate (circuit breaker) refused the attempt.
 */
export type RetryStop = 'not_retryable' | 'attempts_exhausted' | 'budget_exhausted' | 'circuit_open';

export type RetryResult<T> =
  | { ok: true; value: T; attempts: number }
  | { ok: false; error: unknown; attempts: number; stop: RetryStop; retryAfterMs?: number };

export interface RetryLoopOptions {
  /** `false` makes one attempt only. */
  policy: RetryPolicy | false;
  /** Clock time (`clock.now()`) by which the loop must be done. */
  deadline: number;
  /** Longest time one attempt may take. */
  timeoutMs: number;
  clock?: Clock;
  random?: () => number;
  /** Asked before every attempt; `false` stops the loop with `circuit_open`. */
  gate?: () => boolean;
  /** Told the result of every attempt the gate let through (`undefined` on success). */
  onAttempt?: (error: unknown) => void;
  /** The error to report when the gate refuses the first attempt. */
  gateError?: () => unknown;
}

/**
 * Calls `call` until it resolves, a failure is not retryable, the attempts are used up, the budget is
 * spent or the gate refuses. A `Retry-After` is honoured when the wait and one more attempt fit the time
 * left; otherwise the loop stops with `budget_exhausted` and reports the wait, for the deferred queue.
 */
export async function withRetries<T>(
  call: (attempt: Attempt) => Promise<T>,
  options: RetryLoopOptions,
): Promise<RetryResult<T>> {
  const clock = options.clock ?? realClock;
  const random = options.random ?? Math.random;
  const maxAttempts = options.policy === false ? 1 : options.policy.maxAttempts;
  let lastError: unknown;
  for (let number = 1; ; number++) {
    if (options.gate && !options.gate()) {
      return { ok: false, error: lastError ?? options.gateError?.(), attempts: number - 1, stop: 'circuit_open' };
    }
    const left = options.deadline - clock.now();
    // The first attempt always runs, so that a slow store read cannot turn every logout into a deferral.
    const timeoutMs = Math.max(
      Math.min(options.timeoutMs, left),
      number === 1 ? Math.min(options.timeoutMs, MIN_ATTEMPT_MS) : 0,
    );
    try {
      const value = await call({ number, timeoutMs });
      options.onAttempt?.(undefined);
      return { ok: true, value, attempts: number };
    } catch (error) {
      options.onAttempt?.(error);
      lastError = error;
    }
    if (!isRetryable(lastError)) return { ok: false, error: lastError, attempts: number, stop: 'not_retryable' };
    const asked = retryAfterMs(lastError);
    if (number >= maxAttempts)
      return { ok: false, error: lastError, attempts: number, stop: 'attempts_exhausted', retryAfterMs: asked };
    const wait = asked ?? backoffDelay(number, options.policy as RetryPolicy, random);
    if (clock.now() + wait + MIN_ATTEMPT_MS > options.deadline) {
      return { ok: false, error: lastError, attempts: number, stop: 'budget_exhausted', retryAfterMs: asked };
    }
    if (wait > 0) await clock.sleep(wait);
  }
}
