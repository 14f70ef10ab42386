import type { Request } from 'express';
import pino, { type Logger } from 'pino';
import { ChargebeeClient, DEFAULT_TIMEOUT_MS } from './client';
import { cookieStore, type PortalSessionCookieOptions } from './cookie-store';
import type { EventSuppression } from './origin-headers';
import { isValidBusinessEntityId } from './identifiers';
import type { PortalLogoutOutcome, PortalSessionOutcome } from './outcome';
import { DEFAULT_MAX_REMEMBERED } from './remembered';
import { sessionStore } from './session-store';
import { customStore, type InternalStore, type PortalSessionStore } from './store';
import { DEFAULT_BUDGET_MS, DEFAULT_RETRY_POLICY, type RetryPolicy } from './retry';
import { DEFAULT_MAX_QUEUED, MemoryDeferredLogoutStore, type DeferredLogoutStore } from './deferred-queue';
import { DEFAULT_CIRCUIT_BREAKER, type CircuitBreakerOptions } from './circuit-breaker';

/** A function of the request that gives a header's source value; `undefined` sends no header. */
export type RequestValue = (req: Request) => string | undefined;

/** Per-entity overrides. API keys are site-wide at Chargebee, so most apps need none of these. */
export interface BusinessEntityOptions {
  /** Site for this entity. Default: the top-level `site`. */
  site?: string;
  /** API key for this entity. Default: the top-level `apiKey`. */
  apiKey?: string;
  /** Base URL for this entity. Default: the top-level `baseUrl` (when `site` is not overridden). */
  baseUrl?: string;
}

/** Retries of a logout inside the request (option `retry`). */
export interface RetryOptions {
  /** Most attempts per portal session, the first included. Default 4. */
  maxAttempts?: number;
  /** Cap of the first backoff delay (full jitter), doubling per retry. Default 100 ms. */
  baseDelayMs?: number;
  /** Largest backoff delay. Default 1000 ms. */
  maxDelayMs?: number;
}

/** The background queue of logouts that did not fit the request's budget (option `deferred`). */
export interface DeferredLogoutOptions {
  /**
   * Where deferred logouts wait. Default: a {@link MemoryDeferredLogoutStore} of `maxQueued` jobs, lost
   * if the process dies. Give a shared store when the app runs on several instances.
   */
  store?: DeferredLogoutStore;
  /** A deferred logout still failing this long after its first attempt is given up (logged). Default 24 h. */
  maxAgeMs?: number;
  /** Most jobs of the default in-memory store; past it a logout is lost, with an error log. Default 10 000. */
  maxQueued?: number;
  /** First background backoff delay (full jitter, doubling per attempt). Default 1000 ms. */
  baseDelayMs?: number;
  /** Largest background backoff delay. Default 60 000 ms. */
  maxDelayMs?: number;
  /** Background attempts under way at once. Default 4. */
  concurrency?: number;
}

