import { hashPortalSessionId } from '../base/identifiers';
import { errorFields, type Log } from '../base/logging';
import { deadlineIn, epochNow, within } from '../base/time';
import { DEFAULT_MAX_QUEUED, MemoryDeferredLogoutStore } from './memory-store';
import { isPendingSchedule, type DeferredLogoutJob, type DeferredLogoutStore } from './store';

/**
 * The queue's side of its store: every call bounded in time, and, for a shared store that does not answer,
 * this process's memory as a stand-in ("the spill"). New and retried jobs wait in the spill, logged, and
 * move to the store once it answers again; a job that ended while it waited there has its copy in the
 * store (a write that timed out here but ran there) removed too.
 */

export const STORE = 'the deferred-logout store';
/** After a failure, a shared store is tried again after this long. */
const STORE_RETRY_MS = 1000;
export const DEFAULT_STORE_TIMEOUT_MS = 2000;
/** Least time a move to the store is given, even at the very end of a shutdown. */
const MIN_MOVE_MS = 5;

/** Where a taken job came from, and goes back to: the store, or the spill. */
export type Source = DeferredLogoutStore;

export class StoreLink {
  /** Jobs kept in memory while a durable store does not answer; `undefined` for a store that is not durable. */
  readonly spill: MemoryDeferredLogoutStore | undefined;
  private downUntil = 0;
  private down = false;
  /** Jobs out of the spill on their way to the store (put back should the store not take them). */
  private moving = 0;
  /** Portal sessions that ended while their job waited in the spill: their copy in the store goes too. */
  private readonly pendingRemovals = new Set<string>();

  constructor(
    readonly store: DeferredLogoutStore,
    private readonly log: Log,
    readonly timeoutMs: number = DEFAULT_STORE_TIMEOUT_MS,
  ) {
    this.spill = store.durable ? new MemoryDeferredLogoutStore(DEFAULT_MAX_QUEUED) : undefined;
  }

  /** Whether the store may be asked now (not within a second of a failure). */
  get reachable(): boolean {
    return epochNow() >= this.downUntil;
  }

  /** When the store may be asked again. */
  get retryAt(): number {
    return this.downUntil;
  }

  /** Jobs this process keeps in memory for the store: in the spill (leased ones included) or on their way. */
  get inMemory(): number {
    return (this.spill?.size() ?? 0) + this.moving;
  }

  /** Whether the store is down and there is something to move to it or remove from it once it answers. */
  get waitingForStore(): boolean {
    return this.down || (this.spill?.size() ?? 0) > 0 || this.pendingRemovals.size > 0;
  }

  /** One call to `source`, bounded by `timeoutMs`; a throw becomes a rejection. */
  call<T>(fn: () => T | Promise<T>, timeoutMs = this.timeoutMs): Promise<T> {
    return new Promise<T>((resolve) => resolve(within(fn(), deadlineIn(timeoutMs), STORE)));
  }

  /** Size of `source`, or -1 when it does not answer within a second. */
  async size(source: Source): Promise<number> {
    try {
      return await this.call(() => source.size(), Math.min(this.timeoutMs, 1000));
    } catch {
      return -1;
    }
  }

  failed(error: unknown): void {
    this.downUntil = epochNow() + STORE_RETRY_MS;
    if (this.down) return;
    this.down = true;
    this.log.error(
      { err: errorFields(error) },
      this.spill
        ? `${STORE} failed; new and retried logouts wait in this process's memory until it answers (retrying every second)`
        : `${STORE} failed; retrying in a second`,
    );
  }

  answered(): void {
    if (!this.down) return;
    this.down = false;
    this.log.info({}, `${STORE} answers again`);
  }

