import { createHash } from 'node:crypto';

/** Longest portal-session ID Chargebee issues. */
export const PORTAL_SESSION_ID_MAX_LENGTH = 70;
/** Longest business-entity ID this package will put in a header. */
export const BUSINESS_ENTITY_ID_MAX_LENGTH = 100;

const PORTAL_SESSION_ID = /^[A-Za-z0-9_-]{1,70}$/;
const BUSINESS_ENTITY_ID = /^[A-Za-z0-9_-]{1,100}$/;

/**
 * True when `value` can safely stand in a URL path as a portal-session ID: letters, digits, `_` and `-`,
 * 1 to 70 characters. Anything else (slashes, dots, percent signs, unicode) is refused.
 */
export function isValidPortalSessionId(value: unknown): value is string {
  return typeof value === 'string' && PORTAL_SESSION_ID.test(value);
}

/** True when `value` is a business-entity ID that can be sent as a header value. */
export function isValidBusinessEntityId(value: unknown): value is string {
  return typeof value === 'string' && BUSINESS_ENTITY_ID.test(value);
}

/**
 * A short, stable, non-reversible tag for a portal-session ID, for logs: the raw ID is a bearer
 * reference to a customer's portal and never goes to a log.
 */
export function hashPortalSessionId(value: unknown): string {
  return createHash('sha256')
    .update(typeof value === 'string' ? value : describe(value))
    .digest('hex')
    .slice(0, 12);
}

/** Any stored value as text, for hashing only: never throws (BigInt, cycles, objects without a prototype). */
function describe(value: unknown): string {
  try {
    const json = JSON.stringify(value);
    if (json !== undefined) return json;
  } catch {
    // fall through
  }
  try {
    return String(value);
  } catch {
    return `[${typeof value}]`;
  }
}
