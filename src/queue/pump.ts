import { ChargebeeApiError } from '../base/errors';
import { errorFields, type Log } from '../base/logging';
import { after, epochNow, type Timer } from '../base/time';
import { NO_RATE_LIMIT, type DrainRate } from '../reliability/rate-limit';
import { MIN_ATTEMPT_MS, queueRetryDelay } from '../reliability/retry';
import type { Source, StoreLink } from './spill';
import { isPendingSchedule, type DeferredLogoutJob, type DueJobs } from './store';

/**
 * The queue's pump: one timer (unref'd, so it never keeps the process alive) wakes it when the next job is
 * due; it takes due jobs from the store (or the spill while a shared store does not answer) and runs at
 * most `concurrency` attempts at once. The store applies the drain rate; a 429 pauses the site there.
 */

/** What one background attempt came to: over (the hook reported it), or a failure worth retrying. */
export type JobAttemptResult = 'done' | { error: unknown; retryAfterMs?: number };

export interface PumpOptions {
  /** Attempts under way at once. */
  concurrency: number;
  /** A job older than this (since its first attempt) is given up. */
  maxAgeMs: number;
  /** Backoff between background attempts: half to all of `baseDelayMs` doubling per attempt, up to `maxDelayMs`. */
  baseDelayMs: number;
  maxDelayMs: number;
  /** Longest time one attempt may take. */
  timeoutMs: number;
  /** Background requests per site, applied by the store. */
  rate: DrainRate;
  /** Makes one attempt; reports a final result itself and resolves `'done'`, or resolves the retryable failure. */
  attempt: (job: DeferredLogoutJob, timeoutMs: number) => Promise<JobAttemptResult>;
  /** Reports a job given up without a final answer: maximum age, or a store that refused it back (full). */
  givenUp: (job: DeferredLogoutJob, reason: 'max_age' | 'queue_full', lastError: unknown) => void;
  /** Told of each retryable failure and each final answer of a site, for the recovery of its backlog. */
  siteFailed: (site: string) => void;
  siteAnswered: (site: string, job: DeferredLogoutJob) => void;
  /** Chargebee asked to wait (429): the site's drain pauses until then. */
  pauseSite: (site: string, until: number) => void;
  counts: { done: number; expired: number; lost: number };
  log: Log;
  random: () => number;
}

/** A shared store is looked at this often at least, for the jobs of other instances and instances that stopped. */
const SHARED_POLL_MS = 5000;
/** After a store failure, the pump looks again after this long. */
const POLL_INTERVAL_MS = 1000;
/** Shortest sleep when nothing could be taken, so that a store that keeps answering "due" cannot spin the queue. */
const MIN_WAKE_MS = 5;
/** Longest wait between attempts of one job while draining at shutdown. */
const DRAIN_MAX_DELAY_MS = 200;

export class Pump {
  private timer: Timer | undefined;
  private timerAt = Infinity;
  private pumping = false;
  private again = false;
  private inFlightCount = 0;
  /** Set by a drain at shutdown: rate ignored, short backoffs, until `deadline`. */
  private draining = false;
  private deadline = Infinity;
  private stopped = false;
  /** Told when the pump has nothing left to do before the deadline (a drain), or nothing in flight. */
  private idle: (() => void) | undefined;

  constructor(
    private readonly link: StoreLink,
    private readonly options: PumpOptions,
  ) {}

  get inFlight(): number {
    return this.inFlightCount;
  }

  /** Makes sure the pump runs by `at` (on the epoch clock). */
  wakeAt(at: number): void {
    if (this.stopped || at >= this.timerAt) return;
    this.timer?.cancel();
    this.timerAt = at;
    this.timer = after(at - epochNow(), () => {
      this.timer = undefined;
      this.timerAt = Infinity;
      this.pump();
    });
  }

  /**
   * Drains until `deadline` (epoch): every due job is tried, the rate ignored (a 429's pause kept), and a
   * failed one again within {@link DRAIN_MAX_DELAY_MS}. Resolves when nothing is left to try before the
   * deadline and no attempt is under way, or at the deadline.
   */
  drain(deadline: number): Promise<void> {
    this.draining = true;
    this.deadline = deadline;
    return this.until(deadline);
  }

  /** Takes no more jobs; resolves once the attempts under way are over, or at `deadline`. */
  stop(deadline: number): Promise<void> {
    this.stopped = true;
    this.timer?.cancel();
    this.timer = undefined;
    this.timerAt = Infinity;
    return this.inFlightCount === 0 ? Promise.resolve() : this.until(deadline);
  }

  /** Gives each attempt at most the time left until `deadline`. */
  limitTo(deadline: number): void {
    this.deadline = deadline;
  }

  private until(deadline: number): Promise<void> {
    return new Promise<void>((resolve) => {
      // Not unref'd: an app awaiting close() must get the log line of what was left.
      const limit = after(deadline - epochNow(), finish, true);
      const done = (): void => {
        limit.cancel();
        this.idle = undefined;
        resolve();
      };
      function finish(): void {
        done();
      }
      this.idle = done;
      this.pump();
    });
  }

  pump(): void {
    if (this.pumping) {
      this.again = true;
      return;
    }
    this.pumping = true;
    this.fill()
      .catch((error: unknown) => {
        this.link.failed(error);
        this.wakeAt(epochNow() + POLL_INTERVAL_MS);
      })
      .finally(() => {
        this.pumping = false;
        if (this.again) {
          this.again = false;
          this.pump();
        }
      });
  }

