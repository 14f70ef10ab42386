/** The public types of the Chargebee emulator: its options, faults, records and the objects it serves. */
import type { PortalSession } from '../../chargebee/client';

// The emulator speaks the same portal-session shapes as the client reads.
export type { ChargebeePortalSessionState, LinkedCustomer } from '../../chargebee/client';

/**
 * A per-site rate limit, as Chargebee enforces one per site and minute. Fixed windows: a window opens
 * with the first API request to the site after the previous window ended and lasts `windowMs`; past
 * `requests` requests in it, the site answers 429 `api_request_limit_exceeded` with `Retry-After` (whole
 * seconds until the window ends, at least 1).
 */
export interface EmulatorRateLimit {
  /** API requests accepted per window; `0` refuses every request. */
  requests: number;
  /** Length of a window in milliseconds. Default `60_000`. */
  windowMs?: number;
}

/** API requests of one site that reached the rate limiter (faulted requests do not). */
export interface EmulatorRateLimitStats {
  /** Requests let through (all of them when the site has no limit). */
  accepted: number;
  /** Requests answered 429 by the rate limit. */
  limited: number;
}

export interface EmulatorSiteConfig {
  /** API keys this site accepts (HTTP Basic user name, empty password). */
  apiKey: string | string[];
  /** Default: no limit. Change it at run time with `emulator.setRateLimit()`. */
  rateLimit?: EmulatorRateLimit;
}

export interface EmulatorOptions {
  /** Sites and their API keys. Default `{ 'acme-test': { apiKey: 'test_emulator_key' } }`. */
  sites?: Record<string, EmulatorSiteConfig>;
  /** Default `'127.0.0.1'`. */
  host?: string;
  /** Default `0`: an ephemeral port. */
  port?: number;
  /** Most recorded API requests kept; the oldest are dropped. Default `10_000`. */
  recordLimit?: number;
  /** Base of `access_url`. Default: the listening URL. */
  publicUrl?: string;
  /** How long an idempotency key replays its first answer. Default 30 minutes, as Chargebee. */
  idempotencyWindowMs?: number;
  /** Most idempotency keys remembered; the oldest are dropped. Default `50_000`. */
  idempotencyCacheLimit?: number;
}

export interface RecordedRequest {
  method: string;
  /** The request target as received, e.g. `/acme-test/api/v2/portal_sessions/portal_x/logout`. */
  path: string;
  /** The `{site}` path segment; `undefined` when the path is not `/{site}/api/v2/...`. */
  site: string | undefined;
  /** As received, lower-case names, `authorization` included. */
  headers: Record<string, string | string[] | undefined>;
  body: string;
  /** `Date.now()` when the request body had been read. */
  at: number;
}

/** Chargebee's `portal_session` object as the emulator serves it: always with expiry and linked customers. */
export type EmulatedPortalSession = PortalSession &
  Required<Pick<PortalSession, 'expires_at' | 'linked_customers'>> & { object: 'portal_session' };

/** Chargebee's error body, legacy fields included. */
export interface ChargebeeErrorBody {
  message: string;
  type?: string;
  api_error_code: string;
  param?: string;
  http_status_code: number;
  error_code: string;
  error_msg: string;
  error_param?: string;
}

/**
 * A fault applies to API requests only, before the site, the rate limit and the API key are checked, as
 * a proxy's would. Faults are tried in the order they were added; the first that matches applies.
 */
export interface EmulatorFault {
  /**
   * Which API requests the fault applies to; every field given must match. `path` is the part after
   * `/api/v2`, e.g. `/portal_sessions/portal_x/logout` (a string matches exactly, a RegExp is tested).
   */
  match?: { method?: string; path?: string | RegExp; site?: string };
  /** How many matching requests it applies to. Default: unlimited. */
  times?: number;
  /** Delay before answering; then the other effects, or normal processing when there are none. */
  latencyMs?: number;
  /** Answer with a Chargebee error body with this status. */
  status?: number;
  apiErrorCode?: string;
  message?: string;
  type?: string;
  /** Adds `Retry-After: N` (seconds). Without `status` the status is 429. */
  retryAfter?: number;
  /**
   * Adds this exact `Retry-After` value, e.g. `'3000000'`, a 400-digit number, `'soon'` or an HTTP date.
   * Printable ASCII only. Without `status` the status is 429. Not with `retryAfter`.
   */
  retryAfterRaw?: string;
  /** Answer `status` (default 502) with this raw body, e.g. a proxy's HTML page. */
  rawBody?: string;
  /** Content type of `rawBody`. Default `text/html; charset=utf-8`. */
  contentType?: string;
  /**
   * Answer `status` (default 500) with a body of exactly this many bytes (at most 1 GiB), streamed with a
   * `Content-Length`: the Chargebee error body with its `message` padded with spaces (valid JSON), or, when
   * fewer bytes are asked than that error takes, its first bytes. Not with `rawBody`.
   */
  bodyBytes?: number;
  /**
   * Send the answer (the normal one or the fault's error) with `Content-Encoding: gzip`, compressed, with
   * its `Content-Length`. With a large `bodyBytes` it is a gzip bomb: the padding compresses about 1,000
   * to 1, so 1 MB on the wire inflates to about 1 GB.
   */
  gzip?: boolean;
  /**
   * Send the status line and headers at once, then the body (the normal answer or the fault's error)
   * `bytes` bytes (default 1) every `intervalMs` milliseconds. The trickle stops when the client goes
   * away or the emulator closes.
   */
  trickle?: { intervalMs: number; bytes?: number };
  /**
   * Answer `status` (default 401) with a Chargebee error whose fields repeat what the request sent, as a
   * careless upstream might:
   * - `message`: the raw `Authorization` header, the API key decoded from it and upper-cased, the raw and
   *   decoded portal-session ID of the path, `chargebee-request-origin-user` as sent, upper-cased and
   *   percent-encoded, and `chargebee-request-origin-user-encoded` as sent and decoded from Base64;
   * - `api_error_code`: the decoded API key (or `api_authentication_failed` without one);
   * - `type`: the portal-session ID upper-cased (or `invalid_request` without one);
   * - `param`: the user's email percent-encoded, from either origin-user header (absent without one).
   * The legacy `error_*` fields repeat them. Not with `apiErrorCode`, `message`, `type` or `rawBody`.
   */
  echo?: boolean;
  /**
   * `before-response`: destroy the socket before any byte; the request is not processed.
   * `mid-response`: process the request (or build the error given above), send the headers and part
   * of the body, then destroy the socket: the change happened but the client cannot know it.
   */
  drop?: 'before-response' | 'mid-response';
  /** Never answer; the socket stays open until the client gives up or `close()`. */
  hang?: boolean;
}

export interface CreateSessionInput {
  /** Default: the first configured site. */
  site?: string;
  customerId: string;
  email?: string;
  redirectUrl?: string;
  /** Unix seconds; lets a test seed an access URL that has expired already. Default: now. */
  createdAt?: number;
}

/** What opening an access URL led to. */
export type PortalPageOutcome = 'logged_in' | 'already_used' | 'ended' | 'expired' | 'not_found';
