import http from 'node:http';
import https from 'node:https';
import type { Readable } from 'node:stream';
import axios, { type AxiosInstance } from 'axios';
import { MAX_RESPONSE_BYTES, readBody } from './body';
import {
  ChargebeeApiError,
  ChargebeeError,
  ChargebeeNetworkError,
  ChargebeeResponseTooLargeError,
  ChargebeeTimeoutError,
} from '../base/errors';
import {
  apiKeyForms,
  emailsOfHeaders,
  MAX_FIELD_LENGTH,
  MAX_MESSAGE_LENGTH,
  Redactor,
  secretForms,
} from '../base/redact';
import { isValidPortalSessionId } from '../base/identifiers';
import { isSafeHeaderValue } from '../base/origin-headers';
import { DeadlineError, deadlineIn, epochNow, runUntil, type DeadlineSignal } from '../base/time';
import { VERSION } from '../base/version';

/** Default time allowed for one call: a person is waiting on logout, so seconds, not the SDK's 80 s. */
export const DEFAULT_TIMEOUT_MS = 5000;
/** Default most sockets one client opens to Chargebee at once; further calls wait for a free one. */
export const DEFAULT_MAX_SOCKETS = 50;
/** Longest `Retry-After` taken seriously: a year. A longer (or unreadable) one is ignored. */
const MAX_RETRY_AFTER_SECONDS = 366 * 24 * 3600;

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
  /**
   * Time allowed for one call in milliseconds, the whole exchange included: connecting, waiting for a free
   * socket, the answer's headers and its body. Default 5000.
   */
  timeoutMs?: number;
  /**
   * Most sockets open to Chargebee at once (keep-alive agent); further calls wait for a free one, within
   * their timeout. Bounds the file descriptors an outage burst can take. Default 50.
   */
  maxSockets?: number;
}

/** Per-call options. */
export interface CallOptions {
  /** Aborts the call; it then rejects with {@link ChargebeeTimeoutError}. */
  signal?: AbortSignal;
  /** Overrides the client's timeout for this call (the whole exchange, body included). */
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

/** The axios instance of each client, for the benchmarks and tests that stub its transport. */
const transports = new WeakMap<ChargebeeClient, AxiosInstance>();

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
  private readonly agent: http.Agent;
  // Private fields (#): neither util.inspect nor a logger that prints the client shows the key they hold.
  /** The axios instance, whose defaults hold the Basic credentials. */
  readonly #http: AxiosInstance;
  /** The forms of the API key to remove from what Chargebee sends back. */
  readonly #keyForms: string[];

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
    const maxSockets = options.maxSockets ?? DEFAULT_MAX_SOCKETS;
    if (!Number.isInteger(maxSockets) || maxSockets < 1 || maxSockets > 10_000)
      throw new TypeError('option maxSockets must be a whole number from 1 to 10000');
    const secure = this.baseUrl.startsWith('https:');
    const agentOptions = { keepAlive: true, maxSockets };
    this.agent = secure ? new https.Agent(agentOptions) : new http.Agent(agentOptions);
    const apiKey = options.apiKey;
    this.#keyForms = apiKeyForms(apiKey);
    // The headers of every call are defaults of the instance (axios handles them far more cheaply than a
    // call's own), the Basic credentials of the key computed once.
    this.#http = axios.create({
      baseURL: this.baseUrl,
      headers: {
        Accept: 'application/json',
        'Accept-Encoding': 'gzip, deflate',
        'User-Agent': `chargebee-portal-logout/${VERSION} node/${process.version}`,
        // HTTP Basic: the key as the user name, no password.
        Authorization: `Basic ${Buffer.from(`${apiKey}:`).toString('base64')}`,
        post: { 'Content-Type': 'application/x-www-form-urlencoded; charset=utf-8' },
      },
      [secure ? 'httpsAgent' : 'httpAgent']: this.agent,
      // The body is read by readBody, which bounds it before and after decompression; axios's own
      // maxContentLength counts decompressed bytes only, and its timeout stops once headers arrive.
      responseType: 'stream',
      transformResponse: [(data: unknown) => data],
      decompress: false,
      maxContentLength: -1,
      maxBodyLength: MAX_RESPONSE_BYTES,
      validateStatus: () => true,
      maxRedirects: 0,
      proxy: false,
    });
    transports.set(this, this.#http);
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
    // Chargebee's error messages may quote what it was sent: the ID (and the email of the headers) are redacted.
    return this.portalSession(await this.send('post', `/portal_sessions/${id}/logout`, '', headers, options, [id]));
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
    return this.portalSession(await this.send('get', `/portal_sessions/${id}`, undefined, {}, options, [id]));
  }

  /** Closes idle keep-alive sockets. The client still works afterwards; it simply reconnects. */
  close(): void {
    this.agent.destroy();
  }

  /**
   * One call with one deadline for the whole exchange: a timer aborts it, whether it is waiting for a
   * socket, for headers, or for a body that trickles in.
   */
  private async send(
    method: 'get' | 'post',
    path: string,
    body: string | undefined,
    headers: ChargebeeHeaders,
    options: CallOptions,
    secrets: Array<string | undefined> = [],
  ): Promise<Answer> {
    const requestHeaders = checkHeaders(headers);
    const timeoutMs = options.timeoutMs ?? this.timeoutMs;
    let answer: Answer;
    let signal: DeadlineSignal | undefined;
    try {
      answer = await runUntil(
        deadlineIn(timeoutMs),
        'Chargebee',
        async (deadline) => {
          signal = deadline;
          const response = await this.#http.request<Readable>({
            method,
            url: path,
            data: body,
            headers: requestHeaders,
            signal: deadline,
          });
          const status = response.status;
          const retryAfterSeconds = parseRetryAfter(response.headers?.['retry-after']);
          const read = await readBody(
            response.data,
            response.headers?.['content-encoding'],
            response.headers?.['content-length'],
            MAX_RESPONSE_BYTES,
            deadline,
          );
          if (read.kind === 'too_large')
            throw new ChargebeeResponseTooLargeError(status, MAX_RESPONSE_BYTES, retryAfterSeconds);
          return { status, text: read.kind === 'text' ? read.text : undefined, retryAfterSeconds };
        },
        options.signal,
      );
    } catch (error) {
      if (error instanceof ChargebeeError) throw error;
      throw signal?.aborted || error instanceof DeadlineError
        ? new ChargebeeTimeoutError(timeoutMs)
        : toClientError(error);
    }
    if (answer.status >= 200 && answer.status < 300) return answer;
    throw this.apiError(answer, secrets, requestHeaders);
  }

  /** An error answer as an error whose every string from Chargebee is redacted and bounded. */
  private apiError(answer: Answer, secrets: Array<string | undefined>, headers: ChargebeeHeaders): ChargebeeApiError {
    const redactor = new Redactor([
      ...this.#keyForms,
      ...[...secrets, ...emailsOfHeaders(headers)].flatMap((secret) => secretForms(secret)),
    ]);
    const parsed = parseJson(answer.text);
    const body = typeof parsed === 'object' && parsed !== null ? (parsed as Record<string, unknown>) : undefined;
    const field = (...names: string[]) => {
      for (const name of names) {
        const value = redactor.clean(body?.[name], MAX_FIELD_LENGTH);
        if (value !== undefined) return value;
      }
      return undefined;
    };
    const message =
      redactor.clean(body?.message, MAX_MESSAGE_LENGTH) ?? redactor.clean(body?.error_msg, MAX_MESSAGE_LENGTH);
    return new ChargebeeApiError({
      status: answer.status,
      message: message
        ? `Chargebee answered ${answer.status}: ${message}`
        : `Chargebee answered ${answer.status} with a body that is not a Chargebee error`,
      apiErrorCode: field('api_error_code', 'error_code'),
      type: field('type'),
      param: field('param', 'error_param'),
      retryAfterSeconds: answer.retryAfterSeconds,
      unusableBody: body === undefined,
    });
  }

  private portalSession(answer: Answer): PortalSession {
    const session = (parseJson(answer.text) as { portal_session?: PortalSession } | undefined)?.portal_session;
    if (typeof session !== 'object' || session === null || typeof session.id !== 'string') {
      throw new ChargebeeApiError({
        status: answer.status,
        message: `Chargebee answered ${answer.status} without a portal_session object`,
        unusableBody: true,
      });
    }
    return session;
  }
}

