/**
 * A loopback emulator of Chargebee's portal-session endpoints, for tests, demos and benchmarks.
 * Plain `node:http` so that it stays fast under load; every record it keeps is bounded.
 */
import { randomBytes } from 'node:crypto';
import {
  createServer,
  type IncomingMessage,
  type OutgoingHttpHeaders,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { LinkedCustomer } from '../chargebee/client';
import { renderOverview, renderPortalPage, type OverviewSite, type PortalPageOutcome } from './emulator-pages';

export interface EmulatorSiteConfig {
  /** API keys this site accepts (HTTP Basic user name, empty password). */
  apiKey: string | string[];
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

export type PortalSessionStatus = 'created' | 'logged_in' | 'logged_out' | 'not_yet_activated' | 'activated';

// The emulator speaks the same portal-session shapes as the client reads.
export type { LinkedCustomer } from '../chargebee/client';

/** Chargebee's `portal_session` object, snake_case like the API. Timestamps are Unix seconds. */
export interface EmulatedPortalSession {
  id: string;
  token: string;
  access_url: string;
  redirect_url?: string;
  status: PortalSessionStatus;
  created_at: number;
  expires_at: number;
  customer_id: string;
  login_at?: number;
  logout_at?: number;
  login_ipaddress?: string;
  logout_ipaddress?: string;
  linked_customers: LinkedCustomer[];
  object: 'portal_session';
}

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
 * A fault applies to API requests only, before the site and the API key are checked, as a proxy's
 * would. Faults are tried in the order they were added; the first that matches applies.
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
  /** Answer `status` (default 502) with this raw body, e.g. a proxy's HTML page. */
  rawBody?: string;
  /** Content type of `rawBody`. Default `text/html; charset=utf-8`. */
  contentType?: string;
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

const DEFAULT_SITES: Record<string, EmulatorSiteConfig> = { 'acme-test': { apiKey: 'test_emulator_key' } };
const JSON_TYPE = 'application/json;charset=utf-8';
const HTML_TYPE = 'text/html; charset=utf-8';
const HTML_CSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'";
const ACCESS_URL_LIFETIME_S = 3600;
const MAX_BODY_BYTES = 1024 * 1024;
const MAX_IDEMPOTENCY_KEY_LENGTH = 100;
const OVERVIEW_SESSIONS_PER_SITE = 500;
/** Path segments that would make API paths ambiguous with the emulator's own routes. */
const RESERVED_SITE_NAMES = new Set(['portal', '_emulator', 'api', 'favicon.ico']);
const SITE_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]*$/;
const LOGOUT_PATH = /^\/[^/?]+\/api\/v2\/portal_sessions\/([^/?]+)\/logout(?:\?|$)/;
const ALPHANUMERIC = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

interface Answer {
  status: number;
  body: string;
  contentType?: string;
  headers?: Record<string, string>;
}

interface SiteState {
  name: string;
  keys: Set<string>;
  firstKey: string;
  /** Exact `Authorization` values of the keys, so the usual request skips Base64 decoding. */
  authHeaders: Set<string>;
}

interface StoredSession {
  site: string;
  data: EmulatedPortalSession;
}

interface ActiveFault {
  id: number;
  fault: EmulatorFault;
  remaining: number;
}

interface IdempotentAnswer {
  at: number;
  /** The request it answered: a reuse of the key for another request is refused. */
  fingerprint: string;
  answer: Answer;
}

interface Config {
  sites: Map<string, SiteState>;
  host: string;
  port: number;
  recordLimit: number;
  publicUrl: string | undefined;
  idempotencyWindowMs: number;
  idempotencyCacheLimit: number;
}

function randomAlphanumeric(length: number): string {
  const bytes = randomBytes(length);
  let out = '';
  // The modulo bias does not matter for test identifiers.
  for (let i = 0; i < length; i++) out += ALPHANUMERIC[bytes[i] % ALPHANUMERIC.length];
  return out;
}

function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

function isNonNegativeInteger(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0;
}

function errorAnswer(
  status: number,
  apiErrorCode: string,
  message: string,
  type?: string,
  param?: string,
  headers?: Record<string, string>,
): Answer {
  const body: ChargebeeErrorBody = {
    message,
    ...(type !== undefined && { type }),
    api_error_code: apiErrorCode,
    ...(param !== undefined && { param }),
    http_status_code: status,
    error_code: apiErrorCode,
    error_msg: message,
    ...(param !== undefined && { error_param: param }),
  };
  return { status, body: JSON.stringify(body), headers };
}

function jsonAnswer(status: number, value: unknown): Answer {
  return { status, body: JSON.stringify(value) };
}

const FAULT_DEFAULTS: Record<number, [code: string, message: string]> = {
  400: ['param_wrong_value', 'A parameter has a wrong value (emulated fault).'],
  401: ['api_authentication_failed', 'Authentication failed (emulated fault).'],
  403: ['api_authorization_failed', 'The API key may not perform this operation (emulated fault).'],
  404: ['resource_not_found', 'The resource was not found (emulated fault).'],
  409: ['invalid_state_for_request', 'The resource is in a state that does not allow this request (emulated fault).'],
  422: ['unable_to_process_request', 'The request could not be processed (emulated fault).'],
  429: ['api_request_limit_exceeded', 'Too many requests for this site; try again later (emulated fault).'],
  500: ['internal_error', 'Internal error (emulated fault).'],
  503: ['internal_temporary_error', 'Temporary error; try again later (emulated fault).'],
};

function faultAnswer(fault: EmulatorFault): Answer | undefined {
  const headers = fault.retryAfter !== undefined ? { 'retry-after': String(fault.retryAfter) } : undefined;
  if (fault.rawBody !== undefined) {
    return { status: fault.status ?? 502, body: fault.rawBody, contentType: fault.contentType ?? HTML_TYPE, headers };
  }
  if (fault.status === undefined && fault.retryAfter === undefined) return undefined;
  const status = fault.status ?? 429;
  const [code, message] = FAULT_DEFAULTS[status] ?? [
    status >= 500 ? 'internal_error' : 'invalid_request',
    `Emulated fault with HTTP status ${status}.`,
  ];
  return errorAnswer(status, fault.apiErrorCode ?? code, fault.message ?? message, fault.type, undefined, headers);
}

function hasControlCharacter(value: string): boolean {
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i);
    if (code < 0x20 || code === 0x7f) return true;
  }
  return false;
}

