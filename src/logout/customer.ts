import { checkBusinessEntityId, checkCustomerId } from '../base/identifiers';
import {
  deviceFromUserAgent,
  emailHeaders,
  eventSuppressionHeaders,
  normalizeIp,
  ORIGIN_HEADERS,
} from '../base/origin-headers';
import type { EventSuppression } from '../base/origin-headers';

/** `logoutCustomer()`: its options, checked at the call, and the headers of a logout made without a request. */

/** Options of `logoutCustomer()`. */
export interface LogoutCustomerOptions {
  /**
   * End only the portal sessions registered with this business entity. Default: every portal session of the
   * customer on the default site (the site of `baseUrl`), whatever its entity.
   */
  businessEntityId?: string;
  /**
   * Origin headers to send, when the logout has an origin (an admin's or the customer's request). Default
   * none: a logout made by a job is not the customer's doing. Each value is checked like the middleware's.
   */
  originHeaders?: { ip?: string; device?: string; email?: string };
}

const ORIGIN_OPTIONS = new Set(['ip', 'device', 'email']);

/** The `chargebee-*` headers of a `logoutCustomer()` call; throws a `TypeError` for a bad option. */
export function customerLogoutHeaders(
  suppressEvents: EventSuppression,
  options: LogoutCustomerOptions,
): Record<string, string> {
  const fail = (message: string): never => {
    throw new TypeError(`logoutCustomer: ${message}`);
  };
  if (typeof options !== 'object' || options === null) fail('options must be an object');
  for (const key of Object.keys(options))
    if (key !== 'businessEntityId' && key !== 'originHeaders')
      fail(`unknown option ${key} (known: businessEntityId, originHeaders)`);
  checkBusinessEntityId(options.businessEntityId, 'logoutCustomer');
  const headers: Record<string, string> = { ...eventSuppressionHeaders(suppressEvents) };
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
