import http from 'node:http';
import https from 'node:https';
import axios, { type AxiosInstance, type AxiosResponse } from 'axios';
import { ChargebeeApiError, ChargebeeError, ChargebeeNetworkError, ChargebeeTimeoutError } from './errors';
import { isValidPortalSessionId } from '../identifiers';
import { isSafeHeaderValue } from '../middleware/origin-headers';
import { VERSION } from '../version';

/** Default time allowed for one call: a person is waiting on logout, so seconds, not the SDK's 80 s. */
export const DEFAULT_TIMEOUT_MS = 5000;

const SITE_NAME = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/i;
const CHARGEBEE_HEADER_NAME = /^chargebee-[a-z0-9-]+$/;

/** Options of {@link ChargebeeClient}. */
export interface ChargebeeClientOptions {
  /** Chargebee site name (`acme` or `acme-test`); the base URL becomes `https://{site}.chargebee.com/api/v2`. */
  site?: string;
  /** API key. Sent only as the HTTP Basic user name; never logged or put in an error. */
  apiKey: string;
  /** Base URL up to and including `/api/v2`, for EU hosts, proxies or the emulator. Overrides `site`. */
  baseUrl?: string;
  /** Time allowed for one call in milliseconds. Default 5000. */
  timeoutMs?: number;
}

/** Per-call options. */
export interface CallOptions {
  /** Aborts the call; it then rejects with {@link ChargebeeTimeoutError}. */
  signal?: AbortSignal;
  /** Overrides the client's timeout for this call. */
  timeoutMs?: number;
}

/** A linked customer of a portal session. */
export interface LinkedCustomer {
  customer_id: string;
  email?: string;
  has_billing_address: boolean;
  has_payment_method: boolean;
  has_active_subscription: boolean;
}

/**
 * A portal session's `status` at Chargebee: `created` until its access URL is opened, then `logged_in`
 * until the customer or the app logs it out (`logged_out`). Chargebee also documents `not_yet_activated`
 * and `activated`.
 */
export type ChargebeePortalSessionState = 'created' | 'logged_in' | 'logged_out' | 'not_yet_activated' | 'activated';

/** Chargebee's portal-session object, as the API sends it (timestamps in Unix seconds). */
export interface PortalSession {
  id: string;
  token: string;
  access_url: string;
  redirect_url?: string;
  status: ChargebeePortalSessionState;
  created_at: number;
  expires_at?: number;
  customer_id: string;
  login_at?: number;
  logout_at?: number;
  login_ipaddress?: string;
  logout_ipaddress?: string;
  linked_customers?: LinkedCustomer[];
}

/** Parameters of {@link ChargebeeClient.create}. */
export interface CreatePortalSessionParams {
  /** The Chargebee customer the portal is for. */
  customerId: string;
  /** Where the portal's "back" link leads. */
  redirectUrl?: string;
  /** Where the customer lands after login instead of the portal's home. */
  forwardUrl?: string;
}

/** Headers for one call: `chargebee-*` names only, values visible ASCII. */
export type ChargebeeHeaders = Record<string, string | undefined>;

/**
 * For a `site` value that is the host name or URL of a Chargebee site (`acme-test.chargebee.com`,
 * `https://acme.chargebee.com/api/v2`), the site name in it.
 */
function siteNameFromHost(value: string): string | undefined {
  const m = /^(?:https?:\/\/)?([A-Za-z0-9][A-Za-z0-9-]*)\.chargebee\.com(?:[:/]|$)/i.exec(value.trim());
  return m ? m[1] : undefined;
}

/**
 * Builds the API base URL from a site name or an explicit base URL, refusing anything that would let a
 * value reach the host name unchecked. Throws `TypeError` naming `option`.
 */
