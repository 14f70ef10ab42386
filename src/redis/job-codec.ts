import { isValidBusinessEntityId, isValidPortalSessionId } from '../base/identifiers';
import type { DeferredLogoutJob } from '../queue/store';
import {
  isIdempotencyKey,
  isKeptReason,
  readStoredHeaders,
  storedSite,
  storedTraceparent,
} from '../queue/stored-fields';

/**
 * A deferred logout as Redis keeps it. The portal-session ID is the hash field and the due time a lane's
 * score; the value is a header the scripts read without decoding JSON, then a compact JSON of what only the
 * next attempt needs (no last error, no lease):
 *
 *     <attempts> <reason> <site or -> <first attempt> <latest or -> {"h":{...},"k":"...","b":"...","t":"..."}
 *
 * Times are on Redis's clock (whole milliseconds): the caller sends them as offsets from its own now, and
 * reads them back on its own clock (see {@link StoreClock} and {@link ClockSkew}).
 */

interface StoredBody {
  /** Business entity */
  b?: string;
  /** The `chargebee-*` origin and event headers */
  h: Record<string, string>;
  /** Idempotency key */
  k: string;
  /** The W3C traceparent of the logout that deferred it, for the span links of the attempts */
  t?: string;
}

const STORED = /^(\d{1,9}) ([a-z_]{1,40}) ([0-9a-f]{1,64}|-) (-?\d{1,16}) (-?\d{1,16}|-) (\{[\s\S]*\})$/;
/** Offsets further than this (about 300 years) are clamped: a time that far is a bug, not a plan. */
const MAX_OFFSET_MS = 1e13;
const MAX_ATTEMPTS = 1e9 - 1;

/**
 * How far a reply may show the skew estimate off before it is taken again: more than a call's usual time
 * to Redis and back (a first call slower than the next ones must not move the times written after it), and
 * nothing against the seconds a backoff or a lease lasts. A clock that steps further is followed at once.
 * The scripts trust the estimate within the same margin (scripts/store/includes.ts callerNow).
 */
const SKEW_MARGIN_MS = 250;

/**
 * This process's estimate of how far Redis's clock is from its own (ms to add to ours). Scripts use it to
 * put this process's times on Redis's clock when TIME confirms it (scripts/store/includes.ts callerNow), so
 * that the times one instance writes keep their order to the millisecond and come back on this process's
 * clock as they went in. It is taken from the tightest of a few probes (the midpoint of Redis's clock
 * between sending and receiving), then learned from every reply, each of which carries Redis's clock: it
 * stays as it is unless a reply shows it wrong by more than {@link SKEW_MARGIN_MS} (a clock stepped), and
 * is then taken from that reply.
 */
export class ClockSkew {
  private skew: number | undefined;
  private calibrated = false;

  /** The estimate, or `undefined` before the first reply. */
  get estimate(): number | undefined {
    return this.skew;
  }

  /** Whether the probes have run (or could not). */
  get isCalibrated(): boolean {
    return this.calibrated;
  }

  /** The probes: Redis read each `clock` between `sentAt` and `receivedAt` of ours; the tightest one counts. */
  calibrate(samples: ReadonlyArray<{ clock: number; sentAt: number; receivedAt: number }>): void {
    this.calibrated = true;
    const valid = samples.filter((s) => Number.isSafeInteger(s.clock) && s.receivedAt >= s.sentAt);
    if (valid.length === 0) return;
    const tightest = valid.reduce((a, b) => (b.receivedAt - b.sentAt < a.receivedAt - a.sentAt ? b : a));
    this.skew = midpoint(tightest.clock, tightest.sentAt, tightest.receivedAt);
  }

  /** A reply: Redis read `clock` between `sentAt` and `receivedAt` on this process's clock. */
  observe(clock: number, sentAt: number, receivedAt: number): void {
    if (!Number.isSafeInteger(clock)) return;
    const lowest = clock - receivedAt - SKEW_MARGIN_MS;
    const highest = clock - sentAt + SKEW_MARGIN_MS;
    if (this.skew === undefined || this.skew < lowest || this.skew > highest)
      this.skew = midpoint(clock, sentAt, receivedAt);
  }

