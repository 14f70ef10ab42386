import type { Logger } from 'pino';
import { ChargebeeApiError } from '../chargebee/errors';
import { hashPortalSessionId } from '../identifiers';
import { MIN_ATTEMPT_MS, queueBackoffDelay } from './retry';

/**
 * Deferred logouts: when a logout could not reach Chargebee within the request's budget, it is queued
 * here and retried in the background until Chargebee ends the portal session, refuses for good, or the
 * job reaches its maximum age. The jobs live in a {@link DeferredLogoutStore}: in memory by default, or a
 * shared store (Redis, a database table) for apps with several instances.
 */

/** Why a logout was deferred. */
export type DeferReason = 'budget_exhausted' | 'attempts_exhausted' | 'circuit_open';

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
  /** When the first attempt was made, in ms since the epoch; the maximum age counts from here. */
  firstAttemptAt: number;
  /** Attempts made so far, inline ones included. */
  attempts: number;
  /** Not to be tried before this time (ms since the epoch): backoff, or Chargebee's `Retry-After`. */
  notBefore: number;
  /** Why it was deferred. */
  reason: DeferReason;
  /** The last failure's message (safe to log: no key, email or ID). */
  lastError?: string;
}

/**
 * Where deferred logouts wait. Methods may return promises. The queue calls them from one process; a
 * shared store must make `takeDue` atomic across processes (hand a job to one taker only).
 */
export interface DeferredLogoutStore {
  /**
   * Keeps `job`, replacing the job with the same `portalSessionId` (which also ends its hand-over).
   * Returns `false` when the store is full and the job is not kept: the queue logs it as lost.
   */
  add(job: DeferredLogoutJob): boolean | Promise<boolean>;
  /**
   * Hands over up to `limit` jobs whose `notBefore` is at most `now` and that are not handed over already.
   * A handed-over job stays in the store (and in `size()`) until `add` puts it back or `remove` deletes it;
   * a shared store should hand it out again after a lease time, in case the taker died.
   */
  takeDue(now: number, limit: number): DeferredLogoutJob[] | Promise<DeferredLogoutJob[]>;
  /** Deletes a finished job. */
  remove(portalSessionId: string): void | Promise<void>;
  /** Jobs kept, handed-over ones included. */
  size(): number | Promise<number>;
  /** Earliest `notBefore` of the jobs not handed over, or `undefined`. Without it the queue polls every second. */
  nextDueAt?(): number | undefined | Promise<number | undefined>;
  /** Every job kept, for the shutdown log (only hashes of the IDs are logged). */
  list?(): DeferredLogoutJob[] | Promise<DeferredLogoutJob[]>;
  /**
   * `true` when jobs outlive this process (a shared store): `close()` then leaves the waiting jobs to the
   * other instances instead of draining them, and logs them as handed over rather than lost.
   */
  readonly durable?: boolean;
}

/** Default most jobs of the in-memory store. */
export const DEFAULT_MAX_QUEUED = 10_000;

/** The default store: a bounded map in this process's memory. Jobs are lost if the process dies. */
export class MemoryDeferredLogoutStore implements DeferredLogoutStore {
  readonly durable = false;
  private readonly jobs = new Map<string, { job: DeferredLogoutJob; handedOver: boolean }>();

  /** @param maxQueued most jobs kept; `add` refuses new ones beyond it. Default 10 000. */
  constructor(readonly maxQueued: number = DEFAULT_MAX_QUEUED) {
    if (!Number.isInteger(maxQueued) || maxQueued < 1)
      throw new TypeError('MemoryDeferredLogoutStore: maxQueued must be a whole number of at least 1');
  }

  add(job: DeferredLogoutJob): boolean {
    if (!this.jobs.has(job.portalSessionId) && this.jobs.size >= this.maxQueued) return false;
    this.jobs.set(job.portalSessionId, { job: copyJob(job), handedOver: false });
    return true;
  }

  takeDue(now: number, limit: number): DeferredLogoutJob[] {
    const due: DeferredLogoutJob[] = [];
    for (const entry of this.jobs.values()) {
      if (due.length >= limit) break;
      if (entry.handedOver || entry.job.notBefore > now) continue;
      entry.handedOver = true;
      due.push(copyJob(entry.job));
    }
    return due;
  }

  remove(portalSessionId: string): void {
    this.jobs.delete(portalSessionId);
  }

  size(): number {
    return this.jobs.size;
  }

  nextDueAt(): number | undefined {
    let next: number | undefined;
    for (const entry of this.jobs.values()) {
      if (!entry.handedOver && (next === undefined || entry.job.notBefore < next)) next = entry.job.notBefore;
    }
    return next;
  }