/** Checks a fault once, when it is injected, so that a bad one fails where it was written. */
function checkFault(fault: EmulatorFault): void {
  if (typeof fault !== 'object' || fault === null) throw new TypeError('fault must be an object');
  const m = fault.match;
  if (m !== undefined) {
    if (typeof m !== 'object' || m === null) throw new TypeError('fault.match must be an object');
    if (m.method !== undefined && typeof m.method !== 'string')
      throw new TypeError('fault.match.method must be a string such as "POST"');
    if (m.site !== undefined && typeof m.site !== 'string') throw new TypeError('fault.match.site must be a string');
    if (m.path !== undefined && typeof m.path !== 'string' && !(m.path instanceof RegExp)) {
      throw new TypeError('fault.match.path must be a string (exact path after /api/v2) or a RegExp');
    }
  }
  if (fault.times !== undefined && !(isNonNegativeInteger(fault.times) && fault.times > 0)) {
    throw new TypeError(`fault.times must be a positive integer, got ${String(fault.times)}`);
  }
  if (fault.latencyMs !== undefined && !isNonNegativeInteger(fault.latencyMs)) {
    throw new TypeError(`fault.latencyMs must be a non-negative integer, got ${String(fault.latencyMs)}`);
  }
  if (fault.status !== undefined && !(Number.isInteger(fault.status) && fault.status >= 200 && fault.status <= 599)) {
    throw new TypeError(`fault.status must be an HTTP status from 200 to 599, got ${String(fault.status)}`);
  }
  if (fault.retryAfter !== undefined && !isNonNegativeInteger(fault.retryAfter)) {
    throw new TypeError(`fault.retryAfter must be a non-negative integer of seconds, got ${String(fault.retryAfter)}`);
  }
  for (const key of ['apiErrorCode', 'message', 'type', 'rawBody', 'contentType'] as const) {
    if (fault[key] !== undefined && typeof fault[key] !== 'string')
      throw new TypeError(`fault.${key} must be a string`);
  }
  if (
    (fault.apiErrorCode !== undefined || fault.message !== undefined || fault.type !== undefined) &&
    fault.status === undefined &&
    fault.retryAfter === undefined
  ) {
    throw new TypeError('fault.status is required with fault.apiErrorCode, fault.message or fault.type');
  }
  if (fault.contentType !== undefined && hasControlCharacter(fault.contentType)) {
    throw new TypeError('fault.contentType must not contain control characters');
  }
  if (fault.drop !== undefined && fault.drop !== 'before-response' && fault.drop !== 'mid-response') {
    throw new TypeError(`fault.drop must be 'before-response' or 'mid-response', got ${String(fault.drop)}`);
  }
  if (fault.hang !== undefined && typeof fault.hang !== 'boolean') throw new TypeError('fault.hang must be a boolean');
  if (fault.hang && fault.drop !== undefined) throw new TypeError("can't pass fault.hang and fault.drop together");
}