/** Options of {@link chargebeePortalLogout}. Only `apiKey` and one of `site`/`baseUrl` are required. */
export interface ChargebeePortalLogoutOptions {
  /** Chargebee site name, such as `acme` or `acme-test`. Required unless `baseUrl` is set. */
  site?: string;
  /**
   * Chargebee API key (full-access or one allowed to write portal sessions). Required.
   * Warning: keep it out of source control; this package never logs it.
   */
  apiKey: string;
  /** API base URL up to `/api/v2` (EU hosts, a proxy, the emulator). Default `https://{site}.chargebee.com/api/v2`. */
  baseUrl?: string;
  /** Time allowed for one Chargebee call, in milliseconds; each attempt gets at most the budget left. Default 5000. */
  timeoutMs?: number;
  /**
   * Total time one logout may take inside the request, all attempts and waits included, in milliseconds.
   * When it runs out on a retryable failure the logout is deferred (see `deferred`). Default 3000.
   */
  budgetMs?: number;
  /**
   * Retries inside the request for network errors, timeouts, 429 and 500/502/503/504 (never other 4xx),
   * with exponential backoff and full jitter, honouring `Retry-After` when it fits the budget. Every attempt
   * of one portal session's logout carries the same `chargebee-idempotency-key`. `false`: one attempt only.
   * Default `{ maxAttempts: 4, baseDelayMs: 100, maxDelayMs: 1000 }`.
   */
  retry?: false | RetryOptions;
  /**
   * The background queue that takes over a logout whose budget ran out on a retryable failure (or while
   * the circuit breaker is open); the outcome then says `deferred`. `false`: no queue, such a logout
   * `failed`. Not available with `failClosed: true`. Default: an in-memory queue (see {@link DeferredLogoutOptions}).
   */
  deferred?: false | DeferredLogoutOptions;
  /**
   * After `failureThreshold` consecutive retryable failures of one Chargebee site and key, skip the inline
   * call for `coolOffMs` (the logout is deferred at once), then let one probe through. `false`: no breaker.
   * Default `{ failureThreshold: 5, coolOffMs: 30000 }`.
   */
  circuitBreaker?: false | CircuitBreakerOptions;
  /**
   * When true, a GET or HEAD logout marked `Sec-Fetch-Site: cross-site` (a link or image on another site)
   * makes no Chargebee call: the outcome is `skipped_cross_site`, a warning is logged and your handler still
   * runs. Default true. Use POST for logout.
   */
  skipCrossSiteGet?: boolean;
  /**
   * Where portal-session IDs are remembered: `'session'` (express-session, the default), `'cookie'`, or
   * your own store object or read-only resolver function `(req) => ids`.
   */
  store?: 'session' | 'cookie' | PortalSessionStore | PortalSessionStore['read'];
  /** Property of `req.session` used by the `'session'` store. Default `chargebeePortalSessions`. */
  sessionKey?: string;
  /** Settings of the `'cookie'` store. */
  cookie?: PortalSessionCookieOptions;
  /** Most portal sessions remembered (and logged out) per user; the oldest are dropped. Default 10. */
  maxRemembered?: number;
  /**
   * Default business entity: an ID, or a function of the request. Used for a portal session that was
   * remembered without one. Default none (no `chargebee-business-entity-id` header).
   */
  businessEntityId?: string | ((req: Request) => string | undefined);
  /** Per-entity overrides of `site`, `apiKey` and `baseUrl`, by entity ID. */
  businessEntities?: Record<string, BusinessEntityOptions>;
  /** Overrides of the origin-header rules. Each function's result is still validated and cleaned. */
  originHeaders?: {
    /** Client IP. Default `req.ip`, which follows Express's `trust proxy` setting. */
    ip?: RequestValue;
    /** Device. Default the `User-Agent` header. */
    device?: RequestValue;
    /**
     * The user's email. Default `req.user?.email`. Warning: it is sent to Chargebee (as it is for any
     * Chargebee call with origin headers) but never logged by this package.
     */
    email?: RequestValue;
  };
  /** Skip Chargebee webhooks, emails or actions for the logout's events. Default: none skipped. */
  suppressEvents?: EventSuppression;
  /**
   * When true, a portal session that could not be logged out stops the request with `next(err)` (a
   * `PortalLogoutError`) instead of running your logout handler. Nothing is deferred: a logout that runs out
   * of budget (or meets an open circuit breaker) fails. Default false (fail open).
   * Warning: with true, a Chargebee outage keeps users from logging out of your app.
   */
  failClosed?: boolean;
  /**
   * Called once per portal session with its outcome (metrics, audit). Errors it throws are logged. For a
   * deferred logout it is called twice: at the request (status `deferred`), and with the final result
   * (`deferred: true`) where `req` is `undefined`.
   */
  onOutcome?: (outcome: PortalSessionOutcome, req: Request | undefined) => void;
  /**
   * pino logger used when `req.log` (pino-http) is absent. Default: a pino logger at level `info` writing
   * synchronously to stdout.
   */
  logger?: Logger;
}

/** Options after validation, read once at setup. */
export interface Settings {
  store: InternalStore;
  maxRemembered: number;
  defaultEntity: (req: Request) => string | undefined;
  clientFor: (entityId: string | undefined) => ChargebeeClient;
  clients: ChargebeeClient[];
  timeoutMs: number;
  budgetMs: number;
  retry: RetryPolicy | false;
  deferred: false | DeferredSettings;
  circuitBreaker: false | Required<CircuitBreakerOptions>;
  skipCrossSiteGet: boolean;
  ip: RequestValue;
  device: RequestValue;
  email: RequestValue;
  suppressEvents: EventSuppression;
  failClosed: boolean;
  onOutcome?: (outcome: PortalSessionOutcome, req: Request | undefined) => void;
  logger: Logger;
}

