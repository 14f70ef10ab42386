import { randomUUID } from 'node:crypto';
import { hashPortalSessionId, isValidPortalSessionId } from '../base/identifiers';
import { errorFields, type Log } from '../base/logging';
import { eventSuppressionHeaders, ORIGIN_HEADERS } from '../base/origin-headers';
import { type DeferredLogoutJob, type ScheduledLogoutReason } from '../queue/store';
import { MIN_DEFERRAL_WAIT_MS, type DeferredLogoutQueue } from '../queue/queue';
import { readRememberedList } from '../remembered/list';
import type { ExpiryContext, ExpirySettings } from './settings';
import { epochNow, remaining, settleWithin } from '../base/time';

/**
 * Portal sessions that end by themselves: at `remember()` a logout is scheduled in the deferred queue for
 * the portal session's maximum age or its app session's idle time, whichever comes first; the activity
 * hook moves idle logouts later; a logout that ends a portal session another way cancels its scheduled one.
 */

/** Most app sessions the activity throttle remembers per interval; past it, it starts a new interval early. */
const MAX_THROTTLED = 100_000;
/** Least time a cancellation is given in the background, even when the logout's budget is spent. */
const CANCEL_MIN_MS = 1000;

/**
 * At most one write per key (an app session) per interval, in this process: the keys written in this
 * interval and the one before, so that memory holds only the app sessions active lately.
 */
export class ActivityThrottle {
  private current = new Map<string, number>();
  private previous = new Map<string, number>();
  private rotatedAt = -Infinity;

  constructor(private readonly intervalMs: number) {}

  /** `true` when `key` was not written within the interval: it counts as written at `now`. */
  take(key: string, now: number): boolean {
    if (now - this.rotatedAt >= this.intervalMs || this.current.size >= MAX_THROTTLED) {
      this.previous = this.current;
      this.current = new Map();
      this.rotatedAt = now;
    }
    const last = this.current.get(key) ?? this.previous.get(key);
    if (last !== undefined && now - last < this.intervalMs) return false;
    this.current.set(key, now);
    return true;
  }

  /** Forgets `key`: its next request writes (the write failed). */
  release(key: string): void {
    this.current.delete(key);
    this.previous.delete(key);
  }
}

export class PortalSessionExpiry {
  private readonly throttle: ActivityThrottle;

  constructor(
    private readonly settings: ExpiryContext,
    private readonly expiry: ExpirySettings,
    private readonly queue: DeferredLogoutQueue,
    private readonly log: Log,
  ) {
    this.throttle = new ActivityThrottle(expiry.activityIntervalMs);
  }

  /** When an app session active now goes idle: its last write, plus the idle time and one interval. */
  private idleAt(now: number): number | undefined {
    const { idleMs, activityIntervalMs } = this.expiry;
    return idleMs === undefined ? undefined : now + idleMs + activityIntervalMs;
  }

  /**
   * Schedules the logout of a portal session just remembered, waiting for the store until `deadline` (on
   * `now()`). Never throws: the queue logs a store that is full or fails, and the portal
   * session then ends only when logged out.
   */
  async schedule(id: string, businessEntityId: string | undefined, deadline: number, log: Log): Promise<void> {
    const now = epochNow();
    const latestAt = this.expiry.maxAgeMs === undefined ? undefined : now + this.expiry.maxAgeMs;
    const idleAt = this.idleAt(now) ?? Infinity;
    const dueAt = Math.min(latestAt ?? Infinity, idleAt);
    const reason: ScheduledLogoutReason = idleAt < (latestAt ?? Infinity) ? 'idle' : 'portal_max_age';
    const headers = eventSuppressionHeaders(this.settings.suppressEvents);
    if (businessEntityId !== undefined) headers[ORIGIN_HEADERS.businessEntity] = businessEntityId;
    const job: DeferredLogoutJob = {
      portalSessionId: id,
      ...(businessEntityId === undefined ? {} : { businessEntityId }),
      // No origin headers: the logout is not the customer's doing, as with logoutCustomer() from a job.
      headers,
      idempotencyKey: randomUUID(),
      firstAttemptAt: dueAt,
      attempts: 0,
      notBefore: dueAt,
      reason,
      site: this.settings.siteFor(businessEntityId),
      ...(latestAt === undefined ? {} : { latestAt }),
    };
    const scheduled = await this.queue.schedule(job, Math.max(remaining(deadline), MIN_DEFERRAL_WAIT_MS));
    if (scheduled === 'closed')
      log.warn(
        { chargebeePortalLogout: { idHash: hashPortalSessionId(id) } },
        'close() was called; no logout is scheduled for this portal session',
      );
  }

  /** Whether activity has anything to postpone. */
  get idle(): boolean {
    return this.expiry.idleMs !== undefined;
  }

  /**
   * Activity of an app session whose store holds `value` (its remembered portal sessions): their idle
   * logouts move later, at most once per interval per app session in this process. Never throws.
   */
  touch(value: unknown): void {
    try {
      this.postponeIdle(value);
    } catch (error) {
      this.log.error({ err: errorFields(error) }, 'activity failed unexpectedly; idle logouts are not postponed');
    }
  }

  private postponeIdle(value: unknown): void {
    const list = readRememberedList(value)?.entries;
    if (!list || list.length === 0) return;
    const ids = list
      .map((entry) => entry.id)
      .filter(isValidPortalSessionId)
      .slice(-this.settings.maxRemembered);
    if (ids.length === 0) return;
    const now = epochNow();
    const key = ids.join(',');
    if (!this.throttle.take(key, now)) return;
    void this.queue.postpone(ids, this.idleAt(now) as number).then((moved) => {
      if (!moved) this.throttle.release(key); // the store did not answer: the next request tries again
    });
  }

  /**
   * These portal sessions ended another way: their scheduled logouts go. Waits at most until `waitUntil`
   * (on `now()`); the store call goes on a little longer in the background when that is short.
   */
  async ended(ids: readonly string[], waitUntil: number): Promise<void> {
    if (ids.length === 0) return;
    const cancelling = this.queue.cancel(ids, Math.max(remaining(waitUntil), CANCEL_MIN_MS));
    await settleWithin(() => cancelling, waitUntil);
  }
}