/** An answer whose body was read within bounds (`text` absent when it could not be decoded). */
interface Answer {
  status: number;
  text: string | undefined;
  retryAfterSeconds: number | undefined;
}

/**
 * Seconds from a `Retry-After` header: a whole number of seconds, or an HTTP date (seconds from now,
 * 0 when past). `undefined` for anything else, and for waits over a year, which no real limit asks for.
 */
export function parseRetryAfter(value: unknown): number | undefined {
  if (typeof value !== 'string') return undefined;
  const text = value.trim();
  let seconds: number;
  if (/^\d{1,12}$/.test(text)) seconds = Number(text);
  else if (/^[A-Za-z]{3}, \d{2} [A-Za-z]{3} \d{4} \d{2}:\d{2}:\d{2} GMT$/.test(text)) {
    const at = Date.parse(text);
    if (!Number.isFinite(at)) return undefined;
    seconds = Math.max(0, Math.ceil((at - epochNow()) / 1000));
  } else return undefined;
  return seconds <= MAX_RETRY_AFTER_SECONDS ? seconds : undefined;
}

function checkPortalSessionId(id: unknown): string {
  if (!isValidPortalSessionId(id)) {
    throw new TypeError('portal-session ID must be 1 to 70 letters, digits, "_" or "-"');
  }
  return id;
}

/** The call's `chargebee-*` headers, each checked. */
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

/** A failure without an answer; the system error code is kept when it looks like one. */
function toClientError(error: unknown): ChargebeeError {
  const code = (error as { code?: unknown } | undefined)?.code;
  return new ChargebeeNetworkError(typeof code === 'string' && /^[A-Z0-9_]{1,40}$/.test(code) ? code : undefined);
}

/** The axios instance under a client (not exported by the package): its `defaults.adapter` can be stubbed. */
export function transportOf(client: ChargebeeClient): AxiosInstance {
  return transports.get(client) as AxiosInstance;
}