/** The `deferred` option after validation. */
export interface DeferredSettings {
  store: DeferredLogoutStore;
  maxAgeMs: number;
  baseDelayMs: number;
  maxDelayMs: number;
  concurrency: number;
}

export const DEFAULT_DEFERRED = { maxAgeMs: 24 * 3600 * 1000, baseDelayMs: 1000, maxDelayMs: 60_000, concurrency: 4 } as const;

export type { PortalLogoutOutcome };

const KNOWN_OPTIONS = new Set([
  'site', 'apiKey', 'baseUrl', 'timeoutMs', 'store', 'sessionKey', 'cookie', 'maxRemembered', 'businessEntityId',
  'businessEntities', 'originHeaders', 'suppressEvents', 'failClosed', 'onOutcome', 'logger',
  'budgetMs', 'retry', 'deferred', 'circuitBreaker', 'skipCrossSiteGet',
]);
const RETRY_OPTIONS = new Set(['maxAttempts', 'baseDelayMs', 'maxDelayMs']);
const DEFERRED_OPTIONS = new Set(['store', 'maxAgeMs', 'maxQueued', 'baseDelayMs', 'maxDelayMs', 'concurrency']);
const BREAKER_OPTIONS = new Set(['failureThreshold', 'coolOffMs']);
const DEFERRED_STORE_METHODS = ['add', 'takeDue', 'remove', 'size'] as const;
const COOKIE_OPTIONS = new Set(['name', 'secret', 'maxAge', 'secure', 'domain', 'path']);
const ENTITY_OPTIONS = new Set(['site', 'apiKey', 'baseUrl']);
const ORIGIN_OPTIONS = new Set(['ip', 'device', 'email']);
const SUPPRESS_OPTIONS = new Set(['webhooks', 'emails', 'actions']);
const COOKIE_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const COOKIE_ATTRIBUTE = /^[\u0021-\u003a\u003c-\u007e]+$/; // visible ASCII without ";"

function fail(message: string): never {
  throw new TypeError(`chargebeePortalLogout: ${message}`);
}

function checkKeys(value: object, known: Set<string>, where: string): void {
  for (const key of Object.keys(value)) {
    if (!known.has(key)) fail(`unknown option ${where}${key} (known: ${[...known].join(', ')})`);
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function optionalFunction(value: unknown, name: string): void {
  if (value !== undefined && typeof value !== 'function') fail(`option ${name} must be a function, got ${typeof value}`);
}

function positiveNumber(value: unknown, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) fail(`option ${name} must be a positive number of milliseconds`);
  return value;
}

function nonNegativeNumber(value: unknown, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) fail(`option ${name} must be a number of milliseconds, 0 or more`);
  return value;
}

function wholeNumber(value: unknown, name: string, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || (value as number) < min || (value as number) > max) fail(`option ${name} must be a whole number from ${min} to ${max}`);
  return value as number;
}

/** `false`, or an object with only `known` keys; gives the object (empty for `undefined`). */
function optionalSection(value: unknown, name: string, known: Set<string>): Record<string, unknown> | false {
  if (value === false) return false;
  if (value === undefined) return {};
  if (!isPlainObject(value)) fail(`option ${name} must be false or an object`);
  checkKeys(value, known, `${name}.`);
  return value;
}

function normalizeRetry(value: unknown): RetryPolicy | false {
  const r = optionalSection(value, 'retry', RETRY_OPTIONS);
  if (r === false) return false;
  const policy = {
    maxAttempts: wholeNumber(r.maxAttempts, 'retry.maxAttempts', DEFAULT_RETRY_POLICY.maxAttempts, 1, 20),
    baseDelayMs: nonNegativeNumber(r.baseDelayMs, 'retry.baseDelayMs', DEFAULT_RETRY_POLICY.baseDelayMs),
    maxDelayMs: nonNegativeNumber(r.maxDelayMs, 'retry.maxDelayMs', Math.max(DEFAULT_RETRY_POLICY.maxDelayMs, (r.baseDelayMs as number | undefined) ?? 0)),
  };
  if (policy.maxDelayMs < policy.baseDelayMs) fail('option retry.maxDelayMs must be at least retry.baseDelayMs');
  return policy;
}

