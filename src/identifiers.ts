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
  const text = typeof value === 'string' ? value : JSON.stringify(value) ?? String(value);
  return createHash('sha256').update(text).digest('hex').slice(0, 12);
}
