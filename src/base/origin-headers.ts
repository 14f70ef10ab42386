import { isIP } from 'node:net';

/** Header names Chargebee reads to learn where a call came from. */
export const ORIGIN_HEADERS = {
  ip: 'chargebee-request-origin-ip',
  device: 'chargebee-request-origin-device',
  user: 'chargebee-request-origin-user',
  userEncoded: 'chargebee-request-origin-user-encoded',
  businessEntity: 'chargebee-business-entity-id',
  webhook: 'chargebee-event-webhook',
  email: 'chargebee-event-email',
  actions: 'chargebee-event-actions',
} as const;

/** Longest device description sent; user agents beyond it are cut. */
export const DEVICE_MAX_LENGTH = 256;
/** Longest email address sent (RFC 5321's path limit); longer values are not addresses and are dropped. */
export const EMAIL_MAX_LENGTH = 254;

// eslint-disable-next-line no-control-regex
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f]/;
const PRINTABLE_ASCII = /^[\u0020-\u007e]*$/;
const NOT_PRINTABLE_ASCII = /[^\u0020-\u007e]+/g;

/**
 * The client IP as Chargebee wants it: a valid IPv4 or IPv6 address, with IPv4-mapped IPv6
 * (`::ffff:203.0.113.7`) written as plain IPv4 and any zone index (`%eth0`) removed.
 * Anything that is not an IP address gives `undefined`.
 */
export function normalizeIp(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  let ip = value.trim();
  const zone = ip.indexOf('%');
  if (zone !== -1) ip = ip.slice(0, zone);
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(ip);
  if (mapped && isIP(mapped[1]) === 4) return mapped[1];
  return isIP(ip) === 0 ? undefined : ip.toLowerCase();
}

/**
 * A device description from a User-Agent: visible ASCII only (control characters and other bytes become
 * one space), trimmed, at most {@link DEVICE_MAX_LENGTH} characters. Empty gives `undefined`.
 */
export function deviceFromUserAgent(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  const cleaned = value.replace(NOT_PRINTABLE_ASCII, ' ').replace(/ {2,}/g, ' ').trim();
  return cleaned === '' ? undefined : cleaned.slice(0, DEVICE_MAX_LENGTH).trimEnd();
}

/**
 * The headers that name the customer: an ASCII address goes as is in `chargebee-request-origin-user`;
 * any other goes as Base64 of its UTF-8 bytes in `chargebee-request-origin-user-encoded`, and then no
 * `-user` header is sent. A value with control characters (CR, LF, ...), an empty one or one longer than
 * {@link EMAIL_MAX_LENGTH} characters is not an address: no header is sent.
 */
export function emailHeaders(value: unknown): Record<string, string> {
  if (typeof value !== 'string') return {};
  const email = value.trim();
  if (email === '' || email.length > EMAIL_MAX_LENGTH || CONTROL_CHARACTERS.test(email)) return {};
  if (PRINTABLE_ASCII.test(email)) return { [ORIGIN_HEADERS.user]: email };
  return { [ORIGIN_HEADERS.userEncoded]: Buffer.from(email.normalize('NFC'), 'utf8').toString('base64') };
}

/** Which Chargebee side effects of the logout's events to skip. Each `true` sends `all-disabled`. */
export interface EventSuppression {
  /** Skip webhooks for the events of the logout (`chargebee-event-webhook`). Default false. */
  webhooks?: boolean;
  /** Skip emails for the events of the logout (`chargebee-event-email`). Default false. */
  emails?: boolean;
  /** Skip all actions for the events of the logout (`chargebee-event-actions`). Default false. */
  actions?: boolean;
}

/** The `chargebee-event-*` headers for a suppression setting. */
export function eventSuppressionHeaders(suppress: EventSuppression | undefined): Record<string, string> {
  const headers: Record<string, string> = {};
  if (suppress?.webhooks) headers[ORIGIN_HEADERS.webhook] = 'all-disabled';
  if (suppress?.emails) headers[ORIGIN_HEADERS.email] = 'all-disabled';
  if (suppress?.actions) headers[ORIGIN_HEADERS.actions] = 'all-disabled';
  return headers;
}

/** True when `value` may be sent as an HTTP header value: visible ASCII and spaces, nothing else. */
export function isSafeHeaderValue(value: unknown): value is string {
  return typeof value === 'string' && value !== '' && PRINTABLE_ASCII.test(value);
}
