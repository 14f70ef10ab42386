import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Cookie signing in the format of cookie-parser and Express's `res.cookie(..., { signed: true })`:
 * `s:` + value + `.` + Base64 HMAC-SHA256 without padding. A cookie this package signs with the same secret
 * shows up in `req.signedCookies` when the app also uses cookie-parser.
 */
export function signCookieValue(value: string, secret: string): string {
  return `s:${value}.${mac(value, secret)}`;
}

/** The value of a signed cookie when one of `secrets` signed it, else `false` (tampered, or not signed). */
export function unsignCookieValue(signed: string, secrets: readonly string[]): string | false {
  if (!signed.startsWith('s:')) return false;
  const dot = signed.lastIndexOf('.');
  if (dot < 2) return false;
  const value = signed.slice(2, dot);
  const given = Buffer.from(signed.slice(dot + 1));
  for (const secret of secrets) {
    const expected = Buffer.from(mac(value, secret));
    if (expected.length === given.length && timingSafeEqual(expected, given)) return value;
  }
  return false;
}

/** The decoded values of every cookie named `name` in a `Cookie` request header, in header order. */
export function readCookies(header: unknown, name: string): string[] {
  if (typeof header !== 'string') return [];
  const values: string[] = [];
  for (const pair of header.split(';')) {
    const eq = pair.indexOf('=');
    if (eq === -1 || pair.slice(0, eq).trim() !== name) continue;
    let raw = pair.slice(eq + 1).trim();
    if (raw.length >= 2 && raw.startsWith('"') && raw.endsWith('"')) raw = raw.slice(1, -1);
    try {
      values.push(decodeURIComponent(raw));
    } catch {
      values.push(raw);
    }
  }
  return values;
}

function mac(value: string, secret: string): string {
  return createHmac('sha256', secret).update(value).digest('base64').replace(/=+$/, '');
}
