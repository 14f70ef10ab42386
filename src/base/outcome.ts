import type { ChargebeeError } from './errors';

/**
 * What happened to one remembered portal session at logout.
 * - `logged_out`: Chargebee ended it now.
 * - `already_logged_out`: it had ended before (the customer logged out in the portal, or an earlier logout).
 * - `not_found`: Chargebee does not know it (`resource_not_found`); there is nothing left to end.
 * - `invalid_id`: the remembered value is not a portal-session ID; it was not sent.
 * - `deferred`: Chargebee could not be reached in time (`reason`); the background queue owns the logout
 *   now and reports its final result to `onOutcome` (with `deferred: true`) and the log.
 * - `failed`: Chargebee could not be asked, or refused; `error` says why. The portal session may still be open.
 */
export type PortalSessionStatus =
  'logged_out' | 'already_logged_out' | 'not_found' | 'invalid_id' | 'deferred' | 'failed';

/** Statuses after which the portal session is known to be unusable. */
export const ENDED_STATUSES: ReadonlySet<PortalSessionStatus> = new Set([
  'logged_out',
  'already_logged_out',
  'not_found',
]);

/** Statuses after which the ID is forgotten from the user's store: ended, invalid, or owned by the queue. */
export const FORGOTTEN_STATUSES: ReadonlySet<PortalSessionStatus> = new Set([
  ...ENDED_STATUSES,
  'invalid_id',
  'deferred',
]);

/**
 * Why a logout was deferred, or why it failed without an answer from Chargebee.
 * - `budget_exhausted`: the time budget ran out (a `Retry-After` longer than the time left counts too).
 * - `attempts_exhausted`: every allowed attempt failed with a retryable error.
 * - `circuit_open`: the circuit breaker is open; no call was made.
 * - `max_age`: a deferred logout kept failing until its maximum age; it was given up.
 * - `queue_full`: it should have been deferred but the in-memory queue was full (logged at error level).
 * - `queue_closed`: it should have been deferred but `close()` had been called.
 * - `store_timeout`: it should have been deferred but the deferred-logout store did not answer within the budget.
 *
 * A scheduled logout (option `expiry`) carries why it was made, whatever its status:
 * - `portal_max_age`: the portal session reached the maximum portal-session age (`expiry.maxAgeMs`).
 * - `idle`: its app session made no request through `activity` for `expiry.idleMs`.
 * Not to be confused with `max_age`, the deferred queue giving up on a logout that kept failing.
 */
export type PortalSessionReason =
  | 'budget_exhausted'
  | 'attempts_exhausted'
  | 'circuit_open'
  | 'max_age'
  | 'queue_full'
  | 'queue_closed'
  | 'store_timeout'
  | 'portal_max_age'
  | 'idle';

/**
 * Why the remembered portal sessions could not be read (the logout then `failed`), or could not be
 * forgotten after the logout (the result stands: the portal sessions did end).
 * - `store_error`: the store threw or rejected (no express-session mounted, a resolver that failed).
 * - `store_timeout`: the store did not answer within the budget.
 * - `registry_error`, `registry_timeout`: at a sign-out everywhere or `logoutCustomer()`, the registry of
 *   open portal sessions failed or did not answer in time (the logout then `failed`; the portal sessions it
 *   could read were still ended).
 */
export type PortalLogoutReason = 'store_error' | 'store_timeout' | 'registry_error' | 'registry_timeout';

