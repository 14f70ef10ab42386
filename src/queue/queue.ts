import type { Logger } from 'pino';
import { ChargebeeApiError } from '../base/errors';
import { hashPortalSessionId } from '../base/identifiers';
import { errorFields, safeLog, type Log } from '../base/logging';
import { after, DeadlineError, deadlineIn, epochNow, settleWithin, within, type Timer } from '../base/time';
import { drainRate, NO_RATE_LIMIT, SiteRateLimiter, type DrainRate } from '../reliability/rate-limit';
import { MIN_ATTEMPT_MS, queueRetryDelay } from '../reliability/retry';
import { MemoryDeferredLogoutStore, DEFAULT_MAX_QUEUED } from './memory-store';
import {
  isPendingSchedule,
  waitingSince,
  type DeferredLogoutJob,
  type DeferredLogoutStore,
  type DueJobs,
} from './store';

/*
 * Deferred logouts: when a logout could not reach Chargebee within the request's budget, it is queued and
 * retried in the background until Chargebee ends the portal session, refuses for good, or the job reaches
 * its maximum age; scheduled logouts (the expiry option) wait here until they are due.
 */

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
  /**
   * Background requests per minute per Chargebee site: in this process, or for every instance together
   * when the store limits the rate. `undefined`: no limit (a 429's pause still holds).
   */
  ratePerMinute?: number;
  /** Longest wait for one call to the store in the background. Default 2000 ms. */
  storeTimeoutMs?: number;
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
  /** Jobs kept in this process's memory because the shared store did not answer; moved there once it does. */
  inMemory: number;
  /** Scheduled logouts accepted since start (maximum portal-session age, idle expiry). */
  scheduled: number;
}

/** A job taken for an attempt, and the store it goes back to (the shared one, or this process's memory). */
interface Taken {
  job: DeferredLogoutJob;
  source: DeferredLogoutStore;
}

/**
 * A deferral waits for the store for the time left in the request's budget, and at least this long (a
 * shared store on the network needs a round trip); past that the job waits in memory for the store.
 */
export const MIN_DEFERRAL_WAIT_MS = 20;
const POLL_INTERVAL_MS = 1000;
/** A shared store is looked at this often at least, for the jobs of instances that stopped. */
const SHARED_POLL_MS = 5000;
/** After a store failure, the store is tried again after this long. */
const STORE_RETRY_MS = 1000;
const DEFAULT_STORE_TIMEOUT_MS = 2000;
/** Shortest sleep when nothing could be taken, so that a store that keeps answering "due" cannot spin the queue. */
const MIN_WAKE_MS = 5;
/** Longest wait between attempts while draining at shutdown. */
const DRAIN_MAX_DELAY_MS = 200;
/** Most ID hashes listed in the shutdown log line. */
const MAX_LOGGED_HASHES = 100;
const STORE = 'the deferred-logout store';

/**
 * Runs deferred logouts from a store: one timer (unref'd, so it never keeps the process alive) wakes it
 * when the next job is due; at most `concurrency` attempts run at once, within the rate per site. A 429
 * pauses that site's drain for as long as Chargebee asked. `close()` drains what it can within a time limit
 * and logs the rest. A durable store that does not answer is stood in for by this process's memory.
 */
export class DeferredLogoutQueue {
  private readonly now: () => number;
  private readonly random: () => number;
  /** The options' logger, with the package's prefix; a logger that throws loses lines, not jobs. */
  private readonly log: Log;
  private readonly rate: DrainRate | undefined;
  private readonly limiter: SiteRateLimiter;
  private readonly storeTimeoutMs: number;
  /** Jobs kept in memory while a durable store does not answer. */
  private readonly spill: MemoryDeferredLogoutStore | undefined;
  private storeDownUntil = 0;
  private storeDown = false;
  /** Jobs that ended in memory and may have a copy in the store, by portal-session ID (with their lease). */
  private readonly pendingRemovals = new Map<string, string | undefined>();
  private timer: Timer | undefined;
  /** Told when no attempt is under way any more (at shutdown). */
  private noneInFlight: (() => void) | undefined;
  private timerAt = Infinity;
  private pumping = false;
  private pumpAgain = false;
  private inFlight = 0;
  private closed = false;
  private stopped = false;
  private draining = false;
  private deadline = Infinity;
  private drainRetries: DeferredLogoutJob[] = [];
  /** Scheduled logouts not due yet, set aside by a drain at shutdown: they die with this process's memory. */
  private notDueAtShutdown: DeferredLogoutJob[] = [];
  private onIdle: (() => void) | undefined;
  private closing: Promise<void> | undefined;
  private readonly counts = { queued: 0, done: 0, expired: 0, lost: 0, scheduled: 0 };

