import type { Request } from 'express';
import { isValidBusinessEntityId, isValidCustomerId } from '../base/identifiers';
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
 * At a logout with `everywhere`, the customer's portal sessions registered by other app sessions. The
 * customer is only ever the app's `customerId(req)`: never one named by what the user's own store holds (a
 * cookie the user may edit or replay). The sites are those of this app session's portal sessions and of the
 * request's default entity. `own` (this app session's entries) are left out. `entity` is what the app's
 * `businessEntityId(req)` gave, for the rest of the logout to use rather than ask again. `undefined` when
 * this logout is not one for everywhere.
 */
export async function othersToEnd(
  settings: Settings,
  open: OpenPortalSessions,
  req: Request,
  own: ReadonlyArray<{ id: unknown; businessEntityId?: string }>,
  deadline: number,
  log: Log,
): Promise<(Awaited<ReturnType<OpenPortalSessions['ofCustomer']>> & { entity: unknown }) | undefined> {
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
  const [customer, entity] = await Promise.all([
    customerOfRequest(settings, req, deadline, log),
    appValue(settings.defaultEntity, req, deadline, log, 'businessEntityId', false),
  ]);
  if (customer === undefined) {
    log.warn(
      {},
      "sign-out everywhere without a known customer (customerId gave none); only this app session's portal sessions are ended",
    );
    return { entries: [], entity };
  }
  const requestEntity = isValidBusinessEntityId(entity) ? entity : undefined;
  const sites = new Set([
    settings.siteFor(requestEntity),
    ...own.map((e) => settings.siteFor(e.businessEntityId ?? requestEntity)),
  ]);
  const ownIds = new Set(own.map((e) => e.id));
  const found = await open.ofCustomer([...sites], customer, deadline, log);
  return { ...found, entries: found.entries.filter((e) => !ownIds.has(e.id)), entity };
}
