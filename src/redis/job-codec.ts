import { isValidBusinessEntityId, isValidPortalSessionId } from '../base/identifiers';
import type { DeferredLogoutJob } from '../queue/store';

/**
 * A deferred logout as Redis keeps it: the portal-session ID is the hash field, `notBefore` the sorted-set
 * score, and the rest a compact JSON value of what the next attempt needs (no last error, no lease). The
 * site comes first, so that the take script reads it without decoding the JSON.
 */

interface StoredJob {
  /** Site tag (hex), or '' */
  s: string;
  /** Business entity */
  b?: string;
  /** The `chargebee-*` origin and event headers */
  h: Record<string, string>;
  /** Idempotency key */
  k: string;
  /** First attempt, ms since the epoch */
  f: number;
  /** Attempts so far */
  a: number;
  /** Why it was deferred, or scheduled */
  r: DeferredLogoutJob['reason'];
  /** The W3C traceparent of the logout that deferred it, for the span links of the attempts */
  t?: string;
  /** A scheduled logout's latest time, ms since the epoch (its maximum portal-session age) */
  l?: number;
}

const SITE = /^[0-9a-f]{1,64}$/;
const HEADER_NAME = /^chargebee-[a-z0-9-]{1,60}$/;
// eslint-disable-next-line no-control-regex
const HEADER_VALUE = /^[^\u0000-\u0008\u000a-\u001f\u007f]{0,2048}$/;
const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,100}$/;
const REASONS: ReadonlySet<string> = new Set<DeferredLogoutJob['reason']>([
  'budget_exhausted',
  'attempts_exhausted',
  'circuit_open',
  'portal_max_age',
  'idle',
]);
const MAX_HEADERS = 20;
const TRACEPARENT = /^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/;

/** The site tag as the store may use it in a hash field: hex, or '' (one shared bucket). */
export function storedSite(site: string | undefined): string {
  return site !== undefined && SITE.test(site) ? site : '';
}

export function encodeJob(job: DeferredLogoutJob): string {
  const stored: StoredJob = {
    s: storedSite(job.site),
    ...(job.businessEntityId === undefined ? {} : { b: job.businessEntityId }),
    h: job.headers,
    k: job.idempotencyKey,
    f: job.firstAttemptAt,
    a: job.attempts,
    r: job.reason,
    ...(job.traceparent !== undefined && TRACEPARENT.test(job.traceparent) ? { t: job.traceparent } : {}),
    ...(job.latestAt === undefined ? {} : { l: job.latestAt }),
  };
  return JSON.stringify(stored);
}

/** Reads a stored job back, checking every field; `undefined` for anything this package did not write. */
export function decodeJob(id: string, text: string, notBefore: number): DeferredLogoutJob | undefined {
  if (!isValidPortalSessionId(id)) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const v = value as Partial<Record<keyof StoredJob, unknown>>;
  if (typeof v.s !== 'string' || (v.s !== '' && !SITE.test(v.s))) return undefined;
  if (v.b !== undefined && !isValidBusinessEntityId(v.b)) return undefined;
  if (typeof v.k !== 'string' || !IDEMPOTENCY_KEY.test(v.k)) return undefined;
  if (!isCount(v.f) || !isCount(v.a) || typeof v.r !== 'string' || !REASONS.has(v.r)) return undefined;
  if (v.l !== undefined && !isCount(v.l)) return undefined;
  const headers = readHeaders(v.h);
  if (!headers) return undefined;
  return {
    portalSessionId: id,
    ...(v.b === undefined ? {} : { businessEntityId: v.b }),
    headers,
    idempotencyKey: v.k,
    firstAttemptAt: v.f,
    attempts: v.a,
    notBefore,
    reason: v.r as DeferredLogoutJob['reason'],
    ...(v.s === '' ? {} : { site: v.s }),
    // Only a link for a span: a malformed one is left out, the job kept.
    ...(typeof v.t === 'string' && TRACEPARENT.test(v.t) ? { traceparent: v.t } : {}),
    ...(v.l === undefined ? {} : { latestAt: v.l }),
  };
}

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

function readHeaders(value: unknown): Record<string, string> | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const entries = Object.entries(value);
  if (entries.length > MAX_HEADERS) return undefined;
  const headers: Record<string, string> = {};
  for (const [name, text] of entries) {
    if (!HEADER_NAME.test(name) || typeof text !== 'string' || !HEADER_VALUE.test(text)) return undefined;
    headers[name] = text;
  }
  return headers;
}
