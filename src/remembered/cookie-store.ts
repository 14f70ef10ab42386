import type { Request, Response } from 'express';
import { readCookie, signCookieValue, unsignCookieValue } from './cookie-signature';
import type { RememberedPortalSession } from './list';
import type { InternalStore } from './store';

/** Settings of the `'cookie'` store. The cookie is always `HttpOnly` and `SameSite=Lax`. */
export interface PortalSessionCookieOptions {
  /** Cookie name. Default `chargebee_portal_sessions`. */
  name?: string;
  /**
   * Secret(s) that sign the cookie (the first signs, all verify, for rotation). Default: the secret given
   * to cookie-parser (`req.secret`). With neither, the store refuses to write (`remember()` throws) and
   * reads no cookie (logged), unless `signed: false`.
   */
  secret?: string | string[];
  /**
   * `false` keeps the list in an unsigned cookie, with a warning logged at setup. Default `true`.
   * Warning: unsigned, a user can edit the list and make your server send logouts for portal-session IDs
   * of their choosing (up to `maxRemembered` per request) under their own origin headers.
   */
  signed?: boolean;
  /** Lifetime in milliseconds (`Max-Age`). Default none: a browser-session cookie. */
  maxAge?: number;
  /** `Secure` flag: `true`, `false`, or `'auto'` to follow `req.secure`. Default `'auto'`. */
  secure?: boolean | 'auto';
  /** `Domain` attribute. Default none (this host only). */
  domain?: string;
  /** `Path` attribute. Default `/`. */
  path?: string;
}

export const DEFAULT_COOKIE_NAME = 'chargebee_portal_sessions';

const MISSING_SECRET =
  'the cookie store has no secret to sign with: set cookie.secret, mount cookieParser(secret) before this ' +
  'middleware, or set cookie.signed: false to accept an unsigned cookie';

// What this request's response will set, so a second write or a later read in the same request sees it.
const pending = new WeakMap<Request, RememberedPortalSession[]>();

/** Keeps remembered portal sessions in a cookie, with or without cookie-parser. */
export function cookieStore(options: PortalSessionCookieOptions): InternalStore {
  const name = options.name ?? DEFAULT_COOKIE_NAME;
  const configuredSecrets = options.secret === undefined ? undefined : ([] as string[]).concat(options.secret);
  const signed = options.signed !== false;
  const secretsFor = (req: Request): string[] => {
    if (configuredSecrets) return configuredSecrets;
    if (!signed) return [];
    const fromParser = (req as unknown as { secret?: unknown }).secret;
    return typeof fromParser === 'string' && fromParser !== '' ? [fromParser] : [];
  };
  const attributes = (req: Request): string => {
    let text = `; Path=${options.path ?? '/'}; HttpOnly; SameSite=Lax`;
    if (options.domain) text += `; Domain=${options.domain}`;
    if (options.secure === true || (options.secure !== false && req.secure)) text += '; Secure';
    return text;
  };

  return {
    kind: 'cookie',
    async read(req) {
      if (pending.has(req)) return { value: pending.get(req) };
      const raw = readCookie(req.headers.cookie, name);
      if (raw === undefined) return { value: undefined };
      const secrets = secretsFor(req);
      let payload: string | false = raw;
      if (signed && secrets.length === 0) return { value: undefined, problem: MISSING_SECRET };
      if (raw.startsWith('s:')) {
        if (secrets.length === 0) return { value: undefined, problem: 'cookie is signed but cookie.signed is false' };
        payload = unsignCookieValue(raw, secrets);
        if (payload === false)
          return { value: undefined, problem: 'cookie signature does not match (tampered, or the secret changed)' };
      } else if (secrets.length > 0) {
        return { value: undefined, problem: 'cookie is not signed although a secret is configured' };
      }
      if (!payload.startsWith('j:')) return { value: undefined, problem: 'cookie value is not in the expected format' };
      try {
        return { value: JSON.parse(payload.slice(2)) };
      } catch {
        return { value: undefined, problem: 'cookie value is not valid JSON' };
      }
    },
    write(req, res, portalSessions) {
      pending.set(req, portalSessions);
      let cookie: string;
      if (portalSessions.length === 0) {
        cookie = `${name}=${attributes(req)}; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT`;
      } else {
        const payload = `j:${JSON.stringify(portalSessions)}`;
        const secret = secretsFor(req)[0];
        if (signed && secret === undefined) throw new TypeError(`remember: ${MISSING_SECRET}`);
        const value = secret === undefined ? payload : signCookieValue(payload, secret);
        cookie = `${name}=${encodeURIComponent(value)}${attributes(req)}`;
        if (options.maxAge !== undefined) {
          cookie += `; Max-Age=${Math.floor(options.maxAge / 1000)}; Expires=${new Date(Date.now() + options.maxAge).toUTCString()}`;
        }
      }
      setCookie(res, name, cookie);
    },
  };
}

/** Adds a Set-Cookie header, replacing one for the same cookie set earlier in this response. */
function setCookie(res: Response, name: string, cookie: string): void {
  const existing = res.getHeader('Set-Cookie');
  const list = existing === undefined ? [] : Array.isArray(existing) ? existing : [String(existing)];
  res.setHeader('Set-Cookie', [...list.filter((c) => !c.startsWith(`${name}=`)), cookie]);
}