  constructor(private readonly options: DeferredQueueOptions) {
    this.now = options.now ?? epochNow;
    this.random = options.random ?? Math.random;
    this.log = safeLog(options.log);
    this.rate = options.ratePerMinute === undefined ? undefined : drainRate(options.ratePerMinute);
    this.limiter = new SiteRateLimiter(this.rate);
    this.storeTimeoutMs = options.storeTimeoutMs ?? DEFAULT_STORE_TIMEOUT_MS;
    const { store } = options;
    this.spill = store.durable ? new MemoryDeferredLogoutStore(DEFAULT_MAX_QUEUED) : undefined;
    try {
      store.attach?.({ maxAgeMs: options.maxAgeMs, log: options.log });
    } catch (error) {
      this.log.error({ err: errorFields(error) }, `${STORE} failed to attach`);
    }
    // A shared store may hold the jobs of instances that stopped: look at once, then now and then.
    if (store.durable) this.wakeAt(this.now());
  }

  get stats(): DeferredQueueStats {
    return { ...this.counts, inFlight: this.inFlight, inMemory: this.spill?.size() ?? 0 };
  }

  /** Jobs in the store, handed-over ones included, and those kept in memory while it does not answer. */
  async size(): Promise<number> {
    return (await this.options.store.size()) + (this.spill?.size() ?? 0);
  }

  /** `firstAttemptAt` of the oldest job in the store; `undefined` when empty or when the store cannot tell. */
  async oldestFirstAttemptAt(): Promise<number | undefined> {
    const store = this.options.store;
    const shared = store.oldestFirstAttemptAt
      ? await store.oldestFirstAttemptAt()
      : (store.list ? await store.list() : []).reduce<number | undefined>(
          (oldest, job) => Math.min(oldest ?? Infinity, waitingSince(job)),
          undefined,
        );
    const kept = this.spill?.oldestFirstAttemptAt();
    return shared === undefined ? kept : kept === undefined ? shared : Math.min(shared, kept);
  }

  /** Whether the store outlives this process. */
  get durable(): boolean {
    return this.options.store.durable === true;
  }

  /**
   * Queues a job, waiting at most `timeoutMs` for the store (default: the background limit). A durable store
   * that does not answer in time leaves the job in this process's memory, logged, and moved to the store
   * once it answers; another store that does not answer in time resolves `'timeout'` (logged). Resolves
   * `'full'` when the store refused it or failed (logged here), `'closed'` after `close()`.
   */
  async enqueue(
    job: DeferredLogoutJob,
    timeoutMs = this.storeTimeoutMs,
  ): Promise<'queued' | 'full' | 'closed' | 'timeout'> {
    if (this.closed) return 'closed';
    let added: boolean;
    try {
      added = await this.call(() => this.options.store.add(job), timeoutMs);
      this.storeAnswered();
    } catch (error) {
      if (this.keepInMemory(job, error)) {
        this.counts.queued += 1;
        return 'queued';
      }
      const late = error instanceof DeadlineError;
      this.log.error(
        { err: errorFields(error), chargebeePortalLogout: { idHash: hashPortalSessionId(job.portalSessionId) } },
        late
          ? `${STORE} did not answer in time; this portal session stays remembered`
          : `${STORE} failed to add a job; the logout is lost`,
      );
      if (late) return 'timeout';
      added = false;
    }
    if (!added) {
      this.counts.lost += 1;
      const queued = await this.safeSize(this.options.store);
      this.log.error(
        { chargebeePortalLogout: { idHash: hashPortalSessionId(job.portalSessionId), queued, lost: this.counts.lost } },
        `deferred-logout queue full (${queued} queued); this portal session stays open`,
      );
      return 'full';
    }
    this.counts.queued += 1;
    this.wakeAt(job.notBefore);
    return 'queued';
  }

