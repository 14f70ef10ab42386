import type { Request } from 'express';
import { isValidCustomerId } from '../base/identifiers';
import type { Log } from '../base/logging';
import type { Settings } from '../options/build';
import type { OpenPortalSessions } from '../registry/open-portal-sessions';
import { appValue } from './request-values';

/** Signing out everywhere at a logout: which customer a request is for, and the customer's other portal sessions. */

/** The customer named by the app's `customerId(req)`, when it names a plausible one. */
export async function customerOfRequest(
  settings: Settings,
  req: Request,
  deadline: number,
  log: Log,
): Promise<string | undefined> {
  if (!settings.customerId) return undefined;
  const value = await appValue(settings.customerId, req, deadline, log, 'customerId', false, 'no customer is known');
  if (value === undefined || isValidCustomerId(value)) return value;
  log.warn({}, 'the customerId function gave a value that is not a customer ID; it is ignored');
  return undefined;
}

/**
 * At a logout with `everywhere`, the customer's portal sessions registered by other app sessions: the
 * customer is the app's `customerId(req)`, else every customer this app session remembered a portal session
 * for. `own` are this app session's IDs, left out. `undefined` when this logout is not one for everywhere.
 */
export async function othersToEnd(
  settings: Settings,
  open: OpenPortalSessions,
  req: Request,
  own: ReadonlyArray<{ id: unknown; customerId?: string }>,
  deadline: number,
  log: Log,
): Promise<Awaited<ReturnType<OpenPortalSessions['ofCustomers']>> | undefined> {
  if (!settings.everywhere) return undefined;
  const wanted = await appValue(
    settings.everywhere,
    req,
    deadline,
    log,
    'everywhere',
    false,
    "this logout ends only this app session's portal sessions",
  );
  if (wanted !== true) return undefined;
  const named = await customerOfRequest(settings, req, deadline, log);
  const customers = named !== undefined ? [named] : [...new Set(own.flatMap((e) => e.customerId ?? []))];
  if (customers.length === 0) {
    log.warn(
      {},
      'sign-out everywhere without a known customer (no customerId option, and no portal ' +
        "session of this app session names one); only this app session's portal sessions are ended",
    );
    return { entries: [] };
  }
  const ownIds = new Set(own.map((e) => e.id));
  const found = await open.ofCustomers(customers, deadline, log);
  return { ...found, entries: found.entries.filter((e) => !ownIds.has(e.id)) };
}