export function resolveBaseUrl(site: string | undefined, baseUrl: string | undefined, option = 'baseUrl'): string {
  if (baseUrl !== undefined) {
    let url: URL;
    try {
      url = new URL(baseUrl);
    } catch {
      throw new TypeError(`option ${option} must be an absolute http(s) URL, got a value that is not a URL`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new TypeError(`option ${option} must use http or https, got ${url.protocol}`);
    }
    if (url.username || url.password || url.search || url.hash) {
      throw new TypeError(`option ${option} must not hold credentials, a query or a fragment`);
    }
    return url.href.replace(/\/+$/, '');
  }
  if (site === undefined) throw new TypeError('option site (or baseUrl) is required');
  if (!SITE_NAME.test(site)) {
    const named = siteNameFromHost(site);
    const hint =
      named !== undefined
        ? `: did you mean site: "${named}"?`
        : /^https?:\/\//i.test(site)
          ? ': for a full URL (EU host, proxy, emulator) use baseUrl instead'
          : ' (letters, digits and "-")';
    throw new TypeError(`option site must be a Chargebee site name such as "acme-test"${hint}`);
  }
  return `https://${site.toLowerCase()}.chargebee.com/api/v2`;
}

/**
 * A small client for Chargebee's portal-session endpoints, usable without Express. One keep-alive agent
 * per client; errors are {@link ChargebeeApiError}, {@link ChargebeeTimeoutError} or
 * {@link ChargebeeNetworkError}, none of which carries the API key.
 */
export class ChargebeeClient {
  /** The API base URL in use (no credentials in it). */
  readonly baseUrl: string;
  /** Default time allowed for one call, in milliseconds. */
  readonly timeoutMs: number;
  private readonly http: AxiosInstance;
  private readonly agent: http.Agent;

  constructor(options: ChargebeeClientOptions) {
    if (typeof options !== 'object' || options === null)
      throw new TypeError('ChargebeeClient options must be an object');
    if (
      typeof options.apiKey !== 'string' ||
      options.apiKey === '' ||
      !isSafeHeaderValue(options.apiKey) ||
      /\s/.test(options.apiKey)
    ) {
      throw new TypeError('option apiKey must be a non-empty string without spaces or control characters');
    }
    this.baseUrl = resolveBaseUrl(options.site, options.baseUrl);
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    if (!Number.isFinite(this.timeoutMs) || this.timeoutMs <= 0)
      throw new TypeError('option timeoutMs must be a positive number');
    const secure = this.baseUrl.startsWith('https:');
    this.agent = secure ? new https.Agent({ keepAlive: true }) : new http.Agent({ keepAlive: true });
    // The key lives only inside this closure-held instance; axios adds the Basic header per request.
    const apiKey = options.apiKey;
    this.http = axios.create({
      baseURL: this.baseUrl,
      [secure ? 'httpsAgent' : 'httpAgent']: this.agent,
      auth: { username: apiKey, password: '' },
      headers: {
        Accept: 'application/json',
        'User-Agent': `chargebee-portal-logout/${VERSION} node/${process.version}`,
      },
      responseType: 'text',
      transformResponse: [(data: unknown) => data],
      validateStatus: () => true,
      maxRedirects: 0,
      proxy: false,
      transitional: { clarifyTimeoutError: true },
    });
  }

  /**
   * Logs a portal session out (`POST /portal_sessions/{id}/logout`) and resolves with the session as
   * Chargebee returns it. `headers` carries origin, entity and event headers (`chargebee-*` only).
   */
  async logout(
    portalSessionId: string,
    headers: ChargebeeHeaders = {},
    options: CallOptions = {},
  ): Promise<PortalSession> {
    const id = checkPortalSessionId(portalSessionId);
    // Chargebee's error messages may quote what it was sent; none of it may reach a log through the error.
    const secrets = [id, headers['chargebee-request-origin-user'], headers['chargebee-request-origin-user-encoded']];
    return this.portalSession(await this.send('post', `/portal_sessions/${id}/logout`, '', headers, options, secrets));
  }

  /** Creates a portal session for a customer (`POST /portal_sessions`). */
  async create(
    params: CreatePortalSessionParams,
    headers: ChargebeeHeaders = {},
    options: CallOptions = {},
  ): Promise<PortalSession> {
    if (typeof params?.customerId !== 'string' || params.customerId === '') {
      throw new TypeError('create: customerId must be a non-empty string');
    }
    const form = new URLSearchParams({ 'customer[id]': params.customerId });
    if (params.redirectUrl !== undefined) form.set('redirect_url', params.redirectUrl);
    if (params.forwardUrl !== undefined) form.set('forward_url', params.forwardUrl);
    return this.portalSession(await this.send('post', '/portal_sessions', form.toString(), headers, options));
  }

  /** Reads a portal session (`GET /portal_sessions/{id}`). */
  async retrieve(portalSessionId: string, options: CallOptions = {}): Promise<PortalSession> {
    const id = checkPortalSessionId(portalSessionId);
    return this.portalSession(await this.send('get', `/portal_sessions/${id}`, undefined, {}, options));
  }

  /** Closes idle keep-alive sockets. The client still works afterwards; it simply reconnects. */
  close(): void {
    this.agent.destroy();
  }

  private async send(
    method: 'get' | 'post',
    path: string,
    body: string | undefined,
    headers: ChargebeeHeaders,
    options: CallOptions,
    secrets: Array<string | undefined> = [],
  ): Promise<AxiosResponse<string>> {
    const requestHeaders = checkHeaders(headers);
    if (method === 'post') requestHeaders['Content-Type'] = 'application/x-www-form-urlencoded; charset=utf-8';
    const timeoutMs = options.timeoutMs ?? this.timeoutMs;
    let response: AxiosResponse<string>;
    try {
      response = await this.http.request<string>({
        method,
        url: path,
        data: body,
        headers: requestHeaders,
        timeout: timeoutMs,
        signal: options.signal,
      });
    } catch (error) {
      throw toClientError(error, timeoutMs);
    }
    if (response.status >= 200 && response.status < 300) return response;
    throw apiError(response, secrets);
  }

  private portalSession(response: AxiosResponse<string>): PortalSession {
    const session = (parseJson(response.data) as { portal_session?: PortalSession } | undefined)?.portal_session;
    if (typeof session !== 'object' || session === null || typeof session.id !== 'string') {
      throw new ChargebeeApiError({
        status: response.status,
        message: `Chargebee answered ${response.status} without a portal_session object`,
        unusableBody: true,
      });
    }
    return session;
  }
}

function checkPortalSessionId(id: unknown): string {
  if (!isValidPortalSessionId(id)) {
    throw new TypeError('portal-session ID must be 1 to 70 letters, digits, "_" or "-"');
  }
  return id;
}

function checkHeaders(headers: ChargebeeHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers ?? {})) {
    if (value === undefined) continue;
    const lower = name.toLowerCase();
    if (!CHARGEBEE_HEADER_NAME.test(lower))
      throw new TypeError(`header ${JSON.stringify(name)} is not a chargebee-* header`);
    if (!isSafeHeaderValue(value))
      throw new TypeError(`header ${lower} must be visible ASCII without control characters`);
    out[lower] = value;
  }
  return out;
}