/** The outcome for one portal session. */
export interface PortalSessionOutcome {
  status: PortalSessionStatus;
  /**
   * The portal-session ID; absent when it was invalid. Treat as a secret: do not log it. It is a
   * non-enumerable property, so `JSON.stringify`, `res.json()` and object spreads leave it out; read it
   * as `outcome.id`.
   */
  readonly id?: string;
  /** A short hash of the remembered value, safe to log. */
  idHash: string;
  /** The business entity the logout was sent for, if any. */
  businessEntityId?: string;
  /** HTTP status Chargebee answered with, when it answered. */
  httpStatus?: number;
  /** Chargebee's `api_error_code`, when it answered with an error. */
  apiErrorCode?: string;
  /** The client error, for `failed` and `deferred` (and `not_found`). */
  error?: ChargebeeError;
  /** Why it was deferred, why it failed without a usable answer, or why a scheduled logout was made. */
  reason?: PortalSessionReason;
  /** Calls made to Chargebee for it: inline, or in total for the final result of a deferred logout. */
  attempts?: number;
  /** Set on the final result of a deferred logout, which `onOutcome` receives without a request. */
  deferred?: true;
  /**
   * Set on a portal session of the same customer that another app session opened (another device or
   * browser), ended by a sign-out everywhere.
   */
  elsewhere?: true;
  /** Time spent on this portal session, in milliseconds (for a deferred one: since its first attempt). */
  durationMs: number;
}

/**
 * The outcome of one logout, put on `res.locals.chargebeePortalLogout` for the app's own handler.
 * - `nothing_remembered`: no portal session was remembered for this user; no call was made.
 * - `ended`: every valid remembered portal session is logged out (or was already, or is unknown).
 * - `deferred`: none failed, and at least one was handed to the background queue, which will end it.
 * - `failed`: at least one could not be logged out, or the remembered IDs could not be read (`error`).
 * - `skipped_cross_site`: a cross-site GET or HEAD (a link on another site); no call was made and the
 *   remembered portal sessions were left as they were. See the `skipCrossSiteGet` option.
 */
export interface PortalLogoutOutcome {
  result: 'nothing_remembered' | 'ended' | 'deferred' | 'failed' | 'skipped_cross_site';
  portalSessions: PortalSessionOutcome[];
  /**
   * Set when reading the remembered portal sessions failed (a resolver threw, no session was mounted), or
   * when a sign-out everywhere or `logoutCustomer()` could not read the registry (a
   * `PortalSessionRegistryError`; the portal sessions it could read were still ended).
   */
  error?: Error;
  /** Set when the store could not be read, or could not be written after the logout, or the registry read. */
  reason?: PortalLogoutReason;
  durationMs: number;
}

/** Sums up per-portal-session outcomes into the logout's result. Invalid IDs do not make a logout fail. */
export function summarize(portalSessions: PortalSessionOutcome[], error?: Error): PortalLogoutOutcome['result'] {
  if (error || portalSessions.some((o) => o.status === 'failed')) return 'failed';
  if (portalSessions.some((o) => o.status === 'deferred')) return 'deferred';
  return portalSessions.some((o) => ENDED_STATUSES.has(o.status)) ? 'ended' : 'nothing_remembered';
}

/**
 * Gives a portal session's outcome (a new object) its raw ID as a non-enumerable property, so that an app
 * that answers `res.json(res.locals.chargebeePortalLogout)` or logs the outcome as JSON does not write it out.
 */
export function hideId<T extends object>(outcome: T, id: string | undefined): T {
  if (id !== undefined) Object.defineProperty(outcome, 'id', { value: id, enumerable: false, writable: false });
  return outcome;
}

/**
 * Passed to `next(err)` when the middleware is set to fail closed and a portal session could not be
 * logged out. Its message names no portal session; `outcome` holds the details for the app.
 */
export class PortalLogoutError extends Error {
  /** HTTP status an error handler may answer with. */
  readonly status = 502;
  readonly statusCode = 502;
  /** Tells error handlers such as http-errors' users not to show the message to the client. */
  readonly expose = false;
  /**
   * The logout's outcome, as also put on `res.locals.chargebeePortalLogout`. Not enumerable: it holds raw
   * portal-session IDs, and an error handler that logs the error (pino, `console.error`, `JSON.stringify`)
   * must not print them.
   */
  declare readonly outcome: PortalLogoutOutcome;

  constructor(message: string, outcome: PortalLogoutOutcome) {
    super(message);
    this.name = 'PortalLogoutError';
    Object.defineProperty(this, 'outcome', { value: outcome, enumerable: false, writable: false, configurable: true });
  }
}
