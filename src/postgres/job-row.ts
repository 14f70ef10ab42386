import { isValidBusinessEntityId, isValidPortalSessionId } from '../base/identifiers';
import type { DeferredLogoutJob } from '../queue/store';
import {
  isIdempotencyKey,
  isKeptReason,
  isSiteTag,
  readStoredHeaders,
  storedSite,
  storedTraceparent,
} from '../queue/stored-fields';
import { fromOffset, offset, toOffset } from './connection';

/**
 * A deferred logout as a row of the jobs table: its times as `timestamptz` on the database's clock, its
 * fields as columns, the headers as `jsonb`. No last error and no lease are kept in the job's columns.
 * A row read back is checked field by field: one that this package did not write is refused.
 */

/** Whether the store may keep `job`: its ID, key, reason and counts are what the queue writes. */
export function isStorable(job: DeferredLogoutJob): boolean {
  return (
    isValidPortalSessionId(job.portalSessionId) &&
    isIdempotencyKey(job.idempotencyKey) &&
    isKeptReason(job.reason) &&
    Number.isSafeInteger(job.attempts) &&
    job.attempts >= 0 &&
    job.attempts < 2 ** 31 &&
    [job.notBefore, job.firstAttemptAt, job.latestAt ?? 0].every(Number.isFinite) &&
    (job.businessEntityId === undefined || isValidBusinessEntityId(job.businessEntityId)) &&
    readStoredHeaders(job.headers) !== undefined
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
    toOffset(job.notBefore, base),
    toOffset(job.firstAttemptAt, base),
    job.latestAt === undefined ? null : toOffset(job.latestAt, base),
    job.attempts,
    job.reason,
    job.idempotencyKey,
    job.businessEntityId ?? null,
    JSON.stringify(job.headers),
    storedTraceparent(job.traceparent) ?? null,
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
  if (site !== '' && !isSiteTag(site)) return undefined;
  if (entity !== null && !isValidBusinessEntityId(entity)) return undefined;
  if (!isIdempotencyKey(key) || !isKeptReason(reason)) return undefined;
  if (typeof attempts !== 'number' || !Number.isSafeInteger(attempts) || attempts < 0) return undefined;
  const headers = readStoredHeaders(row.headers);
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
    reason,
    ...(site === '' ? {} : { site }),
    ...(storedTraceparent(trace) === undefined ? {} : { traceparent: trace as string }),
    ...(latestAt === undefined ? {} : { latestAt }),
  };
}
