import type { Request, Response } from 'express';
import { readCookies, signCookieValue, unsignCookieValue } from './cookie-signature';
import type { RememberedPortalSession } from './list';
import type { InternalStore, StoreRead, StoreWrite } from './store';
import { epochNow } from '../base/time';

/** Settings of the `'cookie'` store. The cookie is always `HttpOnly` and `SameSite=Lax`. */
export interface PortalSessionCookieOptions {
  /** Cookie name. Default `chargebee_portal_sessions`. */
  name?: string;
  /**
   * Secret(s) that sign the cookie (the first signs, all verify, for rotation). Default: the secrets given
   * to cookie-parser (`cookieParser([newSecret, oldSecret])`: the first signs, a cookie signed with any of
   * them is read). With neither, the store refuses to write (`remember()` throws) and reads no cookie
   * (logged), unless `signed: false`.
   */
  secret?: string | string[];
  /**
   * `false` keeps the list in an unsigned cookie, with a warning logged at setup. Default `true`.
   * Warning: unsigned, a user can edit the list and make your server send logouts for portal-session IDs
   * of their choosing (up to 10 per request) under their own origin headers.
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
/**
 * Largest `Set-Cookie` this store writes, attributes included. Browsers keep cookies up to 4096 bytes and
 * drop larger ones silently; Node refuses request headers over 16 KB.
 */
export const MAX_COOKIE_BYTES = 4096;

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
  /**
   * What cookie-parser verified of the first cookie of this name, with every secret it was given (it
   * exposes only the first as `req.secret`): the payload, parsed, or `undefined`.
   */
  const verifiedByParser = (req: Request): unknown => {
    if (configuredSecrets || !signed) return undefined;
    const verified = (req as unknown as { signedCookies?: Record<string, unknown> }).signedCookies?.[name];
    if (typeof verified === 'string') return parsePayload(verified);
    return typeof verified === 'object' && verified !== null ? verified : undefined;
  };
  const attributes = (req: Request): string => {
    let text = `; Path=${options.path ?? '/'}; HttpOnly; SameSite=Lax`;
    if (options.domain) text += `; Domain=${options.domain}`;
    if (options.secure === true || (options.secure !== false && req.secure)) text += '; Secure';
    return text;
  };

  /** One cookie value read: the list it holds, or why it is unusable. */
  const judge = (raw: string, secrets: string[], parsed: unknown): StoreRead => {
    let payload: string | false = raw;
    if (parsed === undefined && signed && secrets.length === 0) return { value: undefined, problem: MISSING_SECRET };
    if (parsed !== undefined) {
      // cookie-parser checked the signature with all of its secrets.
    } else if (raw.startsWith('s:')) {
      if (secrets.length === 0) return { value: undefined, problem: 'cookie is signed but cookie.signed is false' };
      payload = unsignCookieValue(raw, secrets);
      if (payload === false)
        return { value: undefined, problem: 'cookie signature does not match (tampered, or the secret changed)' };
    } else if (secrets.length > 0) {
      return { value: undefined, problem: 'cookie is not signed although a secret is configured' };
    }
    if (parsed === undefined && !payload.startsWith('j:'))
      return { value: undefined, problem: 'cookie value is not in the expected format' };
    const body = parsed ?? parsePayload(payload);
    if (body === undefined) return { value: undefined, problem: 'cookie value is not valid JSON' };
    // The name is part of what is signed: a signed value of another cookie of the app cannot be put in this one.
    const { n, p } = body as { n?: unknown; p?: unknown };
    if (n !== name || !Array.isArray(p))
      return { value: undefined, problem: "cookie value is not in the expected format (or is another cookie's)" };
    return { value: p };
  };
  const serialize = (req: Request, portalSessions: RememberedPortalSession[]): string => {
    if (portalSessions.length === 0)
      return `${name}=${attributes(req)}; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT`;
    const payload = cookiePayload(name, portalSessions);
    const secret = secretsFor(req)[0];
    if (signed && secret === undefined) throw new TypeError(`remember: ${MISSING_SECRET}`);
    const value = secret === undefined ? payload : signCookieValue(payload, secret);
    let cookie = `${name}=${encodeURIComponent(value)}${attributes(req)}`;
    if (options.maxAge !== undefined) {
      cookie += `; Max-Age=${Math.floor(options.maxAge / 1000)}; Expires=${new Date(epochNow() + options.maxAge).toUTCString()}`;
    }
    return cookie;
  };

  return {
    kind: 'cookie',
    read(req) {
      if (pending.has(req)) return { value: pending.get(req) };
      const values = readCookies(req.headers.cookie, name);
      if (values.length === 0) return { value: undefined };
      // Several cookies of this name (another path or domain, one tossed in from a sibling subdomain): the
      // portal sessions of every valid one are logged out; an invalid one is ignored.
      const secrets = secretsFor(req);
      const parsed = verifiedByParser(req);
      let first: StoreRead | undefined;
      const lists: unknown[][] = [];
      values.forEach((raw, i) => {
        // cookie-parser keeps the first cookie of a name: what it verified is that one.
        const read = judge(raw, secrets, i === 0 ? parsed : undefined);
        if (read.problem === undefined) lists.push(read.value as unknown[]);
        else first ??= read;
      });
      if (lists.length === 0) return first as StoreRead;
      return { value: lists.length === 1 ? lists[0] : lists.flat() };
    },
    write(req, res, portalSessions): StoreWrite | undefined {
      // The oldest entries go first when the cookie would be too large for a browser to keep.
      let kept = portalSessions;
      let cookie = serialize(req, kept);
      while (kept.length > 0 && Buffer.byteLength(cookie) > MAX_COOKIE_BYTES) {
        kept = kept.slice(1);
        cookie = serialize(req, kept);
      }
      pending.set(req, kept);
      setCookie(res, name, cookie);
      return kept.length < portalSessions.length ? { dropped: portalSessions.length - kept.length } : undefined;
    },
  };
}

/** Adds a Set-Cookie header, replacing one for the same cookie set earlier in this response. */
function setCookie(res: Response, name: string, cookie: string): void {
  const existing = res.getHeader('Set-Cookie');
  const list = existing === undefined ? [] : Array.isArray(existing) ? existing : [String(existing)];
  res.setHeader('Set-Cookie', [...list.filter((c) => !c.startsWith(`${name}=`)), cookie]);
}

/**
 * The value this store writes before signing: `j:` and JSON of the cookie's name and its list (a value
 * cookie-parser reads as JSON too). The name makes the signature the cookie's own.
 */
export function cookiePayload(name: string, portalSessions: unknown): string {
  return `j:${JSON.stringify({ n: name, p: portalSessions })}`;
}

function parsePayload(payload: string): unknown {
  if (!payload.startsWith('j:')) return undefined;
  try {
    return JSON.parse(payload.slice(2));
  } catch {
    return undefined;
  }
}