  /**
   * Chargebee answered 429 with `Retry-After`: the drain of `site` waits until `until` (ms since the epoch),
   * on every instance when the store shares pauses.
   */
  pauseSite(site: string | undefined, until: number): void {
    const key = site ?? '';
    this.limiter.pause(key, until, this.now());
    this.spill?.pauseSite(key, until);
    const pauseShared = this.options.store.pauseSite?.bind(this.options.store);
    if (!pauseShared) return;
    this.call(() => pauseShared(key, until)).catch((error: unknown) => this.storeFailed(error));
  }

  /**
   * Keeps a scheduled logout (due at `job.notBefore`, never tried), waiting at most `timeoutMs` for the
   * store. A durable store that does not answer leaves it in this process's memory, moved to the store once
   * it answers. Resolves `'full'` when the store refused it, `'failed'` when the store failed (both logged
   * here), `'closed'` after `close()`.
   */
  async schedule(
    job: DeferredLogoutJob,
    timeoutMs = this.storeTimeoutMs,
  ): Promise<'scheduled' | 'full' | 'failed' | 'closed'> {
    if (this.closed) return 'closed';
    const store = this.options.store;
    const idHash = hashPortalSessionId(job.portalSessionId);
    let kept: boolean;
    try {
      kept = await this.call(() => scheduleIn(store, job), timeoutMs);
      this.storeAnswered();
    } catch (error) {
      if (!this.keepInMemory(job, error)) {
        this.log.error(
          { err: errorFields(error), chargebeePortalLogout: { idHash } },
          `${STORE} failed to keep a scheduled logout; the portal session ends only when logged out`,
        );
        return 'failed';
      }
      kept = true;
    }
    if (!kept) {
      this.log.error(
        { chargebeePortalLogout: { idHash, reason: job.reason } },
        `${STORE} is full; a scheduled logout was not kept and the portal session ends only when logged out`,
      );
      return 'full';
    }
    this.counts.scheduled += 1;
    this.wakeAt(job.notBefore);
    return 'scheduled';
  }

  /**
   * Activity: moves the scheduled logouts of these portal sessions to `at` (see the store's `postpone`),
   * waiting at most `timeoutMs` for the store. Never rejects: a store failure is logged, and the scheduled
   * logouts stay where they were until the next activity moves them.
   */
  async postpone(portalSessionIds: readonly string[], at: number, timeoutMs = this.storeTimeoutMs): Promise<boolean> {
    this.spill?.postpone(portalSessionIds, at);
    const postpone = this.options.store.postpone?.bind(this.options.store);
    if (!postpone || this.now() < this.storeDownUntil) return false;
    try {
      await this.call(() => postpone(portalSessionIds, at), timeoutMs);
      this.storeAnswered();
      return true;
    } catch (error) {
      this.storeFailed(error);
      return false;
    }
  }

  /**
   * These portal sessions ended another way (a logout, a sign-out everywhere): their jobs go, unless one is
   * being tried. Waits at most `timeoutMs` for the store; never rejects (a failure is logged: such a job
   * later finds its portal session ended, and reports it `already_logged_out`).
   */
  async cancel(portalSessionIds: readonly string[], timeoutMs = this.storeTimeoutMs): Promise<void> {
    if (portalSessionIds.length === 0) return;
    this.spill?.cancel(portalSessionIds);
    const cancel = this.options.store.cancel?.bind(this.options.store);
    if (!cancel) return;
    try {
      await this.call(() => cancel(portalSessionIds), timeoutMs);
    } catch (error) {
      this.log.warn(
        { err: errorFields(error), chargebeePortalLogout: { portalSessions: portalSessionIds.length } },
        `${STORE} could not cancel the scheduled logouts of ended portal sessions; they find them ended when due`,
      );
    }
  }

  /**
   * Stops taking jobs, then drains: every waiting job is tried now (backoff and rate ignored, a 429's pause
   * kept) until the queue is empty or `timeoutMs` has passed. What is left is logged with its count and ID
   * hashes (at error level for a store that dies with the process). A durable store is not drained: its
   * jobs are handed over to the other instances; only those kept in memory are moved to it or drained.
   */
  close(timeoutMs: number): Promise<void> {
    this.closing ??= this.shutDown(timeoutMs);
    return this.closing;
  }

  /** Where a drain at shutdown takes its jobs: the store that dies with the process, or the memory fallback. */
  private get drainSource(): DeferredLogoutStore {
    return this.spill ?? this.options.store;
  }