function normalizeDeferred(value: unknown, failClosed: boolean): DeferredSettings | false {
  if (failClosed && value !== undefined && value !== false) fail("can't pass failClosed: true and deferred together: failing closed never defers (set deferred: false or leave it out)");
  const d = optionalSection(value, 'deferred', DEFERRED_OPTIONS);
  if (d === false || failClosed) return false;
  let store: DeferredLogoutStore;
  if (d.store !== undefined) {
    const custom = d.store as Record<string, unknown>;
    if (typeof custom !== 'object' || custom === null) fail('option deferred.store must be an object (see DeferredLogoutStore)');
    for (const method of DEFERRED_STORE_METHODS) {
      if (typeof custom?.[method] !== 'function') fail(`option deferred.store must have a ${method}() method (see DeferredLogoutStore)`);
    }
    if (d.maxQueued !== undefined) fail("can't pass deferred.store and deferred.maxQueued together: maxQueued sizes the built-in in-memory store");
    store = d.store as DeferredLogoutStore;
  } else {
    store = new MemoryDeferredLogoutStore(wholeNumber(d.maxQueued, 'deferred.maxQueued', DEFAULT_MAX_QUEUED, 1, 10_000_000));
  }
  const settings: DeferredSettings = {
    store,
    maxAgeMs: positiveNumber(d.maxAgeMs, 'deferred.maxAgeMs', DEFAULT_DEFERRED.maxAgeMs),
    baseDelayMs: nonNegativeNumber(d.baseDelayMs, 'deferred.baseDelayMs', DEFAULT_DEFERRED.baseDelayMs),
    maxDelayMs: nonNegativeNumber(d.maxDelayMs, 'deferred.maxDelayMs', Math.max(DEFAULT_DEFERRED.maxDelayMs, (d.baseDelayMs as number | undefined) ?? 0)),
    concurrency: wholeNumber(d.concurrency, 'deferred.concurrency', DEFAULT_DEFERRED.concurrency, 1, 1000),
  };
  if (settings.maxDelayMs < settings.baseDelayMs) fail('option deferred.maxDelayMs must be at least deferred.baseDelayMs');
  return settings;
}

function normalizeBreaker(value: unknown): Required<CircuitBreakerOptions> | false {
  const b = optionalSection(value, 'circuitBreaker', BREAKER_OPTIONS);
  if (b === false) return false;
  return {
    failureThreshold: wholeNumber(b.failureThreshold, 'circuitBreaker.failureThreshold', DEFAULT_CIRCUIT_BREAKER.failureThreshold, 1, 1_000_000),
    coolOffMs: positiveNumber(b.coolOffMs, 'circuitBreaker.coolOffMs', DEFAULT_CIRCUIT_BREAKER.coolOffMs),
  };
}

function createClient(site: string | undefined, apiKey: string, baseUrl: string | undefined, timeoutMs: number, where: string): ChargebeeClient {
  try {
    return new ChargebeeClient({ site, apiKey, baseUrl, timeoutMs });
  } catch (error) {
    // The client's message names the bare option; say where it came from.
    fail(`${(error as Error).message.replace(/^option /, `option ${where}`)}`);
  }
}