function normaliseOptions(options: EmulatorOptions): Config {
  if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object');
  const siteEntries = Object.entries(options.sites ?? DEFAULT_SITES);
  if (siteEntries.length === 0) throw new TypeError('options.sites must name at least one site');
  const sites = new Map<string, SiteState>();
  for (const [name, site] of siteEntries) {
    if (!SITE_NAME.test(name) || RESERVED_SITE_NAMES.has(name)) {
      throw new TypeError(
        `options.sites: "${name}" is not a usable site name (letters, digits, "_" and "-"; not ${[...RESERVED_SITE_NAMES].join(', ')})`,
      );
    }
    const keys = Array.isArray(site?.apiKey) ? site.apiKey : [site?.apiKey];
    if (
      keys.length === 0 ||
      !keys.every((k): k is string => typeof k === 'string' && k.length > 0 && !k.includes(':'))
    ) {
      throw new TypeError(
        `options.sites["${name}"].apiKey must be a non-empty string without ":" or a non-empty array of them`,
      );
    }
    sites.set(name, {
      name,
      keys: new Set(keys),
      firstKey: keys[0],
      authHeaders: new Set(keys.map((k) => `Basic ${Buffer.from(`${k}:`).toString('base64')}`)),
    });
  }
  const port = options.port ?? 0;
  if (!isNonNegativeInteger(port) || port > 65535)
    throw new TypeError(`options.port must be an integer from 0 to 65535, got ${String(port)}`);
  const recordLimit = options.recordLimit ?? 10_000;
  if (!isNonNegativeInteger(recordLimit))
    throw new TypeError(`options.recordLimit must be a non-negative integer, got ${String(recordLimit)}`);
  const idempotencyWindowMs = options.idempotencyWindowMs ?? 30 * 60 * 1000;
  if (!isNonNegativeInteger(idempotencyWindowMs))
    throw new TypeError('options.idempotencyWindowMs must be a non-negative integer');
  const idempotencyCacheLimit = options.idempotencyCacheLimit ?? 50_000;
  if (!isNonNegativeInteger(idempotencyCacheLimit))
    throw new TypeError('options.idempotencyCacheLimit must be a non-negative integer');
  const host = options.host ?? '127.0.0.1';
  if (typeof host !== 'string' || host === '') throw new TypeError('options.host must be a non-empty string');
  let publicUrl: string | undefined;
  if (options.publicUrl !== undefined) {
    let parsed: URL | undefined;
    try {
      parsed = new URL(options.publicUrl);
    } catch {
      parsed = undefined;
    }
    if (!parsed || (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')) {
      throw new TypeError(`options.publicUrl must be an absolute http(s) URL, got ${String(options.publicUrl)}`);
    }
    publicUrl = options.publicUrl.replace(/\/+$/, '');
  }
  return { sites, host, port, recordLimit, publicUrl, idempotencyWindowMs, idempotencyCacheLimit };
}

/** Keeps the newest `limit` entries in a ring, so dropping the oldest costs nothing. */
class RequestRecord {
  private entries: RecordedRequest[] = [];
  private start = 0;

  constructor(private readonly limit: number) {}

  push(entry: RecordedRequest): void {
    if (this.limit === 0) return;
    if (this.entries.length < this.limit) {
      this.entries.push(entry);
    } else {
      this.entries[this.start] = entry;
      this.start = (this.start + 1) % this.limit;
    }
  }

  toArray(): RecordedRequest[] {
    return this.start === 0
      ? this.entries.slice()
      : this.entries.slice(this.start).concat(this.entries.slice(0, this.start));
  }

  clear(): void {
    this.entries = [];
    this.start = 0;
  }
}

function copySession(s: EmulatedPortalSession): EmulatedPortalSession {
  return { ...s, linked_customers: s.linked_customers.map((c) => ({ ...c })) };
}

function safeDecode(segment: string): string | undefined {
  try {
    return decodeURIComponent(segment);
  } catch {
    return undefined;
  }
}

function readBody(req: IncomingMessage, done: (body: string | undefined) => void): void {
  const chunks: Buffer[] = [];
  let size = 0;
  req.on('data', (chunk: Buffer) => {
    size += chunk.length;
    if (size <= MAX_BODY_BYTES) chunks.push(chunk);
  });
  req.on('end', () => {
    if (size > MAX_BODY_BYTES) done(undefined);
    else
      done(
        chunks.length === 0
          ? ''
          : chunks.length === 1
            ? chunks[0].toString('utf8')
            : Buffer.concat(chunks).toString('utf8'),
      );
  });
  // A client that gives up mid-body leaves nothing to answer.
  req.on('error', () => undefined);
}

function send(res: ServerResponse, answer: Answer, extraHeaders?: Record<string, string>): void {
  if (res.destroyed || res.headersSent) return;
  const headers: OutgoingHttpHeaders = {
    'content-type': answer.contentType ?? JSON_TYPE,
    'content-length': Buffer.byteLength(answer.body),
  };
  if (answer.headers) Object.assign(headers, answer.headers);
  if (extraHeaders) Object.assign(headers, extraHeaders);
  res.writeHead(answer.status, headers);
  res.end(answer.body);
}

/** Headers and part of the body, then a dead socket: the client sees a truncated response. */
function sendPartial(res: ServerResponse, answer: Answer): void {
  if (res.destroyed) return;
  const body = Buffer.from(answer.body);
  res.writeHead(answer.status, {
    'content-type': answer.contentType ?? JSON_TYPE,
    'content-length': body.length,
    ...answer.headers,
  });
  res.write(body.subarray(0, Math.max(1, Math.floor(body.length / 2))), () => res.socket?.destroy());
}

function sendHtml(res: ServerResponse, status: number, html: string): void {
  send(res, {
    status,
    body: html,
    contentType: HTML_TYPE,
    headers: { 'content-security-policy': HTML_CSP, 'cache-control': 'no-store' },
  });
}

function sendPlain(res: ServerResponse, status: number, text: string): void {
  send(res, { status, body: `${text}\n`, contentType: 'text/plain; charset=utf-8' });
}

function redactRequest(r: RecordedRequest): RecordedRequest {
  if (r.headers.authorization === undefined) return r;
  return { ...r, headers: { ...r.headers, authorization: '[redacted]' } };
}

/**
 * Emulates `POST /portal_sessions`, `GET /portal_sessions/{id}` and `POST /portal_sessions/{id}/logout`
 * under `/{site}/api/v2`, the access-URL page, an overview page at `/` and a JSON control API under
 * `/_emulator`. Faults can be injected to test a client's timeouts, retries and error handling.
 */
export class ChargebeeEmulator {
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly record: RequestRecord;
  private readonly sessionsById = new Map<string, StoredSession>();
  private readonly sessionsByToken = new Map<string, StoredSession>();
  private readonly idempotency = new Map<string, IdempotentAnswer>();
  private faults: ActiveFault[] = [];
  private nextFaultId = 1;
  private listeningUrl = '';
  private closing: Promise<void> | undefined;

  private constructor(private readonly config: Config) {
    this.record = new RequestRecord(config.recordLimit);
    this.server = createServer({ noDelay: true }, (req, res) => this.handle(req, res));
    this.server.on('connection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
    });
  }

  /** Starts an emulator and resolves once it listens. Bad options throw a `TypeError` naming the option. */
  static async start(options: EmulatorOptions = {}): Promise<ChargebeeEmulator> {
    const emulator = new ChargebeeEmulator(normaliseOptions(options));
    await emulator.listen();
    return emulator;
  }

  private listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.config.port, this.config.host, () => {
        this.server.off('error', reject);
        const { port } = this.server.address() as AddressInfo;
        const host = this.config.host.includes(':') ? `[${this.config.host}]` : this.config.host;
        this.listeningUrl = `http://${host}:${port}`;
        resolve();
      });
    });
  }

  /** The listening URL, e.g. `http://127.0.0.1:41234`. */
  get url(): string {
    return this.listeningUrl;
  }

  /** `${url}/${site}/api/v2`; the site defaults to the first configured one and is not checked. */
  baseUrl(site?: string): string {
    return `${this.listeningUrl}/${site ?? this.firstSite().name}/api/v2`;
  }

  /** The first API key of a configured site. */
  apiKey(site?: string): string {
    return this.siteState(site).firstKey;
  }

  /** A copy of the recorded API requests, oldest first. Pages and the control API are not recorded. */
  get requests(): RecordedRequest[] {
    return this.record.toArray();
  }

  clearRequests(): void {
    this.record.clear();
  }

  /** Recorded `POST .../portal_sessions/{id}/logout` requests, optionally for one portal session. */
  logoutRequests(portalSessionId?: string): RecordedRequest[] {
    return this.record.toArray().filter((r) => {
      if (r.method !== 'POST') return false;
      const m = LOGOUT_PATH.exec(r.path);
      return m !== null && (portalSessionId === undefined || safeDecode(m[1]) === portalSessionId);
    });
  }

  /** Copies of the portal sessions of one site, or of all sites when `site` is omitted, oldest first. */
  sessions(site?: string): EmulatedPortalSession[] {
    const out: EmulatedPortalSession[] = [];
    for (const stored of this.sessionsById.values()) {
      if (site === undefined || stored.site === site) out.push(copySession(stored.data));
    }
    return out;
  }

  getSession(id: string): EmulatedPortalSession | undefined {
    const stored = this.sessionsById.get(id);
    return stored ? copySession(stored.data) : undefined;
  }

  /** Seeds a portal session as `POST /portal_sessions` would create it. */
  createSession(input: CreateSessionInput): EmulatedPortalSession {
    if (typeof input?.customerId !== 'string' || input.customerId === '')
      throw new TypeError('createSession: customerId must be a non-empty string');
    if (input.createdAt !== undefined && !isNonNegativeInteger(input.createdAt))
      throw new TypeError('createSession: createdAt must be Unix seconds');
    const site = this.siteState(input.site).name;
    return copySession(this.newSession(site, input.customerId, input.email, input.redirectUrl, input.createdAt).data);
  }

  /**
   * Does what opening the access URL does: `created` becomes `logged_in`. Throws when the URL would not
   * work (unknown ID, already used, logged out, expired), as the portal would refuse it.
   */
  openSession(id: string, ip = '127.0.0.1'): EmulatedPortalSession {
    const stored = this.sessionsById.get(id);
    if (!stored) throw new Error(`openSession: no portal session "${id}"`);
    const outcome = this.open(stored, ip);
    if (outcome !== 'logged_in')
      throw new Error(
        `openSession: the access URL of "${id}" does not work: ${outcome} (status ${stored.data.status})`,
      );
    return copySession(stored.data);
  }

  /** Adds a fault; faults are tried in the order they were added and the first match applies. Returns its remover. */
  injectFault(fault: EmulatorFault): () => void {
    return this.addFault(fault).remove;
  }

  clearFaults(): void {
    this.faults = [];
  }

  /** Forgets sessions, recorded requests, faults and idempotency keys. */
  reset(): void {
    this.sessionsById.clear();
    this.sessionsByToken.clear();
    this.idempotency.clear();
    this.record.clear();
    this.faults = [];
  }

  /** Stops listening and destroys every open socket, hung ones included. */
  close(): Promise<void> {
    if (!this.closing) {
      this.closing = new Promise<void>((resolve) => {
        for (const timer of this.timers) clearTimeout(timer);
        this.timers.clear();
        this.server.close(() => resolve());
        for (const socket of this.sockets) socket.destroy();
      });
    }
    return this.closing;
  }

  private addFault(fault: EmulatorFault): { id: number; remove: () => void } {
    checkFault(fault);
    const active: ActiveFault = {
      id: this.nextFaultId++,
      fault: { ...fault, match: fault.match && { ...fault.match } },
      remaining: fault.times ?? Infinity,
    };
    this.faults.push(active);
    return { id: active.id, remove: () => this.removeFault(active.id) };
  }

  private removeFault(id: number): boolean {
    const before = this.faults.length;
    this.faults = this.faults.filter((f) => f.id !== id);
    return this.faults.length !== before;
  }

  private firstSite(): SiteState {
    return this.config.sites.values().next().value as SiteState;
  }

  private siteState(site: string | undefined): SiteState {
    if (site === undefined) return this.firstSite();
    const state = this.config.sites.get(site);
    if (!state)
      throw new Error(`The emulator has no site "${site}"; configured: ${[...this.config.sites.keys()].join(', ')}`);
    return state;
  }

  private newSession(
    site: string,
    customerId: string,
    email?: string,
    redirectUrl?: string,
    createdAt = nowSeconds(),
  ): StoredSession {
    let id = `portal_${randomAlphanumeric(20)}`;
    while (this.sessionsById.has(id)) id = `portal_${randomAlphanumeric(20)}`;
    const token = randomAlphanumeric(32);
    const data: EmulatedPortalSession = {
      id,
      token,
      access_url: `${this.config.publicUrl ?? this.listeningUrl}/portal/${site}/${token}`,
      ...(redirectUrl !== undefined && { redirect_url: redirectUrl }),
      status: 'created',
      created_at: createdAt,
      expires_at: createdAt + ACCESS_URL_LIFETIME_S,
      customer_id: customerId,
      linked_customers: [
        {
          customer_id: customerId,
          ...(email !== undefined && { email }),
          has_billing_address: false,
          has_payment_method: false,
          has_active_subscription: false,
        },
      ],
      object: 'portal_session',
    };
    const stored = { site, data };
    this.sessionsById.set(id, stored);
    this.sessionsByToken.set(token, stored);
    return stored;
  }

  /** The access URL works once, within its hour. */
  private open(stored: StoredSession, ip: string | undefined): PortalPageOutcome {
    const s = stored.data;
    if (s.status === 'logged_out') return 'ended';
    if (s.status !== 'created') return 'already_used';
    const now = nowSeconds();
    if (now > s.expires_at) return 'expired';
    s.status = 'logged_in';
    s.login_at = now;
    if (ip !== undefined) s.login_ipaddress = ip;
    return 'logged_in';
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    try {
      const url = req.url ?? '/';
      const q = url.indexOf('?');
      const pathname = q === -1 ? url : url.slice(0, q);
      if (pathname === '/') return this.handleOverview(req, res);
      if (pathname.startsWith('/portal/')) return this.handlePortalPage(req, res, pathname);
      if (pathname === '/_emulator' || pathname.startsWith('/_emulator/'))
        return this.handleControl(req, res, pathname, q === -1 ? '' : url.slice(q + 1));
      if (pathname === '/favicon.ico') {
        res.writeHead(404, { 'content-length': 0 });
        res.end();
        return;
      }
      this.handleApi(req, res, url, pathname);
    } catch (err) {
      this.internalError(res, err);
    }
  }

  private internalError(res: ServerResponse, err: unknown): void {
    const message = `Emulator error: ${err instanceof Error ? err.message : String(err)}`;
    if (!res.headersSent) send(res, errorAnswer(500, 'internal_error', message));
    else res.destroy();
  }

  // ---- API ----

  private handleApi(req: IncomingMessage, res: ServerResponse, url: string, pathname: string): void {
    let site: string | undefined;
    let apiPath: string | undefined;
    const slash = pathname.indexOf('/', 1);
    if (slash > 1) {
      const rest = pathname.slice(slash);
      if (rest === '/api/v2' || rest.startsWith('/api/v2/')) {
        site = pathname.slice(1, slash);
        apiPath = rest.length === 7 ? '/' : rest.slice(7);
      }
    }
    const method = req.method ?? 'GET';
    readBody(req, (body) => {
      try {
        const entry: RecordedRequest = {
          method,
          path: url,
          site,
          headers: req.headers,
          body: body ?? '',
          at: Date.now(),
        };
        this.record.push(entry);
        const fault = this.faults.length > 0 ? this.takeFault(method, apiPath, site) : undefined;
        if (fault) this.applyFault(fault, req, res, () => this.answerApi(req, method, site, apiPath, body));
        else send(res, this.answerApi(req, method, site, apiPath, body));
      } catch (err) {
        this.internalError(res, err);
      }
    });
  }

  private takeFault(method: string, apiPath: string | undefined, site: string | undefined): EmulatorFault | undefined {
    for (let i = 0; i < this.faults.length; i++) {
      const active = this.faults[i];
      const m = active.fault.match;
      if (m) {
        if (m.method !== undefined && m.method.toUpperCase() !== method) continue;
        if (m.site !== undefined && m.site !== site) continue;
        if (m.path !== undefined) {
          if (apiPath === undefined) continue;
          if (typeof m.path === 'string') {
            if (m.path !== apiPath) continue;
          } else {
            m.path.lastIndex = 0; // a /g or /y RegExp would otherwise remember the last match
            if (!m.path.test(apiPath)) continue;
          }
        }
      }
      if (--active.remaining <= 0) this.faults.splice(i, 1);
      return active.fault;
    }
    return undefined;
  }

  private applyFault(fault: EmulatorFault, req: IncomingMessage, res: ServerResponse, process: () => Answer): void {
    const act = (): void => {
      if (res.destroyed) return;
      if (fault.hang) return;
      if (fault.drop === 'before-response') {
        req.socket.destroy();
        return;
      }
      const answer = faultAnswer(fault) ?? process();
      if (fault.drop === 'mid-response') sendPartial(res, answer);
      else send(res, answer);
    };
    if (!fault.latencyMs) return act();
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      try {
        act();
      } catch (err) {
        this.internalError(res, err);
      }
    }, fault.latencyMs);
    this.timers.add(timer);
  }

  private answerApi(
    req: IncomingMessage,
    method: string,
    siteName: string | undefined,
    apiPath: string | undefined,
    body: string | undefined,
  ): Answer {
    const site = siteName === undefined ? undefined : this.config.sites.get(siteName);
    if (!site || apiPath === undefined) {
      return errorAnswer(
        404,
        'site_not_found',
        siteName === undefined
          ? 'No Chargebee site in the path; API paths look like /{site}/api/v2/...'
          : 'This site does not exist in the emulator; check the site name in the base URL.',
      );
    }
    if (!this.authorised(site, req.headers.authorization)) {
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
    if (method !== 'POST' || typeof key !== 'string') return this.route(req, method, site.name, apiPath, body);
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
    const cached = this.idempotency.get(cacheKey);
    if (cached && now - cached.at < this.config.idempotencyWindowMs) {
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
    const answer = this.route(req, method, site.name, apiPath, body);
    this.remember(cacheKey, { at: now, fingerprint, answer });
    return answer;
  }

  private remember(cacheKey: string, entry: IdempotentAnswer): void {
    const cache = this.idempotency;
    if (this.config.idempotencyCacheLimit === 0) return;
    cache.delete(cacheKey);
    cache.set(cacheKey, entry);
    // Insertion order is time order, so expired and surplus entries are all at the front.
    const expiredBefore = entry.at - this.config.idempotencyWindowMs;
    for (const [k, v] of cache) {
      if (cache.size <= this.config.idempotencyCacheLimit && v.at > expiredBefore) break;
      cache.delete(k);
    }
  }

  private authorised(site: SiteState, header: string | undefined): boolean {
    if (header === undefined) return false;
    if (site.authHeaders.has(header)) return true;
    const m = /^basic[ \t]+([A-Za-z0-9+/=]+)[ \t]*$/i.exec(header);
    if (!m) return false;
    const decoded = Buffer.from(m[1], 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    // The password must be empty, as Chargebee documents it.
    if (colon !== -1 && colon !== decoded.length - 1) return false;
    return site.keys.has(colon === -1 ? decoded : decoded.slice(0, colon));
  }

  private route(req: IncomingMessage, method: string, site: string, apiPath: string, body: string): Answer {
    const parts = apiPath.split('/');
    if (parts[1] === 'portal_sessions') {
      if (parts.length === 2) {
        return method === 'POST' ? this.createFromForm(site, body) : methodNotAllowed('POST');
      }
      const id = safeDecode(parts[2]);
      if (parts.length === 3 && id) {
        return method === 'GET' || method === 'HEAD' ? this.retrieve(site, id) : methodNotAllowed('GET');
      }
      if (parts.length === 4 && id && parts[3] === 'logout') {
        return method === 'POST'
          ? this.logout(site, id, req.headers['chargebee-request-origin-ip'])
          : methodNotAllowed('POST');
      }
    }
    return errorAnswer(404, 'resource_not_found', 'The emulator has no such API endpoint.', 'invalid_request');
  }

  private createFromForm(site: string, body: string): Answer {
    const form = new URLSearchParams(body);
    const customerId = form.get('customer[id]');
    if (!customerId) {
      return errorAnswer(400, 'param_wrong_value', 'customer[id] : cannot be blank', 'invalid_request', 'customer[id]');
    }
    const redirectUrl = form.get('redirect_url') || undefined;
    const email = form.get('customer[email]') || undefined;
    return jsonAnswer(200, { portal_session: this.newSession(site, customerId, email, redirectUrl).data });
  }

  private findInSite(site: string, id: string): StoredSession | undefined {
    const stored = this.sessionsById.get(id);
    return stored && stored.site === site ? stored : undefined;
  }

  private retrieve(site: string, id: string): Answer {
    const stored = this.findInSite(site, id);
    return stored ? jsonAnswer(200, { portal_session: stored.data }) : notFound();
  }

  private logout(site: string, id: string, originIp: string | string[] | undefined): Answer {
    const stored = this.findInSite(site, id);
    if (!stored) return notFound();
    const s = stored.data;
    if (s.status !== 'logged_out') {
      s.status = 'logged_out';
      s.logout_at = nowSeconds();
      if (typeof originIp === 'string') s.logout_ipaddress = originIp;
    }
    return jsonAnswer(200, { portal_session: s });
  }

  // ---- pages ----

  private handleOverview(req: IncomingMessage, res: ServerResponse): void {
    if (req.method !== 'GET' && req.method !== 'HEAD') return sendPlain(res, 405, 'The overview only answers GET.');
    const bySite = new Map<string, EmulatedPortalSession[]>();
    const counts = new Map<string, number>();
    for (const name of this.config.sites.keys()) {
      bySite.set(name, []);
      counts.set(name, 0);
    }
    for (const stored of this.sessionsById.values()) {
      const list = bySite.get(stored.site);
      if (!list) continue;
      counts.set(stored.site, (counts.get(stored.site) ?? 0) + 1);
      list.push(stored.data);
      if (list.length > OVERVIEW_SESSIONS_PER_SITE) list.shift();
    }
    const logoutRequests = new Map<string, RecordedRequest[]>();
    for (const r of this.record.toArray()) {
      const m = r.method === 'POST' ? LOGOUT_PATH.exec(r.path) : null;
      const id = m ? safeDecode(m[1]) : undefined;
      if (id === undefined) continue;
      const list = logoutRequests.get(id);
      if (list) list.push(r);
      else logoutRequests.set(id, [r]);
    }
    const sites: OverviewSite[] = [...bySite].map(([name, sessions]) => ({
      name,
      baseUrl: this.baseUrl(name),
      sessionCount: counts.get(name) ?? 0,
      sessions: sessions.reverse(),
    }));
    sendHtml(res, 200, renderOverview({ url: this.listeningUrl, sites, logoutRequests }));
  }

  private handlePortalPage(req: IncomingMessage, res: ServerResponse, pathname: string): void {
    const parts = pathname.split('/'); // ['', 'portal', site, token]
    const stored = parts.length === 4 ? this.sessionsByToken.get(safeDecode(parts[3]) ?? '') : undefined;
    if (!stored || stored.site !== safeDecode(parts[2])) return sendHtml(res, 404, renderPortalPage('not_found'));
    if (req.method !== 'GET') return sendPlain(res, 405, 'An access URL only answers GET.');
    const outcome = this.open(stored, req.socket.remoteAddress);
    sendHtml(res, outcome === 'logged_in' ? 200 : 410, renderPortalPage(outcome, stored.data));
  }

  // ---- control API ----

  private handleControl(req: IncomingMessage, res: ServerResponse, pathname: string, query: string): void {
    const method = req.method ?? 'GET';
    const parts = pathname.split('/').slice(2); // after '/_emulator'
    if (method === 'GET' || method === 'HEAD' || method === 'DELETE') {
      // Drain any body so that the connection can be reused.
      req.resume();
      return send(res, this.control(method, parts, query, undefined));
    }
    if (method !== 'POST') return send(res, controlError(405, `${method} is not supported by the control API`));
    // A JSON content type forces a CORS preflight, so a web page cannot drive the emulator.
    if (!/^application\/json\b/i.test(req.headers['content-type'] ?? '')) {
      req.resume();
      return send(
        res,
        controlError(
          415,
          'POST to /_emulator needs Content-Type: application/json (send {} when there is nothing to say)',
        ),
      );
    }
    readBody(req, (body) => {
      try {
        let value: unknown = {};
        if (body === undefined) return send(res, controlError(413, 'body too large'));
        if (body.trim() !== '') {
          try {
            value = JSON.parse(body);
          } catch {
            return send(res, controlError(400, 'the body is not valid JSON'));
          }
        }
        send(res, this.control(method, parts, query, value));
      } catch (err) {
        // Everything control() throws comes from checking the caller's input.
        send(res, controlError(400, err instanceof Error ? err.message : String(err)));
      }
    });
  }

  private control(method: string, parts: string[], query: string, body: unknown): Answer {
    const [resource = '', id, action] = parts;
    const params = new URLSearchParams(query);
    const route = `${method} ${resource}${id !== undefined ? '/:id' : ''}${action !== undefined ? `/${action}` : ''}`;
    switch (route) {
      case 'GET sessions':
      case 'HEAD sessions':
        return jsonAnswer(200, { sessions: this.sessions(params.get('site') ?? undefined) });
      case 'GET sessions/:id':
      case 'HEAD sessions/:id': {
        const session = this.getSession(safeDecode(id ?? '') ?? '');
        return session ? jsonAnswer(200, { portal_session: session }) : controlError(404, 'no such portal session');
      }
      case 'POST sessions': {
        const input = asObject(body);
        const session = this.createSession({
          site: optionalString(input, 'site'),
          customerId: optionalString(input, 'customerId') ?? '',
          email: optionalString(input, 'email'),
          redirectUrl: optionalString(input, 'redirectUrl'),
        });
        return jsonAnswer(200, { portal_session: session });
      }
      case 'POST sessions/:id/open': {
        const stored = this.sessionsById.get(safeDecode(id ?? '') ?? '');
        if (!stored) return controlError(404, 'no such portal session');
        const outcome = this.open(stored, optionalString(asObject(body), 'ip') ?? '127.0.0.1');
        return outcome === 'logged_in'
          ? jsonAnswer(200, { portal_session: copySession(stored.data) })
          : controlError(409, `the access URL does not work: ${outcome}`);
      }
      case 'GET requests':
      case 'HEAD requests':
        return jsonAnswer(200, { requests: this.record.toArray().map(redactRequest) });
      case 'DELETE requests':
        this.clearRequests();
        return jsonAnswer(200, { ok: true });
      case 'GET logout-requests':
      case 'HEAD logout-requests':
        return jsonAnswer(200, { requests: this.logoutRequests(params.get('id') ?? undefined).map(redactRequest) });
      case 'GET faults':
      case 'HEAD faults':
        return jsonAnswer(200, {
          faults: this.faults.map((f) => ({
            id: f.id,
            remaining: f.remaining === Infinity ? null : f.remaining,
            ...serialiseFault(f.fault),
          })),
        });
      case 'POST faults': {
        const { id: faultId } = this.addFault(faultFromJson(body));
        return jsonAnswer(201, { id: faultId });
      }
      case 'DELETE faults':
        this.clearFaults();
        return jsonAnswer(200, { ok: true });
      case 'DELETE faults/:id':
        return this.removeFault(Number(id)) ? jsonAnswer(200, { ok: true }) : controlError(404, 'no such fault');
      case 'POST reset':
        this.reset();
        return jsonAnswer(200, { ok: true });
      default:
        return controlError(404, `no control route ${method} /_emulator/${parts.join('/')}`);
    }
  }
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

function controlError(status: number, message: string): Answer {
  return jsonAnswer(status, { error: message });
}

function asObject(value: unknown): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new TypeError('the body must be a JSON object');
  return value as Record<string, unknown>;
}

function optionalString(obj: Record<string, unknown>, key: string): string | undefined {
  const value = obj[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw new TypeError(`${key} must be a string`);
  return value;
}

/** The control API's fault: an `EmulatorFault` whose `match.pathRegex` stands for a RegExp path. */
function faultFromJson(body: unknown): EmulatorFault {
  const input = asObject(body);
  const fault = { ...input } as EmulatorFault & { match?: Record<string, unknown> };
  if (input.match !== undefined) {
    const match = { ...asObject(input.match) };
    if (match.pathRegex !== undefined) {
      if (match.path !== undefined) throw new TypeError("can't pass match.path and match.pathRegex together");
      if (typeof match.pathRegex !== 'string') throw new TypeError('match.pathRegex must be a string');
      match.path = new RegExp(match.pathRegex);
      delete match.pathRegex;
    }
    fault.match = match;
  }
  return fault;
}

function serialiseFault(fault: EmulatorFault): Record<string, unknown> {
  const path = fault.match?.path;
  if (!(path instanceof RegExp)) return { ...fault };
  const { path: _path, ...match } = fault.match ?? {};
  return { ...fault, match: { ...match, pathRegex: path.source } };
}