  /**
   * Keeps `job` in the spill when a durable store did not answer (`error`); `false` when there is no spill
   * or it is full.
   */
  keepInMemory(job: DeferredLogoutJob, error: unknown): boolean {
    if (!this.spill) return false;
    this.failed(error);
    if (!keepIn(this.spill, job)) return false;
    this.log.warn(
      { chargebeePortalLogout: { idHash: hashPortalSessionId(job.portalSessionId), inMemory: this.spill.size() } },
      `${STORE} did not answer; the logout waits in this process's memory until it does`,
    );
    return true;
  }

  /** Puts a job back in line where it was taken from; a durable store that does not answer leaves it in memory. */
  async putBack(job: DeferredLogoutJob, source: Source): Promise<boolean> {
    try {
      const kept = await this.call(() => source.add(job));
      if (source === this.store) this.answered();
      return kept;
    } catch (error) {
      if (source === this.store && this.keepInMemory({ ...job, lease: undefined }, error)) return true;
      this.log.error({ err: errorFields(error) }, `${STORE} failed to keep a job`);
      return false;
    }
  }

  /**
   * The portal session of a taken job ended (or its logout was refused for good): the job goes. One that
   * waited in the spill may have a copy in the store: it goes too, now or once the store answers.
   */
  async ended(job: DeferredLogoutJob, source: Source): Promise<void> {
    try {
      await this.call(() => source.remove(job.portalSessionId));
    } catch (error) {
      this.failed(error);
    }
    if (source === this.store) return;
    this.pendingRemovals.add(job.portalSessionId);
    await this.removePending();
  }

  /**
   * The queue gives a taken job up (its maximum age): it goes from where it was taken, unless renewed there
   * (then `false`: the logout is not given up). A copy in the store of a job given up in the spill is left
   * alone: it may be another instance's. A store that does not answer counts as gone (reported given up).
   */
  async givenUp(job: DeferredLogoutJob, source: Source): Promise<boolean> {
    try {
      const went: unknown = await this.call(() => source.giveUp(job.portalSessionId, job.lease));
      // A store of the app's may answer nothing: only an explicit `false` keeps the logout going.
      return went !== false;
    } catch (error) {
      this.failed(error);
      return true;
    }
  }

  /** Removes from the store the copies of jobs that ended in the spill, until the store fails. */
  async removePending(): Promise<void> {
    for (const id of this.pendingRemovals) {
      try {
        await this.call(() => this.store.remove(id));
        this.pendingRemovals.delete(id);
      } catch (error) {
        this.failed(error);
        return;
      }
    }
  }

  /**
   * Moves the jobs of the spill to the durable store, until it fails. `lost` is told the jobs the store
   * refused (full). At most until `deadline` (on the epoch clock) when given.
   */
  async moveToStore(lost: (job: DeferredLogoutJob) => void, deadline = Infinity): Promise<void> {
    const spill = this.spill;
    if (!spill) return;
    let moved = 0;
    for (;;) {
      const [job] = spill.drain(1);
      if (!job) break;
      this.moving += 1;
      try {
        const timeoutMs = Math.min(this.timeoutMs, Math.max(MIN_MOVE_MS, deadline - epochNow()));
        const kept = await this.call(() => keepIn(this.store, job), timeoutMs);
        moved += 1;
        if (!kept) lost(job);
      } catch (error) {
        spill.add(job);
        this.failed(error);
        break;
      } finally {
        this.moving -= 1;
      }
    }
    if (moved > 0) {
      this.answered();
      this.log.info(
        { chargebeePortalLogout: { moved, inMemory: spill.size() } },
        `${moved} deferred logouts moved from this process's memory to ${STORE}`,
      );
    }
  }
}

/**
 * Keeps a job in a store: a scheduled logout not tried yet through `schedule`, so that it never replaces a
 * deferral under way; anything else through `add`.
 */
export function keepIn(store: DeferredLogoutStore, job: DeferredLogoutJob): boolean | Promise<boolean> {
  return isPendingSchedule(job) && store.schedule ? store.schedule(job) : store.add(job);
}
