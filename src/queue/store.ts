import type { Logger } from 'pino';
import type { DrainRate } from '../reliability/rate-limit';

/**
 * What a deferred logout is (a job) and where jobs wait (a {@link DeferredLogoutStore}): in this process's
 * memory by default (memory-deferred-store.ts), or a shared store (Redis, a database table) for apps with
 * several instances. The queue that drains them is deferred-queue.ts.
 */

/** Why a logout was deferred. */
export type DeferReason = 'budget_exhausted' | 'attempts_exhausted' | 'circuit_open';

/**
 * Why a scheduled logout is made: the portal session reached the app's maximum portal-session age
 * (`portal_max_age`), or the app session it was opened from went idle (`idle`). See the `expiry` option.
 */
export type ScheduledLogoutReason = 'portal_max_age' | 'idle';

const SCHEDULED_REASONS: ReadonlySet<string> = new Set<ScheduledLogoutReason>(['portal_max_age', 'idle']);

/** Whether a job's reason is that of a scheduled logout. */
export function isScheduledReason(reason: unknown): reason is ScheduledLogoutReason {
  return typeof reason === 'string' && SCHEDULED_REASONS.has(reason);
}

/**
 * A scheduled logout not tried yet: activity may move it later, a deferral of the same portal session
 * replaces it, and a drain at shutdown leaves it alone until it is due.
 */
export function isPendingSchedule(job: Pick<DeferredLogoutJob, 'attempts' | 'reason'>): boolean {
  return job.attempts === 0 && isScheduledReason(job.reason);
}

/**
 * A logout waiting in the queue. Plain JSON (strings and numbers), so that a shared store can keep it.
 * Warning: it holds the portal-session ID (a bearer reference to a customer's portal) and the origin
 * headers (the customer's IP address and email): keep a shared store private, as you keep sessions.
 */
export interface DeferredLogoutJob {
  /** The portal session to log out; also the job's key (one job per portal session). */
  portalSessionId: string;
  /** The business entity the logout is for; it picks the Chargebee client (site and key). */
  businessEntityId?: string;
  /** The `chargebee-*` headers of the original logout (origin IP, device, email, entity, events). */
  headers: Record<string, string>;
  /** Sent as `chargebee-idempotency-key` on every attempt, inline ones included. */
  idempotencyKey: string;
  /**
   * When the first attempt was made, in ms since the epoch; the maximum age counts from here. For a
   * scheduled logout not tried yet, its due time when it was scheduled: its first attempt sets it.
   */
  firstAttemptAt: number;
  /** Attempts made so far, inline ones included (0 for a scheduled logout not tried yet). */
  attempts: number;
  /**
   * Not to be tried before this time (ms since the epoch): backoff, Chargebee's `Retry-After`, or when a
   * scheduled logout is due.
   */
  notBefore: number;
  /** Why it was deferred, or why it was scheduled. */
  reason: DeferReason | ScheduledLogoutReason;
  /**
   * A scheduled logout is never postponed past this time (ms since the epoch): the portal session's
   * maximum age. Absent: no such bound.
   */
  latestAt?: number;
  /** The last failure's message (safe to log: no key, email or ID). */
  lastError?: string;
  /**
   * The Chargebee site the logout goes to, as a short hash of its base URL (see `siteKey`): the drain's
   * rate limit and a 429's pause are per site. Absent: one shared bucket for such jobs.
   */
  site?: string;
  /**
   * Set by a store that leases jobs (see `takeDue`): the taker's token. The queue hands it back to `add`
   * and `remove`, so that a taker whose lease ran out cannot undo the work of the next taker.
   */
  lease?: string;
  /**
   * The W3C `traceparent` of the logout that deferred it, when OpenTelemetry traced that logout: each
   * background attempt's span links to it. Trace and span IDs only, no secret.
   */
  traceparent?: string;
}

/** What a store that limits the drain's rate answers to `takeDue`. */
export interface DueJobs {
  jobs: DeferredLogoutJob[];
  /** When to ask again (ms since the epoch): the next job due, the next request allowed, or a pause's end. */
  nextAt?: number;
}

/**
 * Where deferred logouts wait. Methods may return promises. The queue calls them from one process; a
 * shared store must make `takeDue` atomic across processes (hand a job to one taker only).
 */