  /** A time of Redis's clock on this process's (call after `observe` of the reply that carried it). */
  toCaller(storeTime: number): number {
    return storeTime - (this.skew ?? 0);
  }
}

/** Redis's clock minus ours at the middle of the call that read it. */
function midpoint(clock: number, sentAt: number, receivedAt: number): number {
  return Math.round(clock - (sentAt + receivedAt) / 2);
}

/**
 * One call's times: each of this process's times goes as a whole-millisecond offset from `now` (this
 * process's now when it sends), with `now` and the skew estimate, which the script turns into its own now
 * on Redis's clock (or takes TIME when it does not agree).
 */
export class StoreClock {
  readonly now: number;
  private readonly skew: number | undefined;

  constructor(now: number, skew: ClockSkew) {
    this.now = Math.round(now);
    this.skew = skew.estimate;
  }

  /** The script arguments "now" and "skew" (includes.ts callerNow). */
  get arguments(): [number, number | ''] {
    return [this.now, this.skew ?? ''];
  }

  /** A caller's time as a whole offset from its now; not finite: `fallback`. */
  offset(at: number, fallback = 0): number {
    if (!Number.isFinite(at)) return fallback;
    return Math.round(Math.min(MAX_OFFSET_MS, Math.max(-MAX_OFFSET_MS, at - this.now)));
  }
}

/**
 * A job as the scripts take it (argJob in scripts/store/includes.ts): attempts, reason, site, first attempt,
 * due and latest time (offsets), the JSON body. For a job the store can keep (its reason is one this package
 * knows: the store checks first).
 */
export function jobArguments(job: DeferredLogoutJob, clock: StoreClock): Array<string | number> {
  const attempts = Number.isFinite(job.attempts) ? Math.min(MAX_ATTEMPTS, Math.max(0, Math.round(job.attempts))) : 0;
  const body: StoredBody = {
    h: job.headers,
    k: job.idempotencyKey,
    ...(job.businessEntityId === undefined ? {} : { b: job.businessEntityId }),
    ...(storedTraceparent(job.traceparent) === undefined ? {} : { t: job.traceparent }),
  };
  const latest = job.latestAt === undefined || !Number.isFinite(job.latestAt) ? '' : clock.offset(job.latestAt);
  return [
    attempts,
    job.reason,
    storedSite(job.site) || '-',
    clock.offset(job.firstAttemptAt),
    clock.offset(job.notBefore),
    latest,
    JSON.stringify(body),
  ];
}

/**
 * Reads a stored job back, checking every field; `undefined` for anything this package did not write.
 * `due` and the stored times are Redis's; `toCaller` puts them on the caller's clock.
 */
export function decodeJob(
  id: string,
  text: string,
  due: number,
  toCaller: (storeTime: number) => number,
): DeferredLogoutJob | undefined {
  if (!isValidPortalSessionId(id)) return undefined;
  const header = STORED.exec(text);
  if (!header || !Number.isSafeInteger(due)) return undefined;
  const [, attempts, reason, site, first, latest, json] = header;
  if (!isKeptReason(reason)) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const v = value as Partial<Record<keyof StoredBody, unknown>>;
  if (v.b !== undefined && !isValidBusinessEntityId(v.b)) return undefined;
  if (!isIdempotencyKey(v.k)) return undefined;
  const headers = readStoredHeaders(v.h);
  if (!headers) return undefined;
  return {
    portalSessionId: id,
    ...(v.b === undefined ? {} : { businessEntityId: v.b }),
    headers,
    idempotencyKey: v.k,
    firstAttemptAt: toCaller(Number(first)),
    attempts: Number(attempts),
    notBefore: toCaller(due),
    reason,
    ...(site === '-' ? {} : { site }),
    // Only a link for a span: a malformed one is left out, the job kept.
    ...(storedTraceparent(v.t) === undefined ? {} : { traceparent: v.t as string }),
    ...(latest === '-' ? {} : { latestAt: toCaller(Number(latest)) }),
  };
}