/** Validates options once, at setup. Throws a `TypeError` that names the faulty option. */
export function normalizeOptions(options: ChargebeePortalLogoutOptions): Settings {
  if (!isPlainObject(options)) fail('options must be an object with at least site (or baseUrl) and apiKey');
  checkKeys(options, KNOWN_OPTIONS, '');
  const o = options as ChargebeePortalLogoutOptions;

  if (typeof o.apiKey !== 'string' || o.apiKey === '') fail('option apiKey is required (a Chargebee API key string)');
  if (o.site !== undefined && typeof o.site !== 'string') fail(`option site must be a string, got ${typeof o.site}`);
  if (o.baseUrl !== undefined && typeof o.baseUrl !== 'string') fail(`option baseUrl must be a string, got ${typeof o.baseUrl}`);
  if (o.site === undefined && o.baseUrl === undefined) fail('option site (or baseUrl) is required');
  const timeoutMs = o.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  if (typeof timeoutMs !== 'number' || !Number.isFinite(timeoutMs) || timeoutMs <= 0) fail('option timeoutMs must be a positive number of milliseconds');

  const budgetMs = positiveNumber(o.budgetMs, 'budgetMs', DEFAULT_BUDGET_MS);
  if (o.failClosed !== undefined && typeof o.failClosed !== 'boolean') fail('option failClosed must be a boolean');
  const failClosed = o.failClosed ?? false;
  const retry = normalizeRetry(o.retry);
  const deferred = normalizeDeferred(o.deferred, failClosed);
  const circuitBreaker = normalizeBreaker(o.circuitBreaker);
  if (o.skipCrossSiteGet !== undefined && typeof o.skipCrossSiteGet !== 'boolean') fail('option skipCrossSiteGet must be a boolean');

  // One client per site and key, so that each has one keep-alive pool and one circuit breaker.
  const clientsByTarget = new Map<string, ChargebeeClient>();
  const clientOnce = (client: ChargebeeClient, apiKey: string): ChargebeeClient => {
    const target = `${client.baseUrl}\n${apiKey}`;
    const existing = clientsByTarget.get(target);
    if (existing) return existing;
    clientsByTarget.set(target, client);
    return client;
  };
  const defaultClient = clientOnce(createClient(o.site, o.apiKey, o.baseUrl, timeoutMs, ''), o.apiKey);
  const entityClients = new Map<string, ChargebeeClient>();
  if (o.businessEntities !== undefined) {
    if (!isPlainObject(o.businessEntities)) fail('option businessEntities must be an object keyed by business-entity ID');
    for (const [entityId, entity] of Object.entries(o.businessEntities)) {
      if (!isValidBusinessEntityId(entityId)) fail(`option businessEntities has an invalid entity ID key (letters, digits, "_", "-", at most 100)`);
      if (!isPlainObject(entity)) fail(`option businessEntities.${entityId} must be an object`);
      checkKeys(entity, ENTITY_OPTIONS, `businessEntities.${entityId}.`);
      const e = entity as BusinessEntityOptions;
      if (e.apiKey !== undefined && (typeof e.apiKey !== 'string' || e.apiKey === '')) fail(`option businessEntities.${entityId}.apiKey must be a non-empty string`);
      for (const key of ['site', 'baseUrl'] as const) {
        if (e[key] !== undefined && typeof e[key] !== 'string') fail(`option businessEntities.${entityId}.${key} must be a string`);
      }
      if (e.site === undefined && e.baseUrl === undefined && e.apiKey === undefined) continue;
      // A new site without a base URL means Chargebee's host for that site, not the top-level base URL.
      const baseUrl = e.baseUrl ?? (e.site === undefined ? o.baseUrl : undefined);
      const apiKey = e.apiKey ?? o.apiKey;
      entityClients.set(entityId, clientOnce(createClient(e.site ?? o.site, apiKey, baseUrl, timeoutMs, `businessEntities.${entityId}.`), apiKey));
    }
  }

  let defaultEntity: (req: Request) => string | undefined = () => undefined;
  if (typeof o.businessEntityId === 'string') {
    if (!isValidBusinessEntityId(o.businessEntityId)) fail('option businessEntityId must be letters, digits, "_" or "-" (at most 100)');
    const id = o.businessEntityId;
    defaultEntity = () => id;
  } else if (typeof o.businessEntityId === 'function') {
    defaultEntity = o.businessEntityId;
  } else if (o.businessEntityId !== undefined) {
    fail(`option businessEntityId must be a string or a function, got ${typeof o.businessEntityId}`);
  }

  const maxRemembered = o.maxRemembered ?? DEFAULT_MAX_REMEMBERED;
  if (!Number.isInteger(maxRemembered) || maxRemembered < 1 || maxRemembered > 100) fail('option maxRemembered must be a whole number from 1 to 100');

  if (o.sessionKey !== undefined && (typeof o.sessionKey !== 'string' || o.sessionKey === '')) fail('option sessionKey must be a non-empty string');
  if (o.cookie !== undefined) {
    if (!isPlainObject(o.cookie)) fail('option cookie must be an object');
    checkKeys(o.cookie, COOKIE_OPTIONS, 'cookie.');
    const c = o.cookie;
    if (c.name !== undefined && (typeof c.name !== 'string' || !COOKIE_NAME.test(c.name))) fail('option cookie.name must be a valid cookie name');
    const secrets = c.secret === undefined ? [] : ([] as unknown[]).concat(c.secret);
    if (c.secret !== undefined && (secrets.length === 0 || secrets.some((s) => typeof s !== 'string' || s === ''))) fail('option cookie.secret must be a non-empty string or an array of them');
    if (c.maxAge !== undefined && (typeof c.maxAge !== 'number' || !Number.isFinite(c.maxAge) || c.maxAge <= 0)) fail('option cookie.maxAge must be a positive number of milliseconds');
    if (c.secure !== undefined && c.secure !== true && c.secure !== false && c.secure !== 'auto') fail('option cookie.secure must be true, false or "auto"');
    for (const key of ['domain', 'path'] as const) {
      if (c[key] !== undefined && (typeof c[key] !== 'string' || !COOKIE_ATTRIBUTE.test(c[key]))) fail(`option cookie.${key} must be visible ASCII without ";"`);
    }
  }

  let store: InternalStore;
  if (o.store === undefined || o.store === 'session') {
    if (o.cookie !== undefined) fail('option cookie is given but store is "session": set store: "cookie" as well');
    store = sessionStore(o.sessionKey ?? 'chargebeePortalSessions');
  } else if (o.store === 'cookie') {
    if (o.sessionKey !== undefined) fail('options sessionKey and store "cookie" cannot be used together');
    store = cookieStore(o.cookie ?? {});
  } else if (typeof o.store === 'function') {
    store = customStore({ read: o.store });
  } else if (isPlainObject(o.store) && typeof o.store.read === 'function') {
    optionalFunction(o.store.write, 'store.write');
    store = customStore(o.store as PortalSessionStore);
  } else {
    fail('option store must be "session", "cookie", a function (req) => ids, or an object with read(req)');
  }
  if (store.kind === 'custom' && (o.sessionKey !== undefined || o.cookie !== undefined)) fail('options sessionKey and cookie apply only to the built-in stores');

  if (o.originHeaders !== undefined) {
    if (!isPlainObject(o.originHeaders)) fail('option originHeaders must be an object');
    checkKeys(o.originHeaders, ORIGIN_OPTIONS, 'originHeaders.');
    for (const key of ORIGIN_OPTIONS) optionalFunction((o.originHeaders as Record<string, unknown>)[key], `originHeaders.${key}`);
  }
  if (o.suppressEvents !== undefined) {
    if (!isPlainObject(o.suppressEvents)) fail('option suppressEvents must be an object like { webhooks: true }');
    checkKeys(o.suppressEvents, SUPPRESS_OPTIONS, 'suppressEvents.');
    for (const [key, value] of Object.entries(o.suppressEvents)) {
      if (typeof value !== 'boolean') fail(`option suppressEvents.${key} must be a boolean`);
    }
  }
  optionalFunction(o.onOutcome, 'onOutcome');
  if (o.logger !== undefined && (typeof o.logger !== 'object' || o.logger === null || typeof o.logger.child !== 'function')) {
    fail('option logger must be a pino logger');
  }

  return {
    store,
    maxRemembered,
    defaultEntity,
    clientFor: (entityId) => (entityId !== undefined && entityClients.get(entityId)) || defaultClient,
    clients: [...clientsByTarget.values()],
    timeoutMs,
    budgetMs,
    retry,
    deferred,
    circuitBreaker,
    skipCrossSiteGet: o.skipCrossSiteGet ?? true,
    ip: o.originHeaders?.ip ?? ((req) => req.ip),
    device: o.originHeaders?.device ?? ((req) => req.headers['user-agent']),
    email: o.originHeaders?.email ?? defaultEmail,
    suppressEvents: { ...o.suppressEvents },
    failClosed,
    onOutcome: o.onOutcome,
    logger: o.logger ?? defaultLogger(),
  };
}

function defaultEmail(req: Request): string | undefined {
  const user = (req as unknown as { user?: { email?: unknown } }).user;
  return typeof user?.email === 'string' ? user.email : undefined;
}

/**
 * Synchronous writes to stdout: one line per logout costs a write call instead of a thread-pool round trip
 * (about 35 µs less per logout in `npm run bench`), and the lines `close()` writes at shutdown are not lost
 * when the process exits right after.
 */
function defaultLogger(): Logger {
  return pino(pino.destination({ dest: 1, sync: true }));
}
