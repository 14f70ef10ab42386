import { epochNow } from '../base/time';
import { OptionCheck } from '../base/validate';
import { SiteRateLimiter, type DrainRate } from '../reliability/rate-limit';
import { DueHeap, type DueNode } from './due-heap';
import {
  isPendingSchedule,
  scheduleLimit,
  waitingSince,
  type DeferredLogoutJob,
  type DeferredLogoutStore,
  type DueJobs,
  type StoreFigures,
} from './store';

/** Default most jobs of the in-memory store. */
export const DEFAULT_MAX_QUEUED = 10_000;

/**
 * The default store: a bounded map in this process's memory, the jobs of each Chargebee site in a heap by
 * due time, and the drain rate's buckets. Jobs are lost if the process dies. Every method takes the time
 * last (default: now), so that its rules are tested without waiting.
 */
export class MemoryDeferredLogoutStore implements DeferredLogoutStore {
  readonly durable = false;
  private readonly jobs = new Map<string, MemoryEntry>();
  /**
   * Per site, the jobs not handed over by due time. A node whose `seq` is no longer its job's (the job was
   * replaced, moved, removed or handed over) is stale, and dropped when met.
   */
  private readonly due = new Map<string, DueHeap<MemoryNode>>();
  private seq = 0;
  private leases = 0;
  private readonly limiter = new SiteRateLimiter();

  /** @param maxQueued most jobs kept; `add` refuses new ones beyond it. Default 10 000. */
  constructor(readonly maxQueued: number = DEFAULT_MAX_QUEUED) {
    new OptionCheck('MemoryDeferredLogoutStore').whole(maxQueued, 'maxQueued', DEFAULT_MAX_QUEUED, 1, 100_000_000);
  }

  add(job: DeferredLogoutJob): boolean {
    const entry = this.jobs.get(job.portalSessionId);
    if (job.lease !== undefined) {
      // A put-back: only while the taker's lease is still the job's.
      if (!entry?.lease || entry.lease !== job.lease) return true;
      const next = copyJob(job);
      if (entry.renewedAt !== undefined) next.firstAttemptAt = Math.max(next.firstAttemptAt, entry.renewedAt);
      this.set(next);
      return true;
    }
    if (!entry) {
      if (this.jobs.size >= this.maxQueued) return false;
      this.set(copyJob(job));
      return true;
    }
    if (entry.lease !== undefined) {
      entry.renewedAt = Math.max(entry.renewedAt ?? 0, job.firstAttemptAt);
      return true;
    }
    if (isPendingSchedule(entry.job)) {
      this.set(copyJob(job));
      return true;
    }
    // A deferral waiting already: the newest deferral's maximum age counts.
    entry.job.firstAttemptAt = Math.max(entry.job.firstAttemptAt, job.firstAttemptAt);
    return true;
  }

  /**
   * Due jobs, earliest due first across the sites that may make a request now; the jobs of a site held
   * back by its rate or a pause wait without holding back another site's.
   */
  takeDue(limit: number, rate: DrainRate, now = epochNow()): DueJobs {
    this.limiter.use(rate);
    const jobs: DeferredLogoutJob[] = [];
    let nextAt = Infinity;
    while (jobs.length < limit) {
      let best: { site: string; node: MemoryNode } | undefined;
      nextAt = Infinity;
      for (const [site, heap] of this.due) {
        const node = this.firstLive(heap);
        if (!node) {
          this.due.delete(site);
          continue;
        }
        if (node.at > now) {
          nextAt = Math.min(nextAt, node.at);
          continue;
        }
        const wait = this.limiter.wait(site, now);
        if (wait > 0) {
          nextAt = Math.min(nextAt, now + wait);
          continue;
        }
        if (!best || node.at < best.node.at || (node.at === best.node.at && node.seq < best.node.seq))
          best = { site, node };
      }
      if (!best) break;
      (this.due.get(best.site) as DueHeap<MemoryNode>).pop();
      this.limiter.take(best.site, now);
      const entry = this.jobs.get(best.node.id) as MemoryEntry;
      entry.lease = `memory-${++this.leases}`;
      entry.seq = ++this.seq;
      jobs.push({ ...copyJob(entry.job), lease: entry.lease });
    }
    if (jobs.length === limit) nextAt = now;
    return Number.isFinite(nextAt) ? { jobs, nextAt } : { jobs };
  }

  remove(portalSessionId: string): void {
    this.jobs.delete(portalSessionId);
  }

  giveUp(portalSessionId: string, lease: string | undefined, now = epochNow()): boolean {
    const entry = this.jobs.get(portalSessionId);
    if (!entry?.lease || entry.lease !== lease) return false;
    if (entry.renewedAt === undefined) {
      this.jobs.delete(portalSessionId);
      return true;
    }
    this.set({ ...entry.job, firstAttemptAt: entry.renewedAt, notBefore: now });
    return false;
  }

  pauseSite(site: string, until: number, now = epochNow()): void {
    this.limiter.pause(site, until, now);
  }

