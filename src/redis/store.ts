import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { hashPortalSessionId, isValidPortalSessionId } from '../base/identifiers';
import { safeLog, type Log } from '../base/logging';
import { epochNow } from '../base/time';
import {
  scheduleLimit,
  type DeferredLogoutJob,
  type DeferredLogoutStore,
  type DueJobs,
  type StoreFigures,
} from '../queue/store';
import type { DrainRate } from '../reliability/rate-limit';
import { isKeptReason, storedSite } from '../queue/stored-fields';
import { ClockSkew, decodeJob, jobArguments, StoreClock } from './job-codec';
import { redisCommon } from './options';
import { ADD } from './scripts/store/add-7';
import { CANCEL } from './scripts/store/cancel-7';
import { CLOCK_PROBE } from './scripts/store/clock-1';
import { FIGURES } from './scripts/store/figures-2';
import { GIVE_UP } from './scripts/store/give-up-7';
import { LIST } from './scripts/store/list-7';
import { PAUSE_SITE } from './scripts/store/pause-site-1';
import { POSTPONE } from './scripts/store/postpone-7';
import { READ_SETTINGS } from './scripts/store/read-settings-1';
import { REMOVE } from './scripts/store/remove-7';
import { SCHEDULE } from './scripts/store/schedule-7';
import { SIZE } from './scripts/store/size-1';
import { TAKE_DUE } from './scripts/store/take-due-8';
import { WAKE_SITE } from './scripts/store/wake-site-7';
import {
  replyArray,
  replyNumber,
  replyText as text,
  runScript,
  type RedisClientLike,
  type RedisScript,
} from './scripts-runner';

export type { RedisClientLike, RedisScriptArguments } from './scripts-runner';

export interface RedisDeferredLogoutStoreOptions {
  /**
   * Start of every key of the store. Default `'{chargebee-portal-logout}:deferred:'`: the `{...}` hash tag
   * puts every key in one Redis Cluster slot, which the store's scripts need there; on a Cluster client
   * (`createCluster`) a prefix without a hash tag is refused. A client's own key prefix (node-redis 6.1+)
   * is added in front.
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
/** Most IDs per script call of `postpone` and `cancel`. */
const ID_BATCH = 500;
/** The eviction policy under which Redis never drops a key by itself. */
const NO_EVICTION = 'noeviction';
/** Reads of the eviction policy that may fail (Redis down at attach) before the store stops asking. */
const MAX_SETTINGS_TRIES = 5;
/** Round trips of the clock probe before the first call that sends times (the first may load the script). */
const CLOCK_PROBES = 3;

/**
 * Deferred logouts in Redis, shared by every instance of the app: one job per portal session, handed to
 * one instance at a time with a lease, handed out again if that instance dies, and a drain rate per
 * Chargebee site shared by all instances, a site held back by its rate or a 429 never holding back another
 * site's jobs. Give it the app's connected client, a plain one (`createClient`) or a Cluster one
 * (`createCluster`), node-redis 5 or 6 (the one `connect-redis` uses); the store never changes the client's
 * options and adds no listener to it. Every method is one Lua script: one atomic step on Redis.
 *
 * One clock: due times and leases are compared on Redis's clock (`TIME`), never on an instance's, so that
 * an instance whose clock runs ahead neither takes a job another holds nor makes a scheduled logout early.
 * Times go in as offsets from the caller's now, and come back on the caller's clock.
 *
 * Redis settings: the queue's keys must never be evicted (a volatile or allkeys policy can drop one index
 * alone and lose jobs, or keep jobs nothing finds). Run this Redis with `maxmemory-policy noeviction` (the
 * default of a self-run Redis; managed services often default to `volatile-lru`): past `maxmemory` Redis
 * then refuses writes, which the queue reports and survives, instead of dropping keys. The store reads the
 * policy when the queue attaches it (from `INFO memory`, through a script, so that it works where `CONFIG`
 * is refused) and logs a warning naming the fix when it is another; it says nothing when the policy cannot
 * be read. On Redis Cluster, the prefix's `{hash tag}` keeps every key of the store in one slot.
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
  /** The seven keys every job script takes (scripts/store/includes.ts), then the rate's. */
  private readonly jobKeys: readonly string[];
  private readonly rateKey: string;
  private maxAgeMs = DEFAULT_MAX_AGE_MS;
  private log: Log | undefined;
  /** Whether Redis's eviction policy has been read (or could not be: Redis answered without it). */
  private settingsRead = false;
  private readingSettings = false;
  private settingsTries = 0;
  /** How far Redis's clock is from this process's, as the replies show it. */
  private readonly skew = new ClockSkew();
  private calibrating: Promise<void> | undefined;