function parseJson(text: unknown): unknown {
  if (typeof text !== 'string') return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function apiError(response: AxiosResponse<string>, secrets: Array<string | undefined>): ChargebeeApiError {
  const body = parseJson(response.data) as Record<string, unknown> | undefined;
  const str = (value: unknown) => (typeof value === 'string' && value !== '' ? value : undefined);
  const retryAfter = String(response.headers?.['retry-after'] ?? '');
  let message = body && typeof body === 'object' ? (str(body.message) ?? str(body.error_msg)) : undefined;
  for (const secret of secrets) {
    if (message && secret) message = message.split(secret).join('[redacted]');
  }
  return new ChargebeeApiError({
    status: response.status,
    message: message
      ? `Chargebee answered ${response.status}: ${message.replace(/[^\u0020-\u007e]+/g, ' ').slice(0, 300)}`
      : `Chargebee answered ${response.status} with a body that is not a Chargebee error`,
    apiErrorCode: body && typeof body === 'object' ? (str(body.api_error_code) ?? str(body.error_code)) : undefined,
    type: body && typeof body === 'object' ? str(body.type) : undefined,
    param: body && typeof body === 'object' ? (str(body.param) ?? str(body.error_param)) : undefined,
    retryAfterSeconds: /^\d+$/.test(retryAfter) ? Number(retryAfter) : undefined,
    unusableBody: !body || typeof body !== 'object',
  });
}

function toClientError(error: unknown, timeoutMs: number): ChargebeeError {
  if (error instanceof ChargebeeError) return error;
  const code = typeof (error as { code?: unknown })?.code === 'string' ? (error as { code: string }).code : undefined;
  if (code === 'ETIMEDOUT' || code === 'ECONNABORTED' || code === 'ERR_CANCELED' || axios.isCancel(error)) {
    return new ChargebeeTimeoutError(timeoutMs);
  }
  return new ChargebeeNetworkError(code);
}