  wakeSite(site: string, count = Infinity, now = epochNow()): number {
    const waiting: MemoryEntry[] = [];
    for (const entry of this.jobs.values()) {
      const { job } = entry;
      if ((job.site ?? '') === site && entry.lease === undefined && job.notBefore > now && !isPendingSchedule(job))
        waiting.push(entry);
    }
    waiting.sort((a, b) => a.job.notBefore - b.job.notBefore);
    const woken = waiting.slice(0, count);
    for (const entry of woken) {
      entry.job.notBefore = now;
      this.index(entry);
    }
    return woken.length;
  }

  schedule(job: DeferredLogoutJob): boolean {
    const existing = this.jobs.get(job.portalSessionId);
    // A deferral under way, or a scheduled logout being tried: the portal session's logout is in hand.
    if (existing && (existing.lease !== undefined || !isPendingSchedule(existing.job))) return true;
    if (!existing && this.jobs.size >= scheduleLimit(this.maxQueued)) return false;
    this.set(copyJob(job));
    return true;
  }

  postpone(portalSessionIds: readonly string[], at: number): void {
    for (const id of portalSessionIds) {
      const entry = this.jobs.get(id);
      if (!entry || entry.lease !== undefined || !isPendingSchedule(entry.job)) continue;
      const target = Math.min(at, entry.job.latestAt ?? Infinity);
      if (target <= entry.job.notBefore) continue;
      entry.job.notBefore = target;
      this.index(entry);
    }
  }

  cancel(portalSessionIds: readonly string[]): void {
    for (const id of portalSessionIds) {
      if (this.jobs.get(id)?.lease === undefined) this.jobs.delete(id);
    }
  }

  size(): number {
    return this.jobs.size;
  }

  figures(): StoreFigures {
    let oldest: number | undefined;
    for (const { job } of this.jobs.values()) {
      const since = waitingSince(job);
      if (oldest === undefined || since < oldest) oldest = since;
    }
    return { jobs: this.jobs.size, oldestWaitingSince: oldest };
  }

  list(limit = Infinity): DeferredLogoutJob[] {
    const jobs: DeferredLogoutJob[] = [];
    for (const entry of this.jobs.values()) {
      if (jobs.length >= limit) break;
      jobs.push(copyJob(entry.job));
    }
    return jobs;
  }

  /** The sites of the jobs kept (the queue wakes them all for a drain at shutdown). */
  sites(): Set<string> {
    return new Set([...this.jobs.values()].map((e) => e.job.site ?? ''));
  }

  /**
   * Takes out up to `limit` jobs not handed over, whatever their due time: the queue moves the jobs it kept
   * here while a shared store did not answer into that store.
   */
  drain(limit: number): DeferredLogoutJob[] {
    const out: DeferredLogoutJob[] = [];
    for (const [id, entry] of this.jobs) {
      if (out.length >= limit) break;
      if (entry.lease !== undefined) continue;
      this.jobs.delete(id);
      out.push(copyJob(entry.job));
    }
    return out;
  }

  /** Keeps `job` (not handed over) in line at its `notBefore`. */
  private set(job: DeferredLogoutJob): void {
    delete job.lease;
    const entry: MemoryEntry = { job, seq: 0 };
    this.jobs.set(job.portalSessionId, entry);
    this.index(entry);
  }

  /** Puts a job in its site's line at its `notBefore`; its earlier node, if any, goes stale. */
  private index(entry: MemoryEntry): void {
    entry.seq = ++this.seq;
    const site = entry.job.site ?? '';
    let heap = this.due.get(site);
    if (!heap) {
      heap = new DueHeap<MemoryNode>();
      this.due.set(site, heap);
    }
    heap.push({ at: entry.job.notBefore, seq: entry.seq, id: entry.job.portalSessionId });
    // Stale nodes are dropped when met at the top; the heap is rebuilt when they outnumber the jobs.
    if (heap.size > 2 * this.jobs.size + 64) {
      const live: MemoryNode[] = [];
      for (const e of this.jobs.values())
        if (e.lease === undefined && (e.job.site ?? '') === site)
          live.push({ at: e.job.notBefore, seq: e.seq, id: e.job.portalSessionId });
      heap.rebuild(live);
    }
  }

  /** The earliest node of a job that is kept and not handed over; stale ones on the way are dropped. */
  private firstLive(heap: DueHeap<MemoryNode>): MemoryNode | undefined {
    for (;;) {
      const node = heap.peek();
      if (!node) return undefined;
      const entry = this.jobs.get(node.id);
      if (entry && entry.lease === undefined && entry.seq === node.seq) return node;
      heap.pop();
    }
  }
}

interface MemoryEntry {
  job: DeferredLogoutJob;
  /** Set while the job is handed over by `takeDue`: out of line until put back, removed or given up. */
  lease?: string;
  /** A new deferral came while the job was handed over: its first attempt, which the job takes on. */
  renewedAt?: number;
  /** The `seq` of its live node in the due index. */
  seq: number;
}

interface MemoryNode extends DueNode {
  id: string;
}

function copyJob(job: DeferredLogoutJob): DeferredLogoutJob {
  return { ...job, headers: { ...job.headers } };
}