  constructor(
    private readonly client: RedisClientLike,
    options: RedisDeferredLogoutStoreOptions = {},
  ) {
    const { check, prefix, commandTimeoutMs } = redisCommon(
      'RedisDeferredLogoutStore',
      client,
      options,
      DEFAULT_REDIS_PREFIX,
      '{myapp}:deferred:',
    );
    this.prefix = prefix;
    this.commandTimeoutMs = commandTimeoutMs;
    this.maxQueued = check.whole(options.maxQueued, 'maxQueued', DEFAULT_REDIS_MAX_QUEUED, 1, 1_000_000_000);
    this.leaseMs = check.whole(options.leaseMs, 'leaseMs', DEFAULT_LEASE_MS, 1000, 3_600_000);
    this.jobKeys = ['jobs', 'leases', 'leased', 'sites', 'since', 'due', 'scheduled'].map((k) => `${prefix}${k}`);
    this.rateKey = `${prefix}rate`;
  }

  /** Takes the queue's maximum age (for the keys' expiry) and logger, and reads Redis's eviction policy. */
  attach(queue: { maxAgeMs: number; log: Logger }): void {
    if (Number.isFinite(queue.maxAgeMs) && queue.maxAgeMs > 0) this.maxAgeMs = Math.round(queue.maxAgeMs);
    this.log = safeLog(queue.log);
    this.readSettings();
  }

  async add(job: DeferredLogoutJob): Promise<boolean> {
    if (!this.canKeep(job)) return false;
    const { items } = await this.timed(ADD, this.jobKeys, (clock) => [
      ...this.jobArgs(job, clock),
      job.lease ?? '',
      this.maxQueued,
    ]);
    return replyNumber(items[1]) !== 0;
  }

  /** Keeps a scheduled logout; see {@link DeferredLogoutStore.schedule}. */
  async schedule(job: DeferredLogoutJob): Promise<boolean> {
    if (!this.canKeep(job)) return false;
    const { items } = await this.timed(SCHEDULE, this.jobKeys, (clock) => [
      ...this.jobArgs(job, clock),
      scheduleLimit(this.maxQueued),
    ]);
    return replyNumber(items[1]) !== 0;
  }

  /** Moves scheduled logouts later, in one call per 500; see {@link DeferredLogoutStore.postpone}. */
  async postpone(portalSessionIds: readonly string[], at: number): Promise<void> {
    if (!Number.isFinite(at)) return;
    for (const ids of batches(portalSessionIds))
      await this.timed(POSTPONE, this.jobKeys, (clock) => [this.keepMs, ...clock.arguments, clock.offset(at), ...ids]);
  }

  /** Deletes the jobs of ended portal sessions that are not handed over; see {@link DeferredLogoutStore.cancel}. */
  async cancel(portalSessionIds: readonly string[]): Promise<void> {
    for (const ids of batches(portalSessionIds)) await this.run(CANCEL, this.jobKeys, ids);
  }

