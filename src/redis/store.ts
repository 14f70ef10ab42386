import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { hashPortalSessionId, isValidPortalSessionId } from '../base/identifiers';
import { safeLog, type Log } from '../base/logging';
import { scheduleLimit, type DeferredLogoutJob, type DeferredLogoutStore, type DueJobs } from '../queue/store';
import type { DrainRate } from '../reliability/rate-limit';
import { decodeJob, encodeJob, storedSite } from './job-codec';
import { redisCommon } from './options';
import { ADD, CANCEL, LIST, NEXT_DUE, PAUSE, POSTPONE, REMOVE, SCHEDULE, SIZE, TAKE } from './scripts';
import { replyArray, replyText as text, runScript, type RedisClientLike, type Script } from './scripts-runner';
import { epochNow } from '../base/time';

export type { RedisClientLike, RedisScriptArguments } from './scripts-runner';

export interface RedisDeferredLogoutStoreOptions {
  /**
   * Start of every key of the store. Default `'{chargebee-portal-logout}:deferred:'`: the `{...}` hash tag
   * puts every key in one Redis Cluster slot, which the store's scripts need there. A client's own key
   * prefix (node-redis 6.1+) is added in front.
   */
  prefix?: string;
  /** Most jobs kept, all instances together; past it a deferral is refused and logged as lost. Default 100 000. */
  maxQueued?: number;
  /**
   * How long a job stays with the instance that took it before another may take it (the taker may have
   * died). Each attempt gets at most half of it. Default 30 000 ms.
   */
  leaseMs?: number;
  /** Longest wait for one Redis call, whatever the client's own timeouts. Default 1000 ms. */
  commandTimeoutMs?: number;
}

export const DEFAULT_REDIS_PREFIX = '{chargebee-portal-logout}:deferred:';
export const DEFAULT_REDIS_MAX_QUEUED = 100_000;
export const DEFAULT_LEASE_MS = 30_000;
/** Stored jobs outlive their maximum age by this much, so that a running queue gives them up (and logs it) first. */
const EXPIRY_MARGIN_MS = 60_000;
const DEFAULT_MAX_AGE_MS = 24 * 3600 * 1000;
/** Jobs the take script looks at beyond the ones it may hand out (some may wait for their site's rate). */
const EXTRA_SCAN = 20;

/**
 * Deferred logouts in Redis, shared by every instance of the app: one job per portal session, handed to
 * one instance at a time with a lease, handed out again if that instance dies, and a drain rate per
 * Chargebee site shared by all instances. Give it the app's connected client (the one `connect-redis`
 * uses); the store never changes the client's options and adds no listener to it.
 *
 * Warning: Redis then holds what a logout needs: portal-session IDs (bearer references to a customer's
 * portal), the customer's IP address, device and email. Keep that Redis as private as your sessions.
 */
export class RedisDeferredLogoutStore implements DeferredLogoutStore {
  readonly durable = true;
  readonly leaseMs: number;
  readonly maxQueued: number;
  readonly prefix: string;
  private readonly commandTimeoutMs: number;
  private readonly keys: { jobs: string; due: string; leases: string; rate: string };
  private maxAgeMs = DEFAULT_MAX_AGE_MS;
  private log: Log | undefined;

  constructor(
    private readonly client: RedisClientLike,
    options: RedisDeferredLogoutStoreOptions = {},
  ) {
    const { check, prefix, commandTimeoutMs } = redisCommon(
      'RedisDeferredLogoutStore',
      client,
      options,
      DEFAULT_REDIS_PREFIX,
    );
    this.prefix = prefix;
    this.commandTimeoutMs = commandTimeoutMs;
    this.maxQueued = check.whole(options.maxQueued, 'maxQueued', DEFAULT_REDIS_MAX_QUEUED, 1, 1_000_000_000);
    this.leaseMs = check.whole(options.leaseMs, 'leaseMs', DEFAULT_LEASE_MS, 1000, 3_600_000);
    this.keys = { jobs: `${prefix}jobs`, due: `${prefix}due`, leases: `${prefix}leases`, rate: `${prefix}rate` };
  }

  attach(queue: { maxAgeMs: number; log: Logger }): void {
    this.maxAgeMs = queue.maxAgeMs;
    this.log = safeLog(queue.log);
  }

  async add(job: DeferredLogoutJob): Promise<boolean> {
    return this.keep(ADD, job, this.maxQueued, [job.lease ?? '']);
  }

  /** Keeps a scheduled logout; see {@link DeferredLogoutStore.schedule}. */
  async schedule(job: DeferredLogoutJob): Promise<boolean> {
    return this.keep(SCHEDULE, job, scheduleLimit(this.maxQueued));
  }

