import crypto, { createHash, createHmac } from 'node:crypto';

/** Longest portal-session ID Chargebee issues. */
export const PORTAL_SESSION_ID_MAX_LENGTH = 70;
/** Longest business-entity ID this package will put in a header. */
export const BUSINESS_ENTITY_ID_MAX_LENGTH = 100;
/** Longest Chargebee customer ID (Chargebee's own limit). */
export const CUSTOMER_ID_MAX_LENGTH = 50;

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
 * Why `value` is not a plausible Chargebee customer ID, or `undefined` when it is one: 1 to 50 visible
 * ASCII characters (no whitespace, control or non-ASCII characters).
 */
export function customerIdProblem(value: unknown): string | undefined {
  if (typeof value !== 'string') return `must be a string, got ${value === null ? 'null' : typeof value}`;
  if (value === '') return 'must not be empty';
  if (value.length > CUSTOMER_ID_MAX_LENGTH) return `must be at most ${CUSTOMER_ID_MAX_LENGTH} characters`;
  if (/\s/.test(value)) return 'must not contain whitespace';
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(value)) return 'must not contain control characters';
  if (/[^\u0021-\u007e]/.test(value)) return 'must be ASCII';
  return undefined;
}

/** True when `value` is a plausible Chargebee customer ID (see {@link customerIdProblem}). */
export function isValidCustomerId(value: unknown): value is string {
  return customerIdProblem(value) === undefined;
}

/** Throws a `TypeError` that starts with `where` when `value` is not a plausible customer ID. */
export function checkCustomerId(value: unknown, where: string): asserts value is string {
  const problem = customerIdProblem(value);
  if (problem !== undefined) throw new TypeError(`${where}: the customer ID ${problem} (a Chargebee customer ID)`);
}

/** Throws a TypeError naming `where` unless `value` is `undefined` or a valid business-entity ID. */
export function checkBusinessEntityId(value: unknown, where: string): asserts value is string | undefined {
  if (value !== undefined && !isValidBusinessEntityId(value))
    throw new TypeError(`${where}: businessEntityId must be letters, digits, "_" or "-" (at most 100)`);
}

/**
 * A short, stable, non-reversible tag for a portal-session ID, for logs: the raw ID is a bearer
 * reference to a customer's portal and never goes to a log.
 */
export function hashPortalSessionId(value: unknown): string {
  return sha256Hex(typeof value === 'string' ? value : describe(value)).slice(0, 12);
}

/** `crypto.hash` where Node has it (20.12+: one call, no Hash object), else a Hash. */
const oneShot = (crypto as { hash?: (algorithm: string, data: string) => string }).hash;
function sha256Hex(text: string): string {
  return oneShot ? oneShot('sha256', text) : createHash('sha256').update(text).digest('hex');
}

/**
 * A function giving a short tag of a customer ID, for logs: apps often use their own user IDs or emails as
 * customer IDs, which a dictionary of plain hashes would give back, so the tag is keyed by a secret of the
 * deployment (`secret`: the API key, never stored here as is). The same customer gets the same tag within a
 * deployment, another one elsewhere.
 */
export function customerHasher(secret: string): (customerId: string) => string {
  const key = createHash('sha256').update(`chargebee-portal-logout customer tag\n${secret}`).digest();
  return (customerId) => createHmac('sha256', key).update(customerId).digest('hex').slice(0, 16);
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