  /**
   * Hands over up to `limit` due jobs (see {@link DeferredLogoutStore.takeDue}): leases, the rate of each
   * site (one bucket for every instance), a 429's pause, and sites that take turns.
   */
  async takeDue(limit: number, rate?: DrainRate): Promise<DueJobs> {
    if (!this.settingsRead) this.readSettings();
    const most = Number.isFinite(limit) ? Math.max(0, Math.floor(limit)) : 0;
    const perMinute = rate && Number.isFinite(rate.perMinute) && rate.perMinute > 0 ? rate.perMinute : 0;
    const burst = perMinute > 0 ? Math.max(1, Math.round(rate?.burst ?? 1)) : 0;
    const token = randomUUID();
    const { items, receivedAt } = await this.timed(
      TAKE_DUE,
      [...this.jobKeys, this.rateKey],
      // The rate as whole requests per 1000 minutes: a script never gets a fraction.
      () => [most, this.leaseMs, token, Math.round(perMinute * 1000), burst],
    );
    const nextIn = replyNumber(items[1]);
    const toCaller = (at: number) => this.skew.toCaller(at);
    const jobs: DeferredLogoutJob[] = [];
    for (let i = 2; i + 2 < items.length; i += 3) {
      const id = text(items[i]);
      const job = decodeJob(id, text(items[i + 1]), replyNumber(items[i + 2]), toCaller);
      if (job) jobs.push({ ...job, lease: token });
      else await this.dropMalformed(id);
    }
    return nextIn >= 0 ? { jobs, nextAt: receivedAt + nextIn } : { jobs };
  }

  async remove(portalSessionId: string): Promise<void> {
    await this.run(REMOVE, this.jobKeys, [portalSessionId]);
  }

  /** Resolves `true` when the job went, `false` when it stays (renewed, or not this taker's any more). */
  async giveUp(portalSessionId: string, lease: string | undefined): Promise<boolean> {
    if (lease === undefined) return false;
    return Number(await this.run(GIVE_UP, this.jobKeys, [this.keepMs, portalSessionId, lease])) === 1;
  }

  async pauseSite(site: string, until: number): Promise<void> {
    if (!Number.isFinite(until)) return;
    await this.timed(PAUSE_SITE, [this.rateKey], (clock) => [
      storedSite(site),
      ...clock.arguments,
      clock.offset(until),
    ]);
  }

  async wakeSite(site: string, count?: number): Promise<number> {
    const most = count === undefined || !Number.isFinite(count) ? -1 : Math.max(0, Math.floor(count));
    return Number(await this.run(WAKE_SITE, this.jobKeys, [storedSite(site), most]));
  }

  async size(): Promise<number> {
    return Number(await this.run(SIZE, [this.jobKeys[0]], []));
  }

  /** Jobs kept and since when the oldest has waited, from the store's indexes: no job is read. */
  async figures(): Promise<StoreFigures> {
    const { items } = await this.timed(FIGURES, [this.jobKeys[0], this.jobKeys[4]], () => []);
    const since = replyNumber(items[2]);
    return {
      jobs: replyNumber(items[1]),
      oldestWaitingSince: Number.isFinite(since) ? this.skew.toCaller(since) : undefined,
    };
  }

  /** Up to `limit` jobs, the longest waiting first (for the shutdown log). */
  async list(limit = 1000): Promise<DeferredLogoutJob[]> {
    const most = Number.isFinite(limit) ? Math.max(1, Math.floor(limit)) : 1000;
    const { items } = await this.timed(LIST, this.jobKeys, () => [most]);
    const toCaller = (at: number) => this.skew.toCaller(at);
    const out: DeferredLogoutJob[] = [];
    for (let i = 1; i + 2 < items.length; i += 3) {
      const job = decodeJob(text(items[i]), text(items[i + 1]), replyNumber(items[i + 2]), toCaller);
      if (job) out.push(job);
    }
    return out;
  }

  /** How long past the later of a job's first attempt and due time Redis keeps it: maximum age, lease, margin. */
  private get keepMs(): number {
    return this.maxAgeMs + this.leaseMs + EXPIRY_MARGIN_MS;
  }

  /** Whether a job can be kept (a valid portal-session ID and reason); logged when not. */
  private canKeep(job: DeferredLogoutJob): boolean {
    if (isValidPortalSessionId(job.portalSessionId) && isKeptReason(job.reason)) return true;
    this.log?.error(
      { chargebeePortalLogout: { idHash: hashPortalSessionId(job.portalSessionId) } },
      'the Redis store refused a job whose portal-session ID or reason is not valid',
    );
    return false;
  }

  /** keepMs, the call's clock, then the ID and the job as the scripts take them (see canKeep). */
  private jobArgs(job: DeferredLogoutJob, clock: StoreClock): Array<string | number> {
    return [this.keepMs, ...clock.arguments, job.portalSessionId, ...jobArguments(job, clock)];
  }