  private async shutDown(timeoutMs: number): Promise<void> {
    this.closed = true;
    this.deadline = this.now() + timeoutMs;
    if (this.spill && this.spill.size() > 0) await this.moveToStore();
    const drain = !this.spill || this.spill.size() > 0;
    await new Promise<void>((resolve) => {
      // Not unref'd: an app awaiting close() must get the log line of what was left.
      const limit = after(this.deadline - this.now(), finish, true);
      function finish(): void {
        limit.cancel();
        resolve();
      }
      this.onIdle = finish;
      if (drain) {
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
    if (this.inFlight > 0)
      await settleWithin(() => new Promise<void>((resolve) => (this.noneInFlight = resolve)), deadlineIn(1000));
    this.noneInFlight = undefined;
    for (const job of this.drainRetries.splice(0)) await this.keep(job, this.drainSource);
    const notDue = this.notDueAtShutdown.splice(0);
    if (notDue.length > 0)
      this.log.warn(
        {
          chargebeePortalLogout: {
            scheduled: notDue.length,
            idHashes: notDue.slice(0, MAX_LOGGED_HASHES).map((j) => hashPortalSessionId(j.portalSessionId)),
          },
        },
        `${notDue.length} scheduled logouts not due yet end with this process's memory; those portal sessions stay open until logged out (a durable store keeps them)`,
      );
    const left = await this.leftovers(this.drainSource);
    if (left.count > 0) {
      this.counts.lost += left.count;
      this.log.error(
        { chargebeePortalLogout: { left: left.count, idHashes: left.idHashes } },
        `deferred-logout queue closed with ${left.count} logouts not drained; those portal sessions may stay open`,
      );
    }
    const shared = this.spill ? await this.leftovers(this.options.store) : { count: 0, idHashes: [] };
    if (shared.count > 0) {
      this.log.warn(
        { chargebeePortalLogout: { left: shared.count, idHashes: shared.idHashes } },
        `deferred-logout queue closed; ${shared.count} logouts left in the shared store for another instance (handed over)`,
      );
    } else if (left.count === 0) {
      this.log.info({ chargebeePortalLogout: { deferred: this.stats } }, 'deferred-logout queue closed, nothing left');
    }
  }

  private async leftovers(store: DeferredLogoutStore): Promise<{ count: number; idHashes: string[] }> {
    try {
      const timeoutMs = Math.min(this.storeTimeoutMs, 1000);
      const count = await this.call(() => store.size(), timeoutMs);
      const list = store.list?.bind(store);
      const jobs = count > 0 && list ? await this.call(() => list(MAX_LOGGED_HASHES), timeoutMs) : [];
      return {
        count,
        idHashes: jobs.slice(0, MAX_LOGGED_HASHES).map((j) => hashPortalSessionId(j.portalSessionId)),
      };
    } catch (error) {
      this.log.error({ err: errorFields(error) }, 'could not count the deferred logouts left at shutdown');
      return { count: 0, idHashes: [] };
    }
  }

  private clearTimer(): void {
    this.timer?.cancel();
    this.timer = undefined;
    this.timerAt = Infinity;
  }

  /**
   * Makes sure the queue wakes up by `at` (ms since the epoch). A time further than a timer holds wakes
   * it at the timer's limit, to look again.
   */
  private wakeAt(at: number): void {
    if (this.stopped) return;
    if (at >= this.timerAt) return;
    this.clearTimer();
    this.timerAt = at;
    this.timer = after(at - this.now(), () => {
      this.timer = undefined;
      this.timerAt = Infinity;
      this.pump();
    });
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
          this.storeFailed(error);
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
        (this.deadline - now < MIN_ATTEMPT_MS || this.limiter.latestPause() > this.deadline - MIN_ATTEMPT_MS)
      ) {
        // No time left for an attempt (or Chargebee asked to wait past it): the rest is for the shutdown count.
        this.onIdle?.();
        return;
      }
      const free = this.options.concurrency - this.inFlight;
      if (free <= 0) return;
      const taken = this.draining ? await this.takeWhileDraining(now, free) : await this.takeDue(now, free);
      if (taken.jobs.length === 0) {
        await this.scheduleNext(now, taken.nextAt);
        return;
      }
      for (const { job, source } of taken.jobs) this.start(job, source);
    }
  }

  /** Due jobs within the rate: from the store, or from memory while a durable store does not answer. */
  private async takeDue(now: number, free: number): Promise<{ jobs: Taken[]; nextAt?: number }> {
    if (this.pendingRemovals.size > 0 && now >= this.storeDownUntil) await this.removePending();
    if (this.spill && this.spill.size() > 0 && now >= this.storeDownUntil) await this.moveToStore();
    if (now >= this.storeDownUntil) {
      try {
        const taken = await this.takeFrom(this.options.store, now, free);
        this.storeAnswered();
        return taken;
      } catch (error) {
        if (!this.spill) throw error;
        this.storeFailed(error);
      }
    }
    if (!this.spill) return { jobs: [] };
    const fromMemory = await this.takeFrom(this.spill, now, free);
    return { jobs: fromMemory.jobs, nextAt: Math.min(fromMemory.nextAt ?? Infinity, this.storeDownUntil) };
  }

  private async takeFrom(
    source: DeferredLogoutStore,
    now: number,
    free: number,
  ): Promise<{ jobs: Taken[]; nextAt?: number }> {
    if (!source.limitsRate) return this.admit(source, now, free);
    const due = asDueJobs(await this.call(() => source.takeDue(now, free, this.rate ?? NO_RATE_LIMIT)));
    return { jobs: due.jobs.map((job) => ({ job, source })), nextAt: due.nextAt };
  }

  /** Takes due jobs from a store that does not limit the rate itself, within this process's rate. */
  private async admit(
    source: DeferredLogoutStore,
    now: number,
    free: number,
  ): Promise<{ jobs: Taken[]; nextAt?: number }> {
    const allowance = this.limiter.allowance(now);
    const limit = Math.min(free, allowance.requests);
    if (limit <= 0) return { jobs: [], nextAt: now + allowance.waitMs };
    const due = asDueJobs(await this.call(() => source.takeDue(now, limit)));
    const jobs: Taken[] = [];
    let nextAt = due.nextAt;
    for (const job of due.jobs) {
      const wait = this.limiter.take(job.site ?? '', now);
      if (wait === 0) {
        jobs.push({ job, source });
      } else {
        // That site has no request left (another site's had): back in line, not counted as an attempt.
        await this.keep({ ...job, notBefore: now + wait }, source);
        nextAt = Math.min(nextAt ?? Infinity, now + wait);
      }
    }
    return { jobs, nextAt };
  }

  private async takeWhileDraining(now: number, limit: number): Promise<{ jobs: Taken[]; nextAt?: number }> {
    const source = this.drainSource;
    const ready = this.drainRetries.filter((j) => j.notBefore <= now).slice(0, limit);
    this.drainRetries = this.drainRetries.filter((j) => !ready.includes(j));
    if (ready.length < limit)
      ready.push(...asDueJobs(await this.call(() => source.takeDue(Infinity, limit - ready.length))).jobs);
    const jobs: Taken[] = [];
    for (const job of ready) {
      if (isPendingSchedule(job) && job.notBefore > now) {
        // A scheduled logout is not a logout that is late: it is not made before it is due.
        this.notDueAtShutdown.push(job);
        await this.forget(job, source);
        continue;
      }
      // A 429's pause holds while draining; such a job waits for its end, or for the shutdown count.
      const pausedUntil = this.limiter.pausedUntil(job.site ?? '');
      if (pausedUntil > now) this.drainRetries.push({ ...job, notBefore: pausedUntil });
      else jobs.push({ job, source });
    }
    return { jobs };
  }

  private async scheduleNext(now: number, nextAt: number | undefined): Promise<void> {
    if (this.draining) {
      const next = Math.min(...this.drainRetries.map((j) => j.notBefore));
      if (Number.isFinite(next)) this.wakeAt(next);
      await this.checkIdle();
      return;
    }
    let next = nextAt;
    const { store } = this.options;
    if (next === undefined && now >= this.storeDownUntil) {
      try {
        const nextDueAt = store.nextDueAt?.bind(store);
        next = nextDueAt
          ? await this.call(() => nextDueAt())
          : (await this.call(() => store.size())) > this.inFlight
            ? now + POLL_INTERVAL_MS
            : undefined;
      } catch (error) {
        if (!this.spill) throw error;
        this.storeFailed(error);
      }
    }
    if (this.spill) {
      // Jobs kept in memory: due ones, and the move to the store once it answers; then other instances' jobs.
      const inMemory = this.spill.nextDueAt();
      if (inMemory !== undefined) next = Math.min(next ?? Infinity, inMemory);
      if (this.spill.size() > 0 || this.pendingRemovals.size > 0 || this.storeDown)
        next = Math.min(next ?? Infinity, this.storeDownUntil);
      next = Math.min(next ?? Infinity, now + SHARED_POLL_MS);
    }
    if (next !== undefined) this.wakeAt(Math.max(next, now + MIN_WAKE_MS));
  }

  private async checkIdle(): Promise<void> {
    if (!this.onIdle || this.inFlight > 0 || this.drainRetries.length > 0) return;
    if ((await this.safeSize(this.drainSource)) === 0) this.onIdle?.();
  }

  private start(job: DeferredLogoutJob, source: DeferredLogoutStore): void {
    this.inFlight += 1;
    this.run(job, source)
      .catch((error: unknown) => this.log.error({ err: errorFields(error) }, 'a deferred logout failed unexpectedly'))
      .finally(() => {
        this.inFlight -= 1;
        if (this.inFlight === 0) this.noneInFlight?.();
        this.pump();
      });
  }

  private async run(taken: DeferredLogoutJob, source: DeferredLogoutStore): Promise<void> {
    const now = this.now();
    const job = isPendingSchedule(taken) ? startSchedule(taken, now) : taken;
    if (now - job.firstAttemptAt >= this.options.maxAgeMs) {
      await this.forget(job, source);
      this.counts.expired += 1;
      this.options.givenUp(job, 'max_age', undefined);
      return;
    }
    const drainingThis = this.draining && source === this.drainSource;
    const leaseShare = source.leaseMs ? source.leaseMs / 2 : Infinity;
    const timeoutMs = Math.min(this.options.timeoutMs, this.deadline - now, leaseShare);
    if (timeoutMs < MIN_ATTEMPT_MS) {
      // Shutting down with no time left for an attempt: leave it for the shutdown count, or the other instances.
      if (drainingThis) this.drainRetries.push(job);
      else await this.keep(job, source);
      return;
    }
    const attempted = { ...job, attempts: job.attempts + 1 };
    const result = await this.options.attempt(attempted, timeoutMs);
    if (result === 'done') {
      await this.forget(job, source);
      this.counts.done += 1;
      return;
    }
    const after = this.now();
    const is429 = result.error instanceof ChargebeeApiError && result.error.status === 429;
    let delay = queueRetryDelay(result.retryAfterMs, attempted.attempts, this.options, this.random);
    // Chargebee's rate limit is per site: a 429 pauses every job of the site, not only this one.
    if (is429) this.pauseSite(job.site, after + delay);
    if (drainingThis && !is429) delay = Math.min(delay, DRAIN_MAX_DELAY_MS);
    const next: DeferredLogoutJob = {
      ...attempted,
      notBefore: after + delay,
      lastError: errorFields(result.error).message,
    };
    if (next.notBefore - next.firstAttemptAt >= this.options.maxAgeMs) {
      await this.forget(job, source);
      this.counts.expired += 1;
      this.options.givenUp(next, 'max_age', result.error);
      return;
    }
    if (drainingThis) {
      this.drainRetries.push(next);
      this.wakeAt(next.notBefore);
      return;
    }
    if (!(await this.keep(next, source))) {
      this.counts.lost += 1;
      this.options.givenUp(next, 'queue_full', result.error);
      return;
    }
    this.wakeAt(next.notBefore);
  }

  /**
   * Deletes a finished job where it waited. A store that does not answer hands the job out again later;
   * its next attempt finds the portal session ended (same idempotency key), so this is not worth a retry.
   */
  private async forget(job: DeferredLogoutJob, source: DeferredLogoutStore): Promise<void> {
    const { store } = this.options;
    try {
      await this.call(() => source.remove(job.portalSessionId, job.lease));
    } catch (error) {
      this.storeFailed(error);
    }
    if (source === store) return;
    // A job kept in memory may have a copy in the store (a write that timed out here but ran there, or a
    // job the store had handed over): the portal session is over, so that copy goes too, now or once the
    // store answers again.
    this.pendingRemovals.set(job.portalSessionId, job.lease);
    await this.removePending();
  }

  /** Removes from the store the copies of jobs that ended in memory, until the store fails. */
  private async removePending(): Promise<void> {
    const { store } = this.options;
    for (const [id, lease] of this.pendingRemovals) {
      try {
        await this.call(() => store.remove(id, lease));
        this.pendingRemovals.delete(id);
      } catch (error) {
        this.storeFailed(error);
        return;
      }
    }
  }

  /** Puts a job back in line; a durable store that does not answer leaves it in memory. */
  private async keep(job: DeferredLogoutJob, source: DeferredLogoutStore): Promise<boolean> {
    try {
      const kept = await this.call(() => source.add(job));
      if (source === this.options.store) this.storeAnswered();
      return kept;
    } catch (error) {
      if (source === this.options.store && this.keepInMemory(job, error)) return true;
      this.log.error({ err: errorFields(error) }, `${STORE} failed to keep a job`);
      return false;
    }
  }

  /** Keeps a job in memory when a durable store did not answer; `false` when there is no such fallback. */
  private keepInMemory(job: DeferredLogoutJob, error: unknown): boolean {
    if (!this.spill) return false;
    this.storeFailed(error);
    if (!scheduleIn(this.spill, job)) return false;
    this.log.warn(
      { chargebeePortalLogout: { idHash: hashPortalSessionId(job.portalSessionId), inMemory: this.spill.size() } },
      `${STORE} did not answer; the logout waits in this process's memory until it does`,
    );
    this.wakeAt(Math.min(job.notBefore, this.storeDownUntil));
    return true;
  }

  /** Moves the jobs kept in memory to the durable store, until it fails. */
  private async moveToStore(): Promise<void> {
    const spill = this.spill;
    if (!spill) return;
    let moved = 0;
    for (;;) {
      const [job] = spill.takeDue(Infinity, 1);
      if (!job) break;
      try {
        const timeoutMs = Math.min(this.storeTimeoutMs, Math.max(MIN_WAKE_MS, this.deadline - this.now()));
        const kept = await this.call(() => scheduleIn(this.options.store, job), timeoutMs);
        spill.remove(job.portalSessionId);
        moved += 1;
        if (!kept) {
          this.counts.lost += 1;
          this.options.givenUp(job, 'queue_full', undefined);
        }
      } catch (error) {
        spill.add(job);
        this.storeFailed(error);
        break;
      }
    }
    if (moved > 0) {
      this.storeAnswered();
      this.log.info(
        { chargebeePortalLogout: { moved, inMemory: spill.size() } },
        `${moved} deferred logouts moved from this process's memory to ${STORE}`,
      );
    }
  }

  private storeFailed(error: unknown): void {
    this.storeDownUntil = this.now() + STORE_RETRY_MS;
    if (this.storeDown) return;
    this.storeDown = true;
    this.log.error(
      { err: errorFields(error) },
      this.spill
        ? `${STORE} failed; new and retried logouts wait in this process's memory until it answers (retrying every second)`
        : `${STORE} failed; retrying in a second`,
    );
  }

  private storeAnswered(): void {
    if (!this.storeDown) return;
    this.storeDown = false;
    this.log.info({}, `${STORE} answers again`);
  }

  /** One call to a store, bounded by `timeoutMs`; a throw becomes a rejection. */
  private call<T>(fn: () => T | Promise<T>, timeoutMs = this.storeTimeoutMs): Promise<T> {
    return new Promise<T>((resolve) => resolve(within(fn(), deadlineIn(timeoutMs), STORE)));
  }

  private async safeSize(store: DeferredLogoutStore): Promise<number> {
    try {
      return await this.call(() => store.size(), Math.min(this.storeTimeoutMs, 1000));
    } catch {
      return -1;
    }
  }
}

/**
 * Keeps a job in a store: a scheduled logout not tried yet through `schedule`, so that it never replaces a
 * deferral under way; anything else through `add`.
 */
function scheduleIn<T extends DeferredLogoutStore>(store: T, job: DeferredLogoutJob): ReturnType<T['add']> {
  return (isPendingSchedule(job) && store.schedule ? store.schedule(job) : store.add(job)) as ReturnType<T['add']>;
}

/**
 * A scheduled logout taken for its first attempt: the queue's maximum age counts from now (not from when it
 * was scheduled), and one taken at or past its `latestAt` is made for the portal session's maximum age,
 * whatever activity did.
 */
function startSchedule(job: DeferredLogoutJob, now: number): DeferredLogoutJob {
  const reason = job.latestAt !== undefined && now >= job.latestAt ? 'portal_max_age' : job.reason;
  return { ...job, firstAttemptAt: now, reason };
}

function asDueJobs(due: DeferredLogoutJob[] | DueJobs): DueJobs {
  return Array.isArray(due) ? { jobs: due } : due;
}
