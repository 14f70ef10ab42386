import type { ChargebeeError } from './errors';

/**
 * What happened to one remembered portal session at logout.
 * - `logged_out`: Chargebee ended it now.
 * - `already_logged_out`: it had ended before (the customer logged out in the portal, or an earlier logout).
 * - `not_found`: Chargebee does not know it (`resource_not_found`); there is nothing left to end.
 * - `invalid_id`: the remembered value is not a portal-session ID; it was not sent.
 * - `failed`: Chargebee could not be asked, or refused; `error` says why. The portal session may still be open.
 */
export type PortalSessionStatus = 'logged_out' | 'already_logged_out' | 'not_found' | 'invalid_id' | 'failed';

/** Statuses after which the portal session is known to be unusable, so its ID is forgotten. */
export const ENDED_STATUSES: ReadonlySet<PortalSessionStatus> = new Set(['logged_out', 'already_logged_out', 'not_found']);

/** The outcome for one portal session. */
export interface PortalSessionOutcome {
  status: PortalSessionStatus;
  /** The portal-session ID; absent when it was invalid. Treat as a secret: do not log it. */
  id?: string;
  /** A short hash of the remembered value, safe to log. */
  idHash: string;
  /** The business entity the logout was sent for, if any. */
  businessEntityId?: string;
  /** HTTP status Chargebee answered with, when it answered. */
  httpStatus?: number;
  /** Chargebee's `api_error_code`, when it answered with an error. */
  apiErrorCode?: string;
  /** The client error, for `failed` (and `not_found`). */
  error?: ChargebeeError;
  /** Time spent on this portal session, in milliseconds. */
  durationMs: number;
}

/**
 * The outcome of one logout, put on `res.locals.chargebeePortalLogout` for the app's own handler.
 * - `nothing_remembered`: no portal session was remembered for this user; no call was made.
 * - `ended`: every valid remembered portal session is logged out (or was already, or is unknown).
 * - `failed`: at least one could not be logged out, or the remembered IDs could not be read (`error`).
 */
export interface PortalLogoutOutcome {
  result: 'nothing_remembered' | 'ended' | 'failed';
  portalSessions: PortalSessionOutcome[];
  /** Set when reading the remembered portal sessions failed (a resolver threw, no session was mounted). */
  error?: Error;
  durationMs: number;
}

/** Sums up per-portal-session outcomes into the logout's result. Invalid IDs do not make a logout fail. */
export function summarize(portalSessions: PortalSessionOutcome[], error?: Error): PortalLogoutOutcome['result'] {
  if (error || portalSessions.some((o) => o.status === 'failed')) return 'failed';
  return portalSessions.some((o) => ENDED_STATUSES.has(o.status)) ? 'ended' : 'nothing_remembered';
}
