import type { Logger } from 'pino';
import { hashPortalSessionId } from '../base/identifiers';
import { errorFields, safeLog, type Log } from '../base/logging';
import { DeadlineError, epochNow } from '../base/time';
import { drainRate } from '../reliability/rate-limit';
import { Pump, type JobAttemptResult } from './pump';
import { SiteRecovery } from './recovery';
import { shutDown } from './shutdown';
import { DEFAULT_STORE_TIMEOUT_MS, keepIn, STORE, StoreLink } from './spill';
import { waitingSince, type DeferredLogoutJob, type DeferredLogoutStore } from './store';

/*
 * Deferred logouts: when a logout could not reach Chargebee within the request's budget, it is queued and
 * retried in the background until Chargebee ends the portal session, refuses for good, or the job reaches
 * its maximum age; scheduled logouts (the expiry option) wait here until they are due. This file is the
 * queue's face; pump.ts runs the jobs, spill.ts stands in for a shared store that does not answer,
 * recovery.ts brings a backlog back when Chargebee answers again, shutdown.ts drains at close().
 */

export type { JobAttemptResult } from './pump';

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
   * Background requests per minute per Chargebee site, applied by the store: in this process, or for every
   * instance together with a shared store. `undefined`: no limit (a 429's pause still holds).
   */
  ratePerMinute?: number;
  /** Longest wait for one call to the store in the background. Default 2000 ms. */
  storeTimeoutMs?: number;
  /** Makes one attempt; reports a final result itself and resolves `'done'`, or resolves the retryable failure. */
  attempt: (job: DeferredLogoutJob, timeoutMs: number) => Promise<JobAttemptResult>;
  /** Reports a job given up without a final answer: maximum age, full store, or not drained at shutdown. */
  givenUp: (job: DeferredLogoutJob, reason: 'max_age' | 'queue_full', lastError: unknown) => void;
  log: Logger;
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
  /**
   * Jobs kept in this process's memory because the shared store did not answer; moved there once it does.
   * One whose attempt is under way counts in `inFlight` too.
   */
  inMemory: number;
  /** Scheduled logouts accepted since start (maximum portal-session age, idle expiry). */
  scheduled: number;
}

/**
 * A deferral waits for the store for the time left in the request's budget, and at least this long (a
 * shared store on the network needs a round trip); past that the job waits in memory for the store.
 */
export const MIN_DEFERRAL_WAIT_MS = 20;

/** Jobs a store without `figures()` lists to find the oldest: a store of the app's, small or slow to count. */
const LISTED_FOR_AGE = 1000;

/** The figures of a store without `figures()`: its size, and the oldest of the jobs it lists. */
async function figuresOf(
  store: DeferredLogoutStore,
): Promise<{ jobs: number; oldestWaitingSince: number | undefined }> {
  const jobs = await store.size();
  const listed = jobs > 0 && store.list ? await store.list(LISTED_FOR_AGE) : [];
  const since = listed.map(waitingSince);
  return { jobs, oldestWaitingSince: since.length ? Math.min(...since) : undefined };
}

export class DeferredLogoutQueue {
  private readonly log: Log;
  private readonly link: StoreLink;
  private readonly pump: Pump;
  private readonly recovery: SiteRecovery;
  private readonly counts = { queued: 0, done: 0, expired: 0, lost: 0, scheduled: 0 };
  /** The sites of the jobs this process queued: a drain at shutdown wakes their backlogs. */
  private readonly sites = new Set<string>();
  private closed = false;
  private closing: Promise<void> | undefined;

  constructor(private readonly options: DeferredQueueOptions) {
    // The options' logger, with the package's prefix; a logger that throws loses lines, not jobs.
    this.log = safeLog(options.log);
    const { store } = options;
    this.link = new StoreLink(store, this.log, options.storeTimeoutMs ?? DEFAULT_STORE_TIMEOUT_MS);
    this.recovery = new SiteRecovery(this.link, (at) => this.pump.wakeAt(at), this.log);
    this.pump = new Pump(this.link, {
      concurrency: options.concurrency,
      maxAgeMs: options.maxAgeMs,
      baseDelayMs: options.baseDelayMs,
      maxDelayMs: options.maxDelayMs,
      timeoutMs: options.timeoutMs,
      rate: drainRate(options.ratePerMinute),
      attempt: options.attempt,
      givenUp: options.givenUp,
      siteFailed: (site) => this.recovery.failed(site),
      siteAnswered: (site, job) => this.recovery.answered(site, job.attempts > 1),
      pauseSite: (site, until) => this.pauseSite(site, until),
      counts: this.counts,
      log: this.log,
      random: options.random ?? Math.random,
    });
    try {
      store.attach?.({ maxAgeMs: options.maxAgeMs, log: options.log });
    } catch (error) {
      this.log.error({ err: errorFields(error) }, `${STORE} failed to attach`);
    }
    // A shared store may hold the jobs of instances that stopped: look at once, then now and then.
    if (store.durable) this.pump.wakeAt(epochNow());
  }

  get stats(): DeferredQueueStats {
    return { ...this.counts, inFlight: this.pump.inFlight, inMemory: this.link.inMemory };
  }

  /** Whether the store outlives this process. */
  get durable(): boolean {
    return this.options.store.durable === true;
  }

  /** Jobs in the store, handed-over ones included, and those kept in memory while it does not answer. */
  async size(): Promise<number> {
    return (await this.figures()).jobs;
  }

