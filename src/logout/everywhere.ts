import type { Request } from 'express';
import type { Log } from '../logging';
import { appValue } from '../middleware/request-values';
import { checkCustomerId, isValidBusinessEntityId, isValidCustomerId } from '../identifiers';
import {
  deviceFromUserAgent,
  emailHeaders,
  eventSuppressionHeaders,
  normalizeIp,
  ORIGIN_HEADERS,
} from '../middleware/origin-headers';
import type { Settings } from '../options/normalize';
import type { LogoutCustomerOptions } from '../options/types';
import type { OpenPortalSessions } from '../registry/open-portal-sessions';

/**
 * Signing a customer out everywhere: which customer a request is for, whether this logout reaches the
 * customer's other portal sessions, and the headers of a logout made without a request.
 */

const ORIGIN_OPTIONS = new Set(['ip', 'device', 'email']);

/** The `chargebee-*` headers of a `logoutCustomer()` call; throws a `TypeError` for a bad option. */
export function customerLogoutHeaders(settings: Settings, options: LogoutCustomerOptions): Record<string, string> {
  const fail = (message: string): never => {
    throw new TypeError(`logoutCustomer: ${message}`);
  };
  if (typeof options !== 'object' || options === null) fail('options must be an object');
  for (const key of Object.keys(options))
    if (key !== 'businessEntityId' && key !== 'originHeaders')
      fail(`unknown option ${key} (known: businessEntityId, originHeaders)`);
  if (options.businessEntityId !== undefined && !isValidBusinessEntityId(options.businessEntityId))
    fail('businessEntityId must be letters, digits, "_" or "-" (at most 100)');
  const headers: Record<string, string> = { ...eventSuppressionHeaders(settings.suppressEvents) };
  const origin = options.originHeaders;
  if (origin === undefined) return headers;
  if (typeof origin !== 'object' || origin === null) fail('originHeaders must be an object');
  for (const key of Object.keys(origin))
    if (!ORIGIN_OPTIONS.has(key)) fail(`unknown option originHeaders.${key} (known: ip, device, email)`);
  if (origin.ip !== undefined) {
    const ip = normalizeIp(origin.ip);
    if (ip === undefined) fail('originHeaders.ip must be an IPv4 or IPv6 address');
    else headers[ORIGIN_HEADERS.ip] = ip;
  }
  if (origin.device !== undefined) {
    const device = deviceFromUserAgent(origin.device);
    if (device === undefined) fail('originHeaders.device must be a non-empty string');
    else headers[ORIGIN_HEADERS.device] = device;
  }
  if (origin.email !== undefined) {
    const email = emailHeaders(origin.email);
    if (Object.keys(email).length === 0)
      fail('originHeaders.email must be an email address (no control characters, at most 254 characters)');
    Object.assign(headers, email);
  }
  return headers;
}

/** Checks `logoutCustomer()`'s customer ID: a `TypeError` at the call for an implausible one. */
export function checkLogoutCustomerId(customerId: unknown): asserts customerId is string {
  checkCustomerId(customerId, 'logoutCustomer');
}

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
