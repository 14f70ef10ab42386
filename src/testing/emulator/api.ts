/**
 * The emulated Chargebee API under `/{site}/api/v2`: site lookup, rate limit, Basic auth, idempotency
 * keys, and create, retrieve and logout of portal sessions.
 */
import type { IncomingMessage } from 'node:http';
import { errorAnswer, jsonAnswer, MAX_BODY_BYTES, safeDecode, type Answer } from './http';
import type { Config, SiteState } from './options';
import type { RateLimiter } from './rate-limit';
import type { IdempotencyCache, SessionStore } from './state';

const MAX_IDEMPOTENCY_KEY_LENGTH = 100;

/** What the API works on; the emulator owns it. */
export interface ApiState {
  config: Config;
  sessions: SessionStore;
  idempotency: IdempotencyCache;
  rateLimits: RateLimiter;
}

export interface ApiRequest {
  req: IncomingMessage;
  method: string;
  /** The `{site}` path segment, when the path is `/{site}/api/v2/...`. */
  site: string | undefined;
  /** The path after `/api/v2`. */
  apiPath: string | undefined;
  /** `undefined` when the body was too large. */
  body: string | undefined;
}

/** Answers one API request as Chargebee would. */
export function answerApi(state: ApiState, request: ApiRequest): Answer {
  const { req, method, apiPath, body } = request;
  const site = request.site === undefined ? undefined : state.config.sites.get(request.site);
  if (!site || apiPath === undefined) {
    return errorAnswer(
      404,
      'site_not_found',
      request.site === undefined
        ? 'No Chargebee site in the path; API paths look like /{site}/api/v2/...'
        : 'This site does not exist in the emulator; check the site name in the base URL.',
    );
  }
  const retryAfterS = state.rateLimits.take(site.name);
  if (retryAfterS > 0) {
    return errorAnswer(
      429,
      'api_request_limit_exceeded',
      'Sorry, access has been blocked temporarily due to request count exceeding acceptable limits. Please try after some time.',
      'invalid_request',
      undefined,
      { 'retry-after': String(retryAfterS) },
    );
  }
  if (!authorised(site, req.headers.authorization)) {
    return errorAnswer(401, 'api_authentication_failed', 'Sorry, authentication failed. Invalid api key');
  }
  if (body === undefined)
    return errorAnswer(
      413,
      'request_too_large',
      `The request body exceeds ${MAX_BODY_BYTES} bytes.`,
      'invalid_request',
    );
  const key = req.headers['chargebee-idempotency-key'];
  if (method !== 'POST' || typeof key !== 'string') return route(state, req, method, site.name, apiPath, body);
  if (key.length === 0 || key.length > MAX_IDEMPOTENCY_KEY_LENGTH) {
    return errorAnswer(
      400,
      'param_wrong_value',
      `The chargebee-idempotency-key header must have 1 to ${MAX_IDEMPOTENCY_KEY_LENGTH} characters.`,
      'invalid_request',
      'chargebee-idempotency-key',
    );
  }
  const cacheKey = `${site.name}\n${key}`;
  const fingerprint = `${method} ${apiPath}\n${body}`;
  const now = Date.now();
  const cached = state.idempotency.get(cacheKey, now);
  if (cached) {
    if (cached.fingerprint !== fingerprint) {
      return errorAnswer(
        422,
        'unable_to_process_request',
        'This idempotency key was used for another request.',
        'invalid_request',
        'chargebee-idempotency-key',
      );
    }
    return { ...cached.answer, headers: { ...cached.answer.headers, 'chargebee-idempotency-replayed': 'true' } };
  }
  const answer = route(state, req, method, site.name, apiPath, body);
  state.idempotency.set(cacheKey, { at: now, fingerprint, answer });
  return answer;
}

/** The API key decoded from a Basic `Authorization` header, or `undefined` when it is not one. */
export function basicUser(header: string): { user: string; password: string } | undefined {
  const m = /^basic[ \t]+([A-Za-z0-9+/=]+)[ \t]*$/i.exec(header);
  if (!m) return undefined;
  const decoded = Buffer.from(m[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon === -1
    ? { user: decoded, password: '' }
    : { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

function authorised(site: SiteState, header: string | undefined): boolean {
  if (header === undefined) return false;
  if (site.authHeaders.has(header)) return true;
  const credentials = basicUser(header);
  // The password must be empty, as Chargebee documents it.
  return credentials !== undefined && credentials.password === '' && site.keys.has(credentials.user);
}

function route(state: ApiState, req: IncomingMessage, method: string, site: string, apiPath: string, body: string) {
  const parts = apiPath.split('/');
  if (parts[1] === 'portal_sessions') {
    if (parts.length === 2) {
      return method === 'POST' ? create(state, site, body) : methodNotAllowed('POST');
    }
    const id = safeDecode(parts[2]);
    if (parts.length === 3 && id) {
      return method === 'GET' || method === 'HEAD' ? retrieve(state, site, id) : methodNotAllowed('GET');
    }
    if (parts.length === 4 && id && parts[3] === 'logout') {
      return method === 'POST'
        ? logout(state, site, id, req.headers['chargebee-request-origin-ip'])
        : methodNotAllowed('POST');
    }
  }
  return errorAnswer(404, 'resource_not_found', 'The emulator has no such API endpoint.', 'invalid_request');
}

function create(state: ApiState, site: string, body: string): Answer {
  const form = new URLSearchParams(body);
  const customerId = form.get('customer[id]');
  if (!customerId) {
    return errorAnswer(400, 'param_wrong_value', 'customer[id] : cannot be blank', 'invalid_request', 'customer[id]');
  }
  const redirectUrl = form.get('redirect_url') || undefined;
  const email = form.get('customer[email]') || undefined;
  return jsonAnswer(200, { portal_session: state.sessions.create({ site, customerId, email, redirectUrl }).data });
}

function retrieve(state: ApiState, site: string, id: string): Answer {
  const stored = state.sessions.findInSite(site, id);
  return stored ? jsonAnswer(200, { portal_session: stored.data }) : notFound();
}

function logout(state: ApiState, site: string, id: string, originIp: string | string[] | undefined): Answer {
  const stored = state.sessions.findInSite(site, id);
  if (!stored) return notFound();
  state.sessions.logout(stored, typeof originIp === 'string' ? originIp : undefined);
  return jsonAnswer(200, { portal_session: stored.data });
}

function notFound(): Answer {
  return errorAnswer(404, 'resource_not_found', 'Sorry, we could not find that portal session.', 'invalid_request');
}

function methodNotAllowed(allow: string): Answer {
  return errorAnswer(
    405,
    'http_method_not_supported',
    `This endpoint only accepts ${allow}.`,
    'invalid_request',
    undefined,
    { allow },
  );
}
