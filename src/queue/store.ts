import type { Logger } from 'pino';
import type { DrainRate } from '../reliability/rate-limit';

/**
 * What a deferred logout is (a job) and where jobs wait (a {@link DeferredLogoutStore}): in this process's
 * memory by default (memory-store.ts), or a shared store (Redis, PostgreSQL) for apps with several
 * instances. The queue that drains them is queue.ts. The contract's behaviour is checked for every store by
 * the same tests (test/contracts/).
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
 * Times are milliseconds since the epoch on the clock of the process that reads or writes the job: a
 * shared store keeps them on its own clock and translates at each call, so that instances whose clocks
 * disagree still agree on what is due.
 *
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
   * When the first attempt was made; the maximum age counts from here. For a scheduled logout not tried
   * yet, its due time when it was scheduled: its first attempt sets it.
   */
  firstAttemptAt: number;
  /** Attempts made so far, inline ones included (0 for a scheduled logout not tried yet). */
  attempts: number;
  /** Not to be tried before this time: backoff, Chargebee's `Retry-After`, or when a scheduled logout is due. */
  notBefore: number;
  /** Why it was deferred, or why it was scheduled. */
  reason: DeferReason | ScheduledLogoutReason;
  /** A scheduled logout is never postponed past this time (the portal session's maximum age). */
  latestAt?: number;
  /** The last failure's message (safe to log: no key, email or ID). */
  lastError?: string;
  /**
   * The Chargebee site the logout goes to, as a short hash of its base URL (see `siteKey`): the drain's
   * rate and a 429's pause are per site. Absent: one shared bucket for such jobs.
   */
  site?: string;
  /**
   * Set by the store on a job it hands over (see `takeDue`): the taker's token. The queue hands it back to
   * `add` and `giveUp`, so that a taker whose lease ran out cannot undo the work of the next taker.
   */
  lease?: string;
  /**
   * The W3C `traceparent` of the logout that deferred it, when OpenTelemetry traced that logout: each
   * background attempt's span links to it. Trace and span IDs only, no secret.
   */
  traceparent?: string;
}

/** What `takeDue` answers. */
export interface DueJobs {
  jobs: DeferredLogoutJob[];
  /**
   * When to ask again: the next job due, the next request a held-back site may make, or a pause's end.
   * Absent when the store holds no job that is not handed over.
   */
  nextAt?: number;
}

/** Figures of a store for `stats()` and the health check, read from its indexes (no job is fetched). */
export interface StoreFigures {
  /** Jobs kept, handed-over ones included. */
  jobs: number;
  /**
   * Since when the oldest job has waited: its first attempt, or for a scheduled logout not tried yet its
   * due time. `undefined` when there are none.
   */
  oldestWaitingSince: number | undefined;
}

/**
 * Where deferred logouts wait. Methods may return promises; the queue bounds every call in time. A shared
 * store is used by every instance at once: each method is one atomic step there.
 */