  /** The store's figures (from its indexes) with the jobs kept in memory added. */
  async figures(): Promise<{ jobs: number; oldestWaitingSince: number | undefined }> {
    const { store } = this.options;
    const shared = store.figures ? await store.figures() : await figuresOf(store);
    const kept = this.link.spill?.figures();
    if (!kept) return shared;
    const ages = [shared.oldestWaitingSince, kept.oldestWaitingSince].filter((a): a is number => a !== undefined);
    return {
      jobs: shared.jobs + kept.jobs,
      oldestWaitingSince: ages.length ? Math.min(...ages) : undefined,
    };
  }

  /**
   * Queues a job, waiting at most `timeoutMs` for the store. A durable store that does not answer in time
   * leaves the job in this process's memory, logged, and moved to the store once it answers; another store
   * that does not answer in time resolves `'timeout'` (logged). Resolves `'full'` when the store refused it
   * or failed (logged here), `'closed'` after `close()`.
   */
  async enqueue(
    job: DeferredLogoutJob,
    timeoutMs = this.link.timeoutMs,
  ): Promise<'queued' | 'full' | 'closed' | 'timeout'> {
    if (this.closed) return 'closed';
    const site = job.site ?? '';
    this.sites.add(site);
    // The inline logout failed: this site's backlog waits for it to answer again.
    this.recovery.failed(site);
    let added: boolean;
    try {
      added = await this.link.call(() => this.options.store.add(job), timeoutMs);
      this.link.answered();
    } catch (error) {
      if (this.link.keepInMemory(job, error)) {
        this.counts.queued += 1;
        this.pump.wakeAt(Math.min(job.notBefore, this.link.retryAt));
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
      const queued = await this.link.size(this.options.store);
      this.log.error(
        { chargebeePortalLogout: { idHash: hashPortalSessionId(job.portalSessionId), queued, lost: this.counts.lost } },
        `deferred-logout queue full (${queued} queued); this portal session stays open`,
      );
      return 'full';
    }
    this.counts.queued += 1;
    this.pump.wakeAt(job.notBefore);
    return 'queued';
  }

  /**
   * Chargebee answered 429 with `Retry-After`: the drain of `site` waits until `until` (ms since the epoch),
   * on every instance when the store is shared.
   */
  pauseSite(site: string | undefined, until: number): void {
    const key = site ?? '';
    this.link.spill?.pauseSite(key, until);
    const { store } = this.options;
    this.link.call(() => store.pauseSite(key, until)).catch((error: unknown) => this.link.failed(error));
  }

  /** An inline logout of `site` got an answer: a backlog that waited for the site to recover goes now. */
  siteAnswered(site: string | undefined): void {
    this.recovery.answered(site ?? '', false);
  }

  /**
   * Keeps a scheduled logout (due at `job.notBefore`, never tried), waiting at most `timeoutMs` for the
   * store. A durable store that does not answer leaves it in this process's memory, moved to the store once
   * it answers. Resolves `'full'` when the store refused it, `'failed'` when the store failed (both logged
   * here), `'closed'` after `close()`.
   */
  async schedule(
    job: DeferredLogoutJob,
    timeoutMs = this.link.timeoutMs,
  ): Promise<'scheduled' | 'full' | 'failed' | 'closed'> {
    if (this.closed) return 'closed';
    const idHash = hashPortalSessionId(job.portalSessionId);
    this.sites.add(job.site ?? '');
    let kept: boolean;
    try {
      kept = await this.link.call(() => keepIn(this.options.store, job), timeoutMs);
      this.link.answered();
    } catch (error) {
      if (!this.link.keepInMemory(job, error)) {
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
    this.pump.wakeAt(Math.min(job.notBefore, this.link.waitingForStore ? this.link.retryAt : Infinity));
    return 'scheduled';
  }

  /**
   * Activity: moves the scheduled logouts of these portal sessions to `at` (see the store's `postpone`),
   * waiting at most `timeoutMs` for the store. Never rejects: a store failure is logged, and the scheduled
   * logouts stay where they were until the next activity moves them.
   */
  async postpone(portalSessionIds: readonly string[], at: number, timeoutMs = this.link.timeoutMs): Promise<boolean> {
    this.link.spill?.postpone(portalSessionIds, at);
    const postpone = this.options.store.postpone?.bind(this.options.store);
    if (!postpone || !this.link.reachable) return false;
    try {
      await this.link.call(() => postpone(portalSessionIds, at), timeoutMs);
      this.link.answered();
      return true;
    } catch (error) {
      this.link.failed(error);
      return false;
    }
  }

  /**
   * These portal sessions ended another way (a logout, a sign-out everywhere): their jobs go, unless one is
   * being tried. Waits at most `timeoutMs` for the store; never rejects (a failure is logged: such a job
   * later finds its portal session ended, and reports it `already_logged_out`).
   */
  async cancel(portalSessionIds: readonly string[], timeoutMs = this.link.timeoutMs): Promise<void> {
    if (portalSessionIds.length === 0) return;
    this.link.spill?.cancel(portalSessionIds);
    const cancel = this.options.store.cancel?.bind(this.options.store);
    if (!cancel) return;
    try {
      await this.link.call(() => cancel(portalSessionIds), timeoutMs);
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

  private async shutDown(timeoutMs: number): Promise<void> {
    this.closed = true;
    this.recovery.stop();
    await shutDown(
      {
        link: this.link,
        pump: this.pump,
        sites: this.sites,
        counts: this.counts,
        log: this.log,
        stats: () => this.stats,
      },
      (job) => {
        this.counts.lost += 1;
        this.options.givenUp(job, 'queue_full', undefined);
      },
      timeoutMs,
    );
  }
}