  /** Starts due jobs up to the concurrency, then sets the timer for the next one. */
  private async fill(): Promise<void> {
    for (;;) {
      this.again = false;
      if (this.stopped) {
        if (this.inFlightCount === 0) this.idle?.();
        return;
      }
      const now = epochNow();
      if (this.draining && this.deadline - now < MIN_ATTEMPT_MS) {
        // No time left for an attempt: the rest is for the shutdown count.
        this.idle?.();
        return;
      }
      const free = this.options.concurrency - this.inFlightCount;
      if (free <= 0) return;
      const taken = await this.take(free);
      for (const { job, source } of taken.jobs) this.start(job, source);
      if (taken.jobs.length === 0) {
        this.scheduleNext(now, taken.nextAt);
        return;
      }
    }
  }

  /** Due jobs from the store, or from the spill while a durable store does not answer. */
  private async take(
    free: number,
  ): Promise<{ jobs: Array<{ job: DeferredLogoutJob; source: Source }>; nextAt?: number }> {
    const { link } = this;
    const rate = this.draining ? NO_RATE_LIMIT : this.options.rate;
    if (link.reachable && !(this.draining && link.spill)) {
      if (link.spill && link.waitingForStore) {
        await link.removePending();
        await link.moveToStore((job) => this.lost(job, undefined));
      }
      try {
        const due = await link.call(() => link.store.takeDue(free, rate));
        link.answered();
        return fromSource(due, link.store);
      } catch (error) {
        if (!link.spill) throw error;
        link.failed(error);
      }
    }
    if (!link.spill) return { jobs: [] };
    const due = fromSource(link.spill.takeDue(free, rate), link.spill);
    return { jobs: due.jobs, nextAt: Math.min(due.nextAt ?? Infinity, link.retryAt) };
  }

  private scheduleNext(now: number, nextAt: number | undefined): void {
    let next = nextAt ?? Infinity;
    if (this.draining) {
      if (next > this.deadline - MIN_ATTEMPT_MS && this.inFlightCount === 0) this.idle?.();
      else if (Number.isFinite(next)) this.wakeAt(Math.max(next, now + MIN_WAKE_MS));
      return;
    }
    if (this.link.spill) {
      // A shared store: what kept in memory waits for it; other instances' jobs are looked for now and then.
      if (this.link.waitingForStore) next = Math.min(next, this.link.retryAt);
      next = Math.min(next, now + SHARED_POLL_MS);
    }
    if (Number.isFinite(next)) this.wakeAt(Math.max(next, now + MIN_WAKE_MS));
  }

  private start(job: DeferredLogoutJob, source: Source): void {
    this.inFlightCount += 1;
    this.run(job, source)
      .catch((error: unknown) =>
        this.options.log.error({ err: errorFields(error) }, 'a deferred logout failed unexpectedly'),
      )
      .finally(() => {
        this.inFlightCount -= 1;
        if (this.stopped && this.inFlightCount === 0) this.idle?.();
        this.pump();
      });
  }

  private async run(taken: DeferredLogoutJob, source: Source): Promise<void> {
    const { options, link } = this;
    const now = epochNow();
    const job = isPendingSchedule(taken) ? startSchedule(taken, now) : taken;
    if (now - job.firstAttemptAt >= options.maxAgeMs) return this.expire(job, source, undefined);
    const leaseShare = source.leaseMs ? source.leaseMs / 2 : Infinity;
    const timeoutMs = Math.min(options.timeoutMs, this.deadline - now, leaseShare);
    if (timeoutMs < MIN_ATTEMPT_MS) {
      // Shutting down with no time left for an attempt: back where it was, for the count or the other instances.
      await link.putBack(job, source);
      return;
    }
    const attempted = { ...job, attempts: job.attempts + 1 };
    const result = await options.attempt(attempted, timeoutMs);
    const site = job.site ?? '';
    if (result === 'done') {
      options.counts.done += 1;
      options.siteAnswered(site, attempted);
      await link.ended(job, source);
      return;
    }
    options.siteFailed(site);
    const failedAt = epochNow();
    const is429 = result.error instanceof ChargebeeApiError && result.error.status === 429;
    let delay = queueRetryDelay(result.retryAfterMs, attempted.attempts, options, options.random);
    // Chargebee's rate limit is per site: a 429 pauses every job of the site, not only this one.
    if (is429) options.pauseSite(site, failedAt + delay);
    if (this.draining && !is429) delay = Math.min(delay, DRAIN_MAX_DELAY_MS);
    const next: DeferredLogoutJob = {
      ...attempted,
      notBefore: failedAt + delay,
      lastError: errorFields(result.error).message,
    };
    if (next.notBefore - next.firstAttemptAt >= options.maxAgeMs) return this.expire(next, source, result.error);
    if (!(await link.putBack(next, source))) {
      this.lost(next, result.error);
      return;
    }
    this.wakeAt(next.notBefore);
  }

  private async expire(job: DeferredLogoutJob, source: Source, lastError: unknown): Promise<void> {
    // A new deferral renewed the job meanwhile: it goes on, nothing is given up.
    if (!(await this.link.givenUp(job, source))) return this.wakeAt(epochNow());
    this.options.counts.expired += 1;
    this.options.givenUp(job, 'max_age', lastError);
  }

  private lost(job: DeferredLogoutJob, lastError: unknown): void {
    this.options.counts.lost += 1;
    this.options.givenUp(job, 'queue_full', lastError);
  }
}

function fromSource(
  due: DueJobs,
  source: Source,
): { jobs: Array<{ job: DeferredLogoutJob; source: Source }>; nextAt?: number } {
  return { jobs: due.jobs.map((job) => ({ job, source })), nextAt: due.nextAt };
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