  /** Runs ADD or SCHEDULE for a valid job; false when the store is full (or refuses the job). */
  private async keep(
    script: typeof ADD,
    job: DeferredLogoutJob,
    limit: number,
    extra: ReadonlyArray<string | number> = [],
  ): Promise<boolean> {
    if (!isValidPortalSessionId(job.portalSessionId)) {
      this.log?.error({}, 'the Redis store refused a job whose portal-session ID is not valid');
      return false;
    }
    const { jobs, due, leases } = this.keys;
    const args = [job.portalSessionId, encodeJob(job), job.notBefore, limit, this.expireAt(job), ...extra];
    const reply = await this.run(script, [jobs, due, leases], args);
    return Number(reply) !== 0;
  }

  /** Moves scheduled logouts later, in one call; see {@link DeferredLogoutStore.postpone}. */
  async postpone(portalSessionIds: readonly string[], at: number): Promise<void> {
    const ids = portalSessionIds.filter(isValidPortalSessionId);
    if (ids.length === 0) return;
    const { jobs, due, leases } = this.keys;
    const expireAt = at + this.maxAgeMs + this.leaseMs + EXPIRY_MARGIN_MS;
    await this.run(POSTPONE, [jobs, due, leases], [Math.round(at), expireAt, ...ids]);
  }

  /** Deletes the jobs of ended portal sessions, in one call; see {@link DeferredLogoutStore.cancel}. */
  async cancel(portalSessionIds: readonly string[]): Promise<void> {
    const ids = portalSessionIds.filter(isValidPortalSessionId);
    if (ids.length === 0) return;
    const { jobs, due, leases } = this.keys;
    await this.run(CANCEL, [jobs, due, leases], ids);
  }

  async takeDue(limit: number, rate?: DrainRate): Promise<DueJobs> {
    const now = epochNow();
    const token = randomUUID();
    const { jobs, due, leases } = this.keys;
    const reply = await this.run(
      TAKE,
      [jobs, due, leases, this.keys.rate],
      [now, limit, this.leaseMs, token, rate?.perMinute ?? 0, rate?.burst ?? 1, limit + EXTRA_SCAN],
    );
    const items = asArray(reply);
    const rateWait = Number(items[0]);
    const dueIn = Number(items[1]);
    const taken: DeferredLogoutJob[] = [];
    for (let i = 2; i + 1 < items.length; i += 2) {
      const id = text(items[i]);
      const job = decodeJob(id, text(items[i + 1]), now);
      if (job) taken.push({ ...job, lease: token });
      else await this.dropMalformed(id, token);
    }
    const later = [rateWait >= 0 ? epochNow() + rateWait : Infinity, dueIn >= 0 ? now + dueIn : Infinity];
    const nextAt = Math.min(...later);
    return Number.isFinite(nextAt) ? { jobs: taken, nextAt } : { jobs: taken };
  }

  async giveUp(portalSessionId: string, lease: string | undefined): Promise<void> {
    await this.remove(portalSessionId, lease);
  }

  async wakeSite(): Promise<number> {
    return 0;
  }

  async remove(portalSessionId: string, lease?: string): Promise<void> {
    const { jobs, due, leases } = this.keys;
    await this.run(REMOVE, [jobs, due, leases], [portalSessionId, lease ?? '']);
  }

  async size(): Promise<number> {
    return Number(await this.run(SIZE, [this.keys.jobs], []));
  }

  async nextDueAt(): Promise<number | undefined> {
    const reply = await this.run(NEXT_DUE, [this.keys.due], []);
    const at = reply === null || reply === undefined ? NaN : Number(text(reply));
    return Number.isFinite(at) ? at : undefined;
  }

  async list(limit = 1000): Promise<DeferredLogoutJob[]> {
    const items = asArray(await this.run(LIST, [this.keys.due, this.keys.jobs], [Math.max(1, limit)]));
    const out: DeferredLogoutJob[] = [];
    for (let i = 0; i + 2 < items.length; i += 3) {
      const job = decodeJob(text(items[i + 1]), text(items[i + 2]), Number(text(items[i])));
      if (job) out.push(job);
    }
    return out;
  }

  async pauseSite(site: string, until: number): Promise<void> {
    await this.run(PAUSE, [this.keys.rate], [storedSite(site), Math.max(0, Math.ceil(until - epochNow()))]);
  }

  /**
   * When Redis may forget a job: past the queue's maximum age from its first attempt (for a scheduled
   * logout, its due time), a lease and a margin.
   */
  private expireAt(job: DeferredLogoutJob): number {
    return job.firstAttemptAt + this.maxAgeMs + this.leaseMs + EXPIRY_MARGIN_MS;
  }

  /** Something under the prefix that this package did not write: dropped, so that it cannot block the line. */
  private async dropMalformed(id: string, token: string): Promise<void> {
    const { jobs, due, leases } = this.keys;
    await this.run(REMOVE, [jobs, due, leases], [id, token]);
    this.log?.warn(
      { chargebeePortalLogout: { idHash: hashPortalSessionId(id), prefix: this.prefix } },
      'dropped a malformed deferred logout found in Redis',
    );
  }

  private run(script: Script, keys: string[], args: Array<string | number>): Promise<unknown> {
    return runScript(this.client, script, keys, args, this.commandTimeoutMs);
  }
}

function asArray(reply: unknown): unknown[] {
  return replyArray(reply, 'deferred-logout');
}
