/**
 * The package's fixed figures, in one place: what an app cannot set (each was an option once and did not
 * earn its place), but the tests and the benchmarks scale down to run in seconds, through the internal
 * `createPortalLogout(options, tuning)`.
 */
export interface Tuning {
  /** Inline retries: cap of the first backoff (full jitter, doubling per retry), and the largest one. */
  retryBaseDelayMs: number;
  retryMaxDelayMs: number;
  /** Background attempts: first backoff (equal jitter, doubling per attempt), and the largest one. */
  queueBaseDelayMs: number;
  queueMaxDelayMs: number;
  /** Time one background attempt may take; `undefined`: the budget. */
  attemptTimeoutMs: number | undefined;
  /** Background attempts at once; `undefined`: from the drain rate (see {@link concurrencyFor}). */
  concurrency: number | undefined;
  /** Most portal sessions remembered per app session; the oldest are dropped past it. */
  maxRemembered: number;
  /** Sockets each Chargebee client opens at once; further calls wait for one within their deadline. */
  maxSockets: number;
  /** Least time between two writes of `activity` per app session; `undefined`: from `expiry.idleMs`. */
  activityIntervalMs: number | undefined;
}

export const DEFAULT_TUNING: Readonly<Tuning> = {
  retryBaseDelayMs: 100,
  retryMaxDelayMs: 1000,
  queueBaseDelayMs: 1000,
  queueMaxDelayMs: 60_000,
  attemptTimeoutMs: undefined,
  concurrency: undefined,
  maxRemembered: 10,
  maxSockets: 50,
  activityIntervalMs: undefined,
};

/**
 * Background attempts at once for a drain rate: one per 600 requests a minute (one per 10 a second, for
 * a Chargebee that answers in a tenth of a second), from 4 to 32; 4 without a limit.
 */
export function concurrencyFor(ratePerMinute: number | undefined): number {
  return ratePerMinute === undefined ? 4 : Math.min(32, Math.max(4, Math.ceil(ratePerMinute / 600)));
}

/** The activity hook's interval for an idle time: a tenth of it, at most a minute, in whole milliseconds. */
export function activityIntervalFor(idleMs: number): number {
  return Math.min(60_000, Math.round(idleMs / 10));
}