  list(): DeferredLogoutJob[] {
    return [...this.jobs.values()].map((entry) => copyJob(entry.job));
  }
}

function copyJob(job: DeferredLogoutJob): DeferredLogoutJob {
  return { ...job, headers: { ...job.headers } };
}

/** What one background attempt came to: over (the hook reported it), or a failure worth retrying. */
export type JobAttemptResult = 'done' | { error: unknown; retryAfterMs?: number };

export interface DeferredQueueOptions {
  store: DeferredLogoutStore;
  /** A job older than this (since its first attempt) is given up. */
  maxAgeMs: number;
  /** Backoff between background attempts: half to all of `baseDelayMs` doubling per attempt, up to `maxDelayMs`. */
  baseDelayMs: number;
  maxDelayMs: number;
  /** Attempts under way at once. */
  concurrency: number;
  /** Longest time one attempt may take. */
  timeoutMs: number;
  /** Makes one attempt; reports a final result itself and resolves `'done'`, or resolves the retryable failure. */
  attempt: (job: DeferredLogoutJob, timeoutMs: number) => Promise<JobAttemptResult>;
  /** Reports a job given up without a final answer: maximum age, full store, or not drained at shutdown. */
  givenUp: (job: DeferredLogoutJob, reason: 'max_age' | 'queue_full', lastError: unknown) => void;
  log: Logger;
  now?: () => number;
  random?: () => number;
}

/** Figures of a queue, for monitoring and tests. */
export interface DeferredQueueStats {
  /** Jobs accepted since start. */
  queued: number;
  /** Jobs whose attempt ended them (logged out, not found, or refused for good). */
  done: number;
  /** Jobs given up at their maximum age. */
  expired: number;
  /** Jobs refused because the store was full, or left undrained in a non-durable store at shutdown. */
  lost: number;
  /** Attempts under way. */
  inFlight: number;
}

const POLL_INTERVAL_MS = 1000;
/** Longest wait between attempts while draining at shutdown. */
const DRAIN_MAX_DELAY_MS = 200;
/** Most ID hashes listed in the shutdown log line. */
const MAX_LOGGED_HASHES = 100;

/**
 * Runs deferred logouts from a store: one timer (unref'd, so it never keeps the process alive) wakes it
 * when the next job is due; at most `concurrency` attempts run at once. A 429 pauses the whole queue for
 * as long as Chargebee asked. `close()` drains what it can within a time limit and logs the rest.
 */
export class DeferredLogoutQueue {
  private readonly now: () => number;
  private readonly random: () => number;
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Infinity;
  private pumping = false;
  private pumpAgain = false;
  private inFlight = 0;
  private pausedUntil = 0;
  private closed = false;
  private stopped = false;
  private draining = false;
  private deadline = Infinity;
  private drainRetries: DeferredLogoutJob[] = [];
  private onIdle: (() => void) | undefined;
  private closing: Promise<void> | undefined;
  private readonly counts = { queued: 0, done: 0, expired: 0, lost: 0 };

  constructor(private readonly options: DeferredQueueOptions) {
    this.now = options.now ?? Date.now;
    this.random = options.random ?? Math.random;
  }

  get stats(): DeferredQueueStats {
    return { ...this.counts, inFlight: this.inFlight };
  }

  /** Jobs in the store, handed-over ones included. */
  async size(): Promise<number> {
    return this.options.store.size();
  }

  /** Queues a job. Resolves `'full'` when the store refused it (logged here), `'closed'` after `close()`. */
  async enqueue(job: DeferredLogoutJob): Promise<'queued' | 'full' | 'closed'> {
    if (this.closed) return 'closed';
    let added: boolean;
    try {
      added = await this.options.store.add(job);
    } catch (error) {
      this.options.log.error(
        { err: safeError(error), chargebeePortalLogout: { idHash: hashPortalSessionId(job.portalSessionId) } },
        'chargebee portal logout: the deferred-logout store failed to add a job; the logout is lost',
      );
      added = false;
    }
    if (!added) {
      this.counts.lost += 1;
      const queued = await this.safeSize();
      this.options.log.error(
        { chargebeePortalLogout: { idHash: hashPortalSessionId(job.portalSessionId), queued, lost: this.counts.lost } },
        `chargebee portal logout: deferred-logout queue full (${queued} queued); this portal session stays open`,
      );
      return 'full';
    }
    this.counts.queued += 1;
    this.wakeAt(job.notBefore);
    return 'queued';
  }

