import { isValidBusinessEntityId, isValidPortalSessionId } from '../base/identifiers';
import type { DeferredLogoutJob } from '../queue/store';
import { fromOffset, offset } from './connection';

/**
 * A deferred logout as a row of the jobs table: its times as `timestamptz` on the database's clock, its
 * fields as columns, the headers as `jsonb`. No last error and no lease are kept in the job's columns.
 * A row read back is checked field by field: one that this package did not write is refused.
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

/** The site as the store keeps it: its hex tag, or '' (one shared bucket). */
export function storedSite(site: string | undefined): string {
  return site !== undefined && SITE.test(site) ? site : '';
}

/** Whether the store may keep `job`: its ID, key, reason and counts are what the queue writes. */
export function isStorable(job: DeferredLogoutJob): boolean {
  return (
    isValidPortalSessionId(job.portalSessionId) &&
    typeof job.idempotencyKey === 'string' &&
    IDEMPOTENCY_KEY.test(job.idempotencyKey) &&
    REASONS.has(job.reason) &&
    Number.isSafeInteger(job.attempts) &&
    job.attempts >= 0 &&
    job.attempts < 2 ** 31 &&
    [job.notBefore, job.firstAttemptAt, job.latestAt ?? 0].every(Number.isFinite) &&
    (job.businessEntityId === undefined || isValidBusinessEntityId(job.businessEntityId)) &&
    readHeaders(job.headers) !== undefined
  );
}

/**
 * The columns a write sets from a job, in this order, with the times as parameters of milliseconds from
 * `now()`: $1 id, $2 site, $3 due, $4 first attempt, $5 latest, $6 attempts, $7 reason, $8 key,
 * $9 entity, $10 headers, $11 traceparent.
 */
export function jobValues(job: DeferredLogoutJob, base: number): unknown[] {
  return [
    job.portalSessionId,
    storedSite(job.site),
    Math.round(job.notBefore - base),
    Math.round(job.firstAttemptAt - base),
    job.latestAt === undefined ? null : Math.round(job.latestAt - base),
    job.attempts,
    job.reason,
    job.idempotencyKey,
    job.businessEntityId ?? null,
    JSON.stringify(job.headers),
    job.traceparent !== undefined && TRACEPARENT.test(job.traceparent) ? job.traceparent : null,
  ];
}

/** The columns of a row that {@link readJob} reads, times as milliseconds from `now()`. */
export const JOB_COLUMNS = [
  'portal_session_id',
  'site',
  'attempts',
  'reason',
  'idempotency_key',
  'business_entity_id',
  'headers',
  'traceparent',
  `${offset('due_at')} AS due_ms`,
  `${offset('first_attempt_at')} AS first_ms`,
  `${offset('latest_at')} AS latest_ms`,
].join(', ');

/** A row read back as a job on the caller's clock, or `undefined` when it is not one this package wrote. */
export function readJob(row: Record<string, unknown>, base: number): DeferredLogoutJob | undefined {
  const id = row.portal_session_id;
  const site = row.site;
  const entity = row.business_entity_id;
  const key = row.idempotency_key;
  const reason = row.reason;
  const attempts = row.attempts;
  const trace = row.traceparent;
  if (!isValidPortalSessionId(id)) return undefined;
  if (typeof site !== 'string' || (site !== '' && !SITE.test(site))) return undefined;
  if (entity !== null && !isValidBusinessEntityId(entity)) return undefined;
  if (typeof key !== 'string' || !IDEMPOTENCY_KEY.test(key)) return undefined;
  if (typeof reason !== 'string' || !REASONS.has(reason)) return undefined;
  if (typeof attempts !== 'number' || !Number.isSafeInteger(attempts) || attempts < 0) return undefined;
  const headers = readHeaders(row.headers);
  const notBefore = fromOffset(row.due_ms, base);
  const firstAttemptAt = fromOffset(row.first_ms, base);
  const latestAt = fromOffset(row.latest_ms, base);
  if (!headers || notBefore === undefined || firstAttemptAt === undefined) return undefined;
  return {
    portalSessionId: id,
    ...(entity === null ? {} : { businessEntityId: entity }),
    headers,
    idempotencyKey: key,
    firstAttemptAt,
    attempts,
    notBefore,
    reason: reason as DeferredLogoutJob['reason'],
    ...(site === '' ? {} : { site }),
    // Only a link for a span: a malformed one is left out, the job kept.
    ...(typeof trace === 'string' && TRACEPARENT.test(trace) ? { traceparent: trace } : {}),
    ...(latestAt === undefined ? {} : { latestAt }),
  };
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
