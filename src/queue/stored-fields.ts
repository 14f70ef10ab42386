import type { DeferredLogoutJob } from './store';

/**
 * What a shared store keeps of a deferred logout's fields, and accepts when it reads them back: the checks
 * the Redis and the PostgreSQL store share. What a store holds may have been written by something else, so
 * a job read back that fails one of them is dropped (and logged by its store), never attempted.
 */

const SITE = /^[0-9a-f]{1,64}$/;
const HEADER_NAME = /^chargebee-[a-z0-9-]{1,60}$/;
// eslint-disable-next-line no-control-regex
const HEADER_VALUE = /^[^\u0000-\u0008\u000a-\u001f\u007f]{0,2048}$/;
const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,100}$/;
const TRACEPARENT = /^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/;
const REASONS: ReadonlySet<string> = new Set<DeferredLogoutJob['reason']>([
  'budget_exhausted',
  'attempts_exhausted',
  'circuit_open',
  'portal_max_age',
  'idle',
]);
const MAX_HEADERS = 20;

/** Whether a store can keep a job of this reason (a reason this package knows). */
export function isKeptReason(reason: unknown): reason is DeferredLogoutJob['reason'] {
  return typeof reason === 'string' && REASONS.has(reason);
}

/** Whether `value` is a site tag as a store keeps it: hex. */
export function isSiteTag(value: unknown): value is string {
  return typeof value === 'string' && SITE.test(value);
}

/** The site tag as a store may use it in a key, a field or a column: hex, or '' (one shared bucket). */
export function storedSite(site: string | undefined): string {
  return isSiteTag(site) ? site : '';
}

/** Whether `value` is an idempotency key as the queue makes them: printable ASCII, at most 100 characters. */
export function isIdempotencyKey(value: unknown): value is string {
  return typeof value === 'string' && IDEMPOTENCY_KEY.test(value);
}

/** `value` when it is a W3C traceparent (only a link for a span: a malformed one is left out, the job kept). */
export function storedTraceparent(value: unknown): string | undefined {
  return typeof value === 'string' && TRACEPARENT.test(value) ? value : undefined;
}

/**
 * The `chargebee-*` headers of a job as a plain object, or `undefined` when `value` is not one: at most 20,
 * each a lower-case `chargebee-` name and a value without control characters, at most 2048 characters.
 */
export function readStoredHeaders(value: unknown): Record<string, string> | undefined {
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