  /**
   * Stops taking jobs, then drains: every waiting job is tried now (backoff ignored, a 429's pause kept)
   * until the queue is empty or `timeoutMs` has passed. What is left is logged with its count and ID
   * hashes (at error level for a store that dies with the process). A durable store is not drained.
   */
  close(timeoutMs: number): Promise<void> {
    this.closing ??= this.shutDown(timeoutMs);
    return this.closing;
  }

  private async shutDown(timeoutMs: number): Promise<void> {
    this.closed = true;
    this.deadline = this.now() + timeoutMs;
    const durable = this.options.store.durable === true;
    await new Promise<void>((resolve) => {
      // Not unref'd: an app awaiting close() must get the log line of what was left.
      const limit = setTimeout(finish, Math.max(0, timeoutMs));
      function finish(): void {
        clearTimeout(limit);
        resolve();
      }
      this.onIdle = finish;
      if (!durable) {
        this.draining = true;
        this.pump();
      } else {
        void this.checkIdle(); // never rejects: the store's size() is read through safeSize
      }
    });
    this.stopped = true;
    this.onIdle = undefined;
    this.clearTimer();
    // Attempts under way were given at most the time left; let them settle so they are counted.
    await new Promise<void>((resolve) => {
      const started = this.now();
      const check = (): void => {
        if (this.inFlight === 0 || this.now() - started > 1000) resolve();
        else setTimeout(check, 5);
      };
      check();
    });
    for (const job of this.drainRetries.splice(0)) await this.safeAdd(job);
    const left = await this.leftovers();
    if (left.count === 0) {
      this.options.log.info(
        { chargebeePortalLogout: { deferred: this.stats } },
        'chargebee portal logout: deferred-logout queue closed, nothing left',
      );
    } else if (durable) {
      this.options.log.warn(
        { chargebeePortalLogout: { left: left.count, idHashes: left.idHashes } },
        `chargebee portal logout: deferred-logout queue closed; ${left.count} logouts left in the shared store for another instance`,
      );
    } else {
      this.counts.lost += left.count;
      this.options.log.error(
        { chargebeePortalLogout: { left: left.count, idHashes: left.idHashes } },
        `chargebee portal logout: deferred-logout queue closed with ${left.count} logouts not drained; those portal sessions may stay open`,
      );
    }
  }

  private async leftovers(): Promise<{ count: number; idHashes: string[] }> {
    try {
      const store = this.options.store;
      const jobs = store.list ? await store.list() : undefined;
      const count = jobs ? jobs.length : await store.size();
      return {
        count,
        idHashes: (jobs ?? []).slice(0, MAX_LOGGED_HASHES).map((j) => hashPortalSessionId(j.portalSessionId)),
      };
    } catch (error) {
      this.options.log.error(
        { err: safeError(error) },
        'chargebee portal logout: could not count the deferred logouts left at shutdown',
      );
      return { count: 0, idHashes: [] };
    }
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = Infinity;
  }