export interface DeferredLogoutStore {
  /**
   * Keeps a deferral, one job per portal session.
   * - A new one (no `lease`): added when the portal session has no job (`false` when the store is full:
   *   the queue logs it as lost); it replaces a scheduled logout of the portal session not tried yet; it
   *   renews a job of the portal session that a taker holds (the taker's `giveUp` then leaves the job due
   *   again instead of deleting it); any other job of the portal session is left as it is (`true`).
   * - A put-back after a failed attempt (with the `lease` its taker got): kept only while that lease is
   *   still the job's; a renewal meanwhile carries over (its first attempt and reason win).
   */
  add(job: DeferredLogoutJob): boolean | Promise<boolean>;
  /**
   * Hands over up to `limit` due jobs, each to one taker (with a fresh `lease`) until `leaseMs` has passed
   * (then to another: the taker may have died). Per Chargebee site, at most `rate` requests (a token bucket
   * kept by the store: on a shared store, one budget for every instance) and none while the site is paused;
   * a site held back by its rate or a pause does not hold back another's jobs.
   */
  takeDue(limit: number, rate: DrainRate): DueJobs | Promise<DueJobs>;
  /** The portal session ended (or Chargebee refused its logout for good): its job goes, whoever holds it. */
  remove(portalSessionId: string): void | Promise<void>;
  /**
   * The taker gives its job up without an answer (it reached the maximum age): the job goes, unless a new
   * deferral renewed it meanwhile, in which case it is due again at once. Nothing happens when `lease` is
   * no longer the job's. Resolves `true` when the job went, `false` when it stays (renewed, or not the
   * taker's any more): the queue reports the logout given up only in the first case.
   */
  giveUp(portalSessionId: string, lease: string | undefined): boolean | Promise<boolean>;
  /** Chargebee answered 429 with `Retry-After`: no job of `site` is handed over until `until`. */
  pauseSite(site: string, until: number): void | Promise<void>;
  /**
   * Chargebee answers again for `site`: up to `count` (all by default) of its jobs waiting out a backoff
   * become due now, earliest first; the rate still applies. Scheduled logouts not due yet are left alone.
   * Resolves how many became due.
   */
  wakeSite(site: string, count?: number): number | Promise<number>;
  /** Jobs kept, handed-over ones included. */
  size(): number | Promise<number>;
  /** The figures of `stats()`; without it the queue reports `size()` and no age. */
  figures?(): StoreFigures | Promise<StoreFigures>;
  /** Up to `limit` jobs kept, for the shutdown log (only hashes of the IDs are logged). */
  list?(limit: number): DeferredLogoutJob[] | Promise<DeferredLogoutJob[]>;
  /**
   * `true` when jobs outlive this process (a shared store): `close()` then leaves the waiting jobs to the
   * other instances instead of draining them. When the store does not answer, the queue keeps new and
   * retried jobs in this process's memory and moves them to the store once it answers again.
   */
  readonly durable?: boolean;
  /** How long a job handed over by `takeDue` stays with its taker. The queue gives each attempt at most half. */
  readonly leaseMs?: number;
  /** Called once by the queue that uses the store, with what the store may need of it. */
  attach?(queue: { maxAgeMs: number; log: Logger }): void;
  /**
   * Keeps a scheduled logout (the `expiry` option): `job` is due at `notBefore` and was never tried. It
   * replaces a scheduled logout of the same portal session not tried or handed over yet, and leaves any
   * other job of it as it is. `false` when the store is full. The `expiry` option needs it, with
   * `postpone` and `cancel`.
   */
  schedule?(job: DeferredLogoutJob): boolean | Promise<boolean>;
  /**
   * Activity: moves the scheduled logouts of these portal sessions that were not tried or handed over yet
   * to `at`, never past their `latestAt` and never earlier than they were.
   */
  postpone?(portalSessionIds: readonly string[], at: number): void | Promise<void>;
  /** Deletes the jobs of these portal sessions that are not handed over: they ended another way. */
  cancel?(portalSessionIds: readonly string[]): void | Promise<void>;
}

/** The methods every store has. */
export const STORE_METHODS = ['add', 'takeDue', 'remove', 'giveUp', 'pauseSite', 'wakeSite', 'size'] as const;

/** The store methods that scheduled logouts need. */
export const SCHEDULING_METHODS = ['schedule', 'postpone', 'cancel'] as const;

/**
 * Since when a job has been waiting, for the age of the oldest job: its first attempt, or for a scheduled
 * logout not tried yet its due time (in the future until then; activity moves it).
 */
export function waitingSince(
  job: Pick<DeferredLogoutJob, 'attempts' | 'reason' | 'notBefore' | 'firstAttemptAt'>,
): number {
  return isPendingSchedule(job) ? job.notBefore : job.firstAttemptAt;
}

/**
 * Most jobs a store keeps when the new one is a scheduled logout: nine tenths of its bound, so that a
 * deferral (a logout that already failed once and cannot wait) always finds room.
 */
export function scheduleLimit(maxQueued: number): number {
  return Math.max(1, Math.floor(maxQueued * 0.9));
}