  /**
   * Runs a script whose reply starts with Redis's clock, with the arguments `build` makes for this call's
   * clock, and learns from the reply how far Redis's clock is from this process's.
   */
  private async timed(
    script: RedisScript,
    keys: readonly string[],
    build: (clock: StoreClock) => Array<string | number>,
  ): Promise<{ items: unknown[]; receivedAt: number }> {
    if (!this.skew.isCalibrated) await (this.calibrating ??= this.calibrate());
    const clock = new StoreClock(epochNow(), this.skew);
    const items = asArray(await this.run(script, keys, build(clock)));
    const receivedAt = epochNow();
    this.skew.observe(replyNumber(items[0]), clock.now, receivedAt);
    return { items, receivedAt };
  }

  /**
   * Estimates how far Redis's clock is from this process's, once, before the first call that needs it:
   * the tightest of {@link CLOCK_PROBES} round trips. A Redis that does not answer leaves no estimate (the
   * scripts then take TIME, and the first reply gives one).
   */
  private async calibrate(): Promise<void> {
    const samples: Array<{ clock: number; sentAt: number; receivedAt: number }> = [];
    try {
      for (let i = 0; i < CLOCK_PROBES; i++) {
        const sentAt = epochNow();
        const reply = asArray(await this.run(CLOCK_PROBE, [this.jobKeys[0]], []));
        samples.push({ clock: replyNumber(reply[0]), sentAt, receivedAt: epochNow() });
      }
    } catch {
      // The call that needed the estimate goes on without it.
    }
    this.skew.calibrate(samples);
  }

  /** Something under the prefix that this package did not write: dropped, so that it cannot block the line. */
  private async dropMalformed(id: string): Promise<void> {
    await this.run(REMOVE, this.jobKeys, [id]);
    this.log?.warn(
      { chargebeePortalLogout: { idHash: hashPortalSessionId(id), prefix: this.prefix } },
      'dropped a malformed deferred logout found in Redis',
    );
  }

  /**
   * Reads Redis's eviction policy once it answers (at attach, else at the next take) and warns when it is
   * not `noeviction`. Says nothing when it cannot be read (INFO refused, or not answered).
   */
  private readSettings(): void {
    if (this.settingsRead || this.readingSettings || !this.log) return;
    this.readingSettings = true;
    const log = this.log;
    this.run(READ_SETTINGS, [this.jobKeys[0]], [])
      .then((reply) => {
        this.settingsRead = true;
        const policy = reply === null || reply === undefined ? undefined : text(reply);
        if (policy === undefined || policy === NO_EVICTION) return;
        log.warn(
          { chargebeePortalLogout: { maxmemoryPolicy: policy, prefix: this.prefix } },
          `the Redis of the deferred-logout queue may evict keys (maxmemory-policy ${policy}): under memory ` +
            `pressure it can drop queued logouts, or one of the queue's indexes alone. Set maxmemory-policy ` +
            `noeviction on that Redis (CONFIG SET maxmemory-policy noeviction, or your provider's parameter ` +
            `group), or give the queue a Redis of its own that never evicts`,
        );
      })
      .catch(() => {
        // Not answered, or refused: tried again at the next takes, a few times; nothing to say either way.
        this.settingsTries += 1;
        if (this.settingsTries >= MAX_SETTINGS_TRIES) this.settingsRead = true;
      })
      .finally(() => {
        this.readingSettings = false;
      });
  }

  private run(script: RedisScript, keys: readonly string[], args: ReadonlyArray<string | number>): Promise<unknown> {
    return runScript(this.client, script, keys, args, this.commandTimeoutMs);
  }
}

/** Valid portal-session IDs in batches of {@link ID_BATCH} (one script call each). */
function batches(portalSessionIds: readonly string[]): string[][] {
  const ids = portalSessionIds.filter(isValidPortalSessionId);
  const out: string[][] = [];
  for (let i = 0; i < ids.length; i += ID_BATCH) out.push(ids.slice(i, i + ID_BATCH));
  return out;
}

function asArray(reply: unknown): unknown[] {
  return replyArray(reply, 'deferred-logout');
}