  /** Makes sure the queue wakes up by `at` (ms since the epoch). */
  private wakeAt(at: number): void {
    if (this.stopped) return;
    if (at >= this.timerAt) return;
    this.clearTimer();
    this.timerAt = at;
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        this.timerAt = Infinity;
        this.pump();
      },
      Math.max(0, at - this.now()),
    );
    this.timer.unref();
  }

  private pump(): void {
    if (this.pumping) {
      this.pumpAgain = true;
      return;
    }
    this.pumping = true;
    this.fill()
      .then(
        () => undefined,
        (error: unknown) => {
          this.options.log.error(
            { err: safeError(error) },
            'chargebee portal logout: the deferred-logout store failed; retrying in a second',
          );
          this.wakeAt(this.now() + POLL_INTERVAL_MS);
        },
      )
      .finally(() => {
        this.pumping = false;
        if (this.pumpAgain) {
          this.pumpAgain = false;
          this.pump();
        }
      });
  }

  /** Starts due jobs up to the concurrency, then sets the timer for the next one. */
  private async fill(): Promise<void> {
    for (;;) {
      this.pumpAgain = false;
      if (this.stopped) return;
      if (this.closed && !this.draining) {
        // A durable store keeps its jobs for the other instances: take no more, wait for those under way.
        await this.checkIdle();
        return;
      }
      const now = this.now();
      if (
        this.draining &&
        (this.deadline - now < MIN_ATTEMPT_MS || this.pausedUntil > this.deadline - MIN_ATTEMPT_MS)
      ) {
        // No time left for an attempt (or Chargebee asked to wait past it): the rest is for the shutdown count.
        this.onIdle?.();
        return;
      }
      if (this.pausedUntil > now) {
        this.wakeAt(this.pausedUntil);
        return;
      }
      const free = this.options.concurrency - this.inFlight;
      if (free <= 0) return;
      const jobs = this.draining
        ? await this.takeWhileDraining(now, free)
        : await this.options.store.takeDue(now, free);
      if (jobs.length === 0) {
        await this.scheduleNext(now);
        return;
      }
      for (const job of jobs) this.start(job);
    }
  }

  private async takeWhileDraining(now: number, limit: number): Promise<DeferredLogoutJob[]> {
    const ready = this.drainRetries.filter((j) => j.notBefore <= now).slice(0, limit);
    this.drainRetries = this.drainRetries.filter((j) => !ready.includes(j));
    if (ready.length < limit) ready.push(...(await this.options.store.takeDue(Infinity, limit - ready.length)));
    return ready;
  }

  private async scheduleNext(now: number): Promise<void> {
    if (this.draining) {
      const next = Math.min(...this.drainRetries.map((j) => j.notBefore));
      if (Number.isFinite(next)) this.wakeAt(next);
      await this.checkIdle();
      return;
    }
    const store = this.options.store;
    const next = store.nextDueAt
      ? await store.nextDueAt()
      : (await store.size()) > this.inFlight
        ? now + POLL_INTERVAL_MS
        : undefined;
    if (next !== undefined) this.wakeAt(Math.max(next, now));
  }

  private async checkIdle(): Promise<void> {
    if (!this.onIdle || this.inFlight > 0 || this.drainRetries.length > 0) return;
    if ((await this.safeSize()) === 0 || this.options.store.durable) this.onIdle?.();
  }

  private start(job: DeferredLogoutJob): void {
    this.inFlight += 1;
    this.run(job)
      .catch((error: unknown) =>
        this.options.log.error(
          { err: safeError(error) },
          'chargebee portal logout: a deferred logout failed unexpectedly',
        ),
      )
      .finally(() => {
        this.inFlight -= 1;
        this.pump();
      });
  }

  private async run(job: DeferredLogoutJob): Promise<void> {
    const { store } = this.options;
    const now = this.now();
    if (now - job.firstAttemptAt >= this.options.maxAgeMs) {
      await store.remove(job.portalSessionId);
      this.counts.expired += 1;
      this.options.givenUp(job, 'max_age', undefined);
      return;
    }
    const timeoutMs = Math.min(this.options.timeoutMs, this.deadline - now);
    if (timeoutMs < MIN_ATTEMPT_MS) {
      // Shutting down with no time left for an attempt: leave it for the shutdown count.
      this.drainRetries.push(job);
      return;
    }
    const attempted = { ...job, attempts: job.attempts + 1 };
    const result = await this.options.attempt(attempted, timeoutMs);
    if (result === 'done') {
      await store.remove(job.portalSessionId);
      this.counts.done += 1;
      return;
    }
    const after = this.now();
    const is429 = result.error instanceof ChargebeeApiError && result.error.status === 429;
    let delay = result.retryAfterMs ?? queueBackoffDelay(attempted.attempts, this.options, this.random);
    // Chargebee's rate limit is per site: a 429 pauses every job, not only this one.
    if (is429) this.pausedUntil = Math.max(this.pausedUntil, after + delay);
    if (this.draining && !is429) delay = Math.min(delay, DRAIN_MAX_DELAY_MS);
    const next: DeferredLogoutJob = {
      ...attempted,
      notBefore: after + delay,
      lastError: safeError(result.error).message,
    };
    if (next.notBefore - next.firstAttemptAt >= this.options.maxAgeMs) {
      await store.remove(job.portalSessionId);
      this.counts.expired += 1;
      this.options.givenUp(next, 'max_age', result.error);
      return;
    }
    if (this.draining) {
      this.drainRetries.push(next);
      this.wakeAt(next.notBefore);
      return;
    }
    if (!(await this.safeAdd(next))) {
      this.counts.lost += 1;
      this.options.givenUp(next, 'queue_full', result.error);
      return;
    }
    this.wakeAt(next.notBefore);
  }

  private async safeAdd(job: DeferredLogoutJob): Promise<boolean> {
    try {
      return await this.options.store.add(job);
    } catch (error) {
      this.options.log.error(
        { err: safeError(error) },
        'chargebee portal logout: the deferred-logout store failed to keep a job',
      );
      return false;
    }
  }

  private async safeSize(): Promise<number> {
    try {
      return await this.options.store.size();
    } catch {
      return -1;
    }
  }
}

/** The type and message of an error, for a log line; errors of this package carry no secret. */
function safeError(error: unknown): { type: string; message: string } {
  return error instanceof Error
    ? { type: error.name, message: error.message }
    : { type: typeof error, message: String(error) };
}
