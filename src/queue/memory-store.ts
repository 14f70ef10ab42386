import { OptionCheck } from '../base/validate';
import { DueHeap, type DueNode } from './due-heap';
import {
  isPendingSchedule,
  scheduleLimit,
  waitingSince,
  type DeferredLogoutJob,
  type DeferredLogoutStore,
  type DueJobs,
} from './store';
import { SiteRateLimiter, type DrainRate } from '../reliability/rate-limit';
import { epochNow } from '../base/time';

/** Default most jobs of the in-memory store. */
export const DEFAULT_MAX_QUEUED = 10_000;

/** The default store: a bounded map in this process's memory. Jobs are lost if the process dies. */
export class MemoryDeferredLogoutStore implements DeferredLogoutStore {
  readonly durable = false;
  readonly limitsRate = true;
  private readonly jobs = new Map<string, MemoryEntry>();
  /**
   * The jobs not handed over, by due time. A node whose `seq` is no longer its job's (the job was replaced,
   * moved, removed or handed over) is stale, and dropped when met.
   */
  private readonly due = new DueHeap<MemoryNode>();
  private seq = 0;
  private readonly limiter = new SiteRateLimiter(undefined);

  /** @param maxQueued most jobs kept; `add` refuses new ones beyond it. Default 10 000. */
  constructor(readonly maxQueued: number = DEFAULT_MAX_QUEUED) {
    new OptionCheck('MemoryDeferredLogoutStore').whole(maxQueued, 'maxQueued', DEFAULT_MAX_QUEUED, 1, 100_000_000);
  }

  add(job: DeferredLogoutJob): boolean {
    if (!this.jobs.has(job.portalSessionId) && this.jobs.size >= this.maxQueued) return false;
    const entry: MemoryEntry = { job: copyJob(job), handedOver: false, seq: 0 };
    this.jobs.set(job.portalSessionId, entry);
    this.index(entry);
    return true;
  }

  /**
   * Due jobs, the earliest due first (in the order they were added when due at the same time). With `rate`,
   * only jobs whose site may make a request now (this process's token bucket per site, and pauses), one
   * request taken per job; a few more jobs than `limit` are looked at for another site's.
   */
  takeDue(now: number, limit: number): DeferredLogoutJob[];
  takeDue(now: number, limit: number, rate: DrainRate): DueJobs;
  takeDue(now: number, limit: number, rate?: DrainRate): DeferredLogoutJob[] | DueJobs {
    const due: DeferredLogoutJob[] = [];
    const heldBack: MemoryNode[] = [];
    let nextAt = Infinity;
    if (rate) this.limiter.rate = rate;
    while (due.length < limit && heldBack.length <= limit + EXTRA_LOOKS) {
      const node = this.firstLive();
      if (!node) break;
      if (node.at > now) {
        nextAt = Math.min(nextAt, node.at);
        break;
      }
      this.due.pop();
      const entry = this.jobs.get(node.id) as MemoryEntry;
      const wait = rate ? this.limiter.take(entry.job.site ?? '', now) : 0;
      if (wait > 0) {
        nextAt = Math.min(nextAt, now + wait);
        heldBack.push(node);
        continue;
      }
      entry.handedOver = true;
      due.push(copyJob(entry.job));
    }
    for (const node of heldBack) this.due.push(node);
    if (!rate) return due;
    return Number.isFinite(nextAt) ? { jobs: due, nextAt } : { jobs: due };
  }

  pauseSite(site: string, until: number): void {
    this.limiter.pause(site, until, epochNow());
  }

  schedule(job: DeferredLogoutJob): boolean {
    const existing = this.jobs.get(job.portalSessionId);
    // A deferral under way, or a scheduled logout being tried: the portal session's logout is in hand.
    if (existing && (existing.handedOver || !isPendingSchedule(existing.job))) return true;
    if (!existing && this.jobs.size >= scheduleLimit(this.maxQueued)) return false;
    return this.add(job);
  }

  postpone(portalSessionIds: readonly string[], at: number): void {
    for (const id of portalSessionIds) {
      const entry = this.jobs.get(id);
      if (!entry || entry.handedOver || !isPendingSchedule(entry.job)) continue;
      const target = Math.min(at, entry.job.latestAt ?? Infinity);
      if (target <= entry.job.notBefore) continue;
      entry.job.notBefore = target;
      this.index(entry);
    }
  }

  cancel(portalSessionIds: readonly string[]): void {
    for (const id of portalSessionIds) {
      if (this.jobs.get(id)?.handedOver === false) this.jobs.delete(id);
    }
  }

  remove(portalSessionId: string): void {
    this.jobs.delete(portalSessionId);
  }

  size(): number {
    return this.jobs.size;
  }

  nextDueAt(): number | undefined {
    return this.firstLive()?.at;
  }

  list(limit = Infinity): DeferredLogoutJob[] {
    const jobs: DeferredLogoutJob[] = [];
    for (const entry of this.jobs.values()) {
      if (jobs.length >= limit) break;
      jobs.push(copyJob(entry.job));
    }
    return jobs;
  }

  oldestFirstAttemptAt(): number | undefined {
    let oldest: number | undefined;
    for (const { job } of this.jobs.values()) {
      const since = waitingSince(job);
      if (oldest === undefined || since < oldest) oldest = since;
    }
    return oldest;
  }

  /** Puts a job in line at its `notBefore`; its earlier node, if any, goes stale. */
  private index(entry: MemoryEntry): void {
    entry.seq = ++this.seq;
    this.due.push({ at: entry.job.notBefore, seq: entry.seq, id: entry.job.portalSessionId });
    // Stale nodes are dropped when met at the top; rebuilt when they outnumber the jobs.
    if (this.due.size > 2 * this.jobs.size + 64) {
      const live: MemoryNode[] = [];
      for (const e of this.jobs.values())
        if (!e.handedOver) live.push({ at: e.job.notBefore, seq: e.seq, id: e.job.portalSessionId });
      this.due.rebuild(live);
    }
  }

  /** The earliest node of a job that is kept and not handed over; stale ones on the way are dropped. */
  private firstLive(): MemoryNode | undefined {
    for (;;) {
      const node = this.due.peek();
      if (!node) return undefined;
      const entry = this.jobs.get(node.id);
      if (entry && !entry.handedOver && entry.seq === node.seq) return node;
      this.due.pop();
    }
  }
}

interface MemoryEntry {
  job: DeferredLogoutJob;
  /** Handed over by `takeDue`: out of line until `add` puts it back or `remove` deletes it. */
  handedOver: boolean;
  /** The `seq` of its live node in the due index. */
  seq: number;
}

interface MemoryNode extends DueNode {
  id: string;
}

/** Due jobs the in-memory store looks at beyond `limit` while their site has no request left. */
const EXTRA_LOOKS = 20;

function copyJob(job: DeferredLogoutJob): DeferredLogoutJob {
  return { ...job, headers: { ...job.headers } };
}