export interface DeferredLogoutStore {
  /**
   * Keeps `job`, replacing the job with the same `portalSessionId` (which also ends its hand-over). A job
   * that carries a `lease` is one the queue puts back after a failed attempt: a leasing store keeps it only
   * while that lease is still the job's. Returns `false` when the store is full and the job is not kept:
   * the queue logs it as lost.
   */
  add(job: DeferredLogoutJob): boolean | Promise<boolean>;
  /**
   * Hands over up to `limit` jobs whose `notBefore` is at most `now` and that are not handed over already.
   * A handed-over job stays in the store (and in `size()`) until `add` puts it back or `remove` deletes it;
   * a shared store should hand it out again after a lease time (`leaseMs`), in case the taker died.
   * A store that limits the rate (`limitsRate`) gets `rate` and hands out only jobs whose site may make a
   * request now, taking one request per job; it then says when to ask again ({@link DueJobs}).
   */
  takeDue(
    now: number,
    limit: number,
    rate?: DrainRate,
  ): DeferredLogoutJob[] | DueJobs | Promise<DeferredLogoutJob[] | DueJobs>;
  /** Deletes a finished job; with `lease`, only while that lease is still the job's. */
  remove(portalSessionId: string, lease?: string): void | Promise<void>;
  /** Jobs kept, handed-over ones included. */
  size(): number | Promise<number>;
  /** Earliest `notBefore` of the jobs not handed over, or `undefined`. Without it the queue polls every second. */
  nextDueAt?(): number | undefined | Promise<number | undefined>;
  /** Up to `limit` jobs kept (all without it), for the shutdown log (only hashes of the IDs are logged). */
  list?(limit?: number): DeferredLogoutJob[] | Promise<DeferredLogoutJob[]>;
  /**
   * The smallest `firstAttemptAt` of the jobs kept (for a scheduled logout not tried yet, its due time
   * `notBefore` instead), or `undefined` when there are none: the age of the oldest job, for `stats()`, the
   * health check and the metrics. Without it `list()` is read instead.
   */
  oldestFirstAttemptAt?(): number | undefined | Promise<number | undefined>;
  /**
   * `true` when jobs outlive this process (a shared store): `close()` then leaves the waiting jobs to the
   * other instances instead of draining them, and logs them as handed over rather than lost. When the store
   * does not answer, the queue keeps new and retried jobs in this process's memory and moves them to the
   * store once it answers again.
   */
  readonly durable?: boolean;
  /**
   * How long a job handed over by `takeDue` stays with its taker before it is handed out again. The queue
   * gives each attempt at most half of it.
   */
  readonly leaseMs?: number;
  /** `true` when `takeDue` applies the rate itself (for a shared store: one budget for every instance). */
  readonly limitsRate?: boolean;
  /** Pauses the drain of `site` until `until` (ms since the epoch), for every instance: Chargebee answered 429. */
  pauseSite?(site: string, until: number): void | Promise<void>;
  /** Called once by the queue that uses the store, with what the store may need of it. */
  attach?(queue: { maxAgeMs: number; log: Logger }): void;
  /**
   * Keeps a scheduled logout (the `expiry` option): `job` is due at `notBefore` and was never tried. It
   * replaces a scheduled logout of the same portal session that was not tried or handed over yet, but
   * leaves any other job of it (a deferral under way) as it is. Returns `false` when the store is full.
   * The scheduling options need it, with `postpone` and `cancel`.
   */
  schedule?(job: DeferredLogoutJob): boolean | Promise<boolean>;
  /**
   * Activity: moves the scheduled logouts of these portal sessions that were not tried or handed over yet
   * to `at` (ms since the epoch), never past their `latestAt` and never earlier than they were.
   */
  postpone?(portalSessionIds: readonly string[], at: number): void | Promise<void>;
  /** Deletes the jobs of these portal sessions that are not handed over: they ended another way. */
  cancel?(portalSessionIds: readonly string[]): void | Promise<void>;
}

/** The methods every store has. */
export const STORE_METHODS = ['add', 'takeDue', 'remove', 'size'] as const;

/** The store methods that scheduled logouts need. */
export const SCHEDULING_METHODS = ['schedule', 'postpone', 'cancel'] as const;

/**
 * Since when a job has been waiting, for the age of the oldest job: its first attempt, or for a scheduled
 * logout not tried yet its due time (in the future until then; activity moves it).
 */
export function waitingSince(job: DeferredLogoutJob): number {
  return isPendingSchedule(job) ? job.notBefore : job.firstAttemptAt;
}

/**
 * Most jobs a store keeps when the new one is a scheduled logout: nine tenths of its bound, so that a
 * deferral (a logout that already failed once and cannot wait) always finds room.
 */
export function scheduleLimit(maxQueued: number): number {
  return Math.max(1, Math.floor(maxQueued * 0.9));
}
