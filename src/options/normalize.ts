import type { Request } from 'express';
import pino, { type Logger } from 'pino';
import { ChargebeeClient, DEFAULT_MAX_SOCKETS, DEFAULT_TIMEOUT_MS } from '../chargebee/client';
import { cookieStore } from '../remembered/cookie-store';
import type { EventSuppression } from '../base/origin-headers';
import { isValidBusinessEntityId } from '../base/identifiers';
import { DEFAULT_MAX_REMEMBERED } from '../remembered/list';
import { sessionStore } from '../remembered/session-store';
import { customStore, type InternalStore } from '../remembered/store';
import { DEFAULT_BUDGET_MS, DEFAULT_RETRY_POLICY, type RetryPolicy } from '../reliability/retry';
import { type DeferredLogoutStore } from '../queue/store';
import { DEFAULT_MAX_QUEUED, MemoryDeferredLogoutStore } from '../queue/memory-store';
import { DEFAULT_DRAIN_RATE_PER_MINUTE } from '../reliability/rate-limit';
import { DEFAULT_CIRCUIT_BREAKER, type CircuitBreakerOptions } from '../reliability/circuit-breaker';
import { normalizeExpiry } from './expiry';
import type { CoreSettings, DeferredSettings, ExpirySettings } from '../logout/settings';
import { normalizeRegistry, type RegistrySettings } from './registry';
import { closestName } from '../base/suggest';
import { LogoutObserver } from '../observability/observer';
import { openTelemetryApi, Telemetry, type TelemetrySettings } from '../observability/telemetry';
import type { BusinessEntityOptions, ChargebeePortalLogoutOptions, RequestValue } from './types';

/** Options after validation, read once at setup. */
export interface Settings extends RegistrySettings, CoreSettings {
  store: InternalStore;
  maxRemembered: number;
  defaultEntity: RequestValue;
  budgetMs: number;
  skipCrossSiteGet: boolean;
  ip: RequestValue;
  /** The IP comes from `req.ip`, so Express's `trust proxy` setting decides it. */
  ipFromReq: boolean;
  /** Setup warnings, logged once when the middleware is created. */
  warnings: string[];
  device: RequestValue;
  email: RequestValue;
  suppressEvents: EventSuppression;
  failClosed: boolean;
  logger: Logger;
  /** Scheduled logouts (maximum age, idle expiry); `undefined` when off. */
  expiry: ExpirySettings | undefined;
}

export const DEFAULT_DEFERRED = {
  maxAgeMs: 24 * 3600 * 1000,
  baseDelayMs: 1000,
  maxDelayMs: 60_000,
  concurrency: 4,
} as const;

const KNOWN_OPTIONS = new Set([
  'site',
  'apiKey',
  'baseUrl',
  'timeoutMs',
  'store',
  'sessionKey',
  'cookie',
  'maxRemembered',
  'businessEntityId',
  'businessEntities',
  'originHeaders',
  'suppressEvents',
  'failClosed',
  'onOutcome',
  'logger',
  'budgetMs',
  'retry',
  'deferred',
  'circuitBreaker',
  'skipCrossSiteGet',
  'telemetry',
  'maxSockets',
  'registry',
  'everywhere',
  'customerId',
  'expiry',
]);
const RETRY_OPTIONS = new Set(['maxAttempts', 'baseDelayMs', 'maxDelayMs']);
const DEFERRED_OPTIONS = new Set([
  'store',
  'maxAgeMs',
  'maxQueued',
  'baseDelayMs',
  'maxDelayMs',
  'concurrency',
  'ratePerMinute',
]);
const BREAKER_OPTIONS = new Set(['failureThreshold', 'coolOffMs']);
const TELEMETRY_OPTIONS = new Set(['tracerProvider', 'meterProvider']);
const DEFERRED_STORE_METHODS = ['add', 'takeDue', 'remove', 'size'] as const;
const COOKIE_OPTIONS = new Set(['name', 'secret', 'signed', 'maxAge', 'secure', 'domain', 'path']);
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
    if (known.has(key)) continue;
    const guess = closestName(key, known);
    const hint = guess === undefined ? '' : `did you mean ${where}${guess}? `;
    fail(`unknown option ${where}${key} (${hint}known: ${[...known].join(', ')})`);
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function optionalFunction(value: unknown, name: string): void {
  if (value !== undefined && typeof value !== 'function')
    fail(`option ${name} must be a function, got ${typeof value}`);
}

function positiveNumber(value: unknown, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0)
    fail(`option ${name} must be a positive number of milliseconds`);
  return value;
}

function nonNegativeNumber(value: unknown, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0)
    fail(`option ${name} must be a number of milliseconds, 0 or more`);
  return value;
}

function wholeNumber(value: unknown, name: string, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || (value as number) < min || (value as number) > max)
    fail(`option ${name} must be a whole number from ${min} to ${max}`);
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
    maxDelayMs: nonNegativeNumber(
      r.maxDelayMs,
      'retry.maxDelayMs',
      Math.max(DEFAULT_RETRY_POLICY.maxDelayMs, (r.baseDelayMs as number | undefined) ?? 0),
    ),
  };
  if (policy.maxDelayMs < policy.baseDelayMs) fail('option retry.maxDelayMs must be at least retry.baseDelayMs');
  return policy;
}

function normalizeDeferred(value: unknown, failClosed: boolean): DeferredSettings | false {
  if (failClosed && value !== undefined && value !== false)
    fail(
      "can't pass failClosed: true and deferred together: failing closed never defers (set deferred: false or leave it out)",
    );
  const d = optionalSection(value, 'deferred', DEFERRED_OPTIONS);
  if (d === false || failClosed) return false;
  let store: DeferredLogoutStore;
  if (d.store !== undefined) {
    const custom = d.store as Record<string, unknown>;
    if (typeof custom !== 'object' || custom === null)
      fail('option deferred.store must be an object (see DeferredLogoutStore)');
    for (const method of DEFERRED_STORE_METHODS) {
      if (typeof custom?.[method] !== 'function')
        fail(`option deferred.store must have a ${method}() method (see DeferredLogoutStore)`);
    }
    if (d.maxQueued !== undefined)
      fail("can't pass deferred.store and deferred.maxQueued together: maxQueued sizes the built-in in-memory store");
    store = d.store as DeferredLogoutStore;
  } else {
    store = new MemoryDeferredLogoutStore(
      wholeNumber(d.maxQueued, 'deferred.maxQueued', DEFAULT_MAX_QUEUED, 1, 10_000_000),
    );
  }
  const settings: DeferredSettings = {
    store,
    maxAgeMs: positiveNumber(d.maxAgeMs, 'deferred.maxAgeMs', DEFAULT_DEFERRED.maxAgeMs),
    baseDelayMs: nonNegativeNumber(d.baseDelayMs, 'deferred.baseDelayMs', DEFAULT_DEFERRED.baseDelayMs),
    maxDelayMs: nonNegativeNumber(
      d.maxDelayMs,
      'deferred.maxDelayMs',
      Math.max(DEFAULT_DEFERRED.maxDelayMs, (d.baseDelayMs as number | undefined) ?? 0),
    ),
    concurrency: wholeNumber(d.concurrency, 'deferred.concurrency', DEFAULT_DEFERRED.concurrency, 1, 1000),
    ratePerMinute: drainRatePerMinute(d.ratePerMinute),
  };
  if (settings.maxDelayMs < settings.baseDelayMs)
    fail('option deferred.maxDelayMs must be at least deferred.baseDelayMs');
  return settings;
}

function drainRatePerMinute(value: unknown): number | undefined {
  if (value === false) return undefined;
  if (value === undefined) return DEFAULT_DRAIN_RATE_PER_MINUTE;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0)
    fail('option deferred.ratePerMinute must be a positive number of requests per minute, or false for no limit');
  return value;
}

function normalizeBreaker(value: unknown): Required<CircuitBreakerOptions> | false {
  const b = optionalSection(value, 'circuitBreaker', BREAKER_OPTIONS);
  if (b === false) return false;
  return {
    failureThreshold: wholeNumber(
      b.failureThreshold,
      'circuitBreaker.failureThreshold',
      DEFAULT_CIRCUIT_BREAKER.failureThreshold,
      1,
      1_000_000,
    ),
    coolOffMs: positiveNumber(b.coolOffMs, 'circuitBreaker.coolOffMs', DEFAULT_CIRCUIT_BREAKER.coolOffMs),
  };
}

function normalizeTelemetry(value: unknown): TelemetrySettings {
  const t = optionalSection(value, 'telemetry', TELEMETRY_OPTIONS);
  if (t === false) return false;
  for (const [key, method] of [
    ['tracerProvider', 'getTracer'],
    ['meterProvider', 'getMeter'],
  ] as const) {
    const provider = t[key] as Record<string, unknown> | undefined;
    if (provider === undefined) continue;
    if (typeof provider !== 'object' || provider === null || typeof provider[method] !== 'function')
      fail(`option telemetry.${key} must be an OpenTelemetry ${key} (an object with ${method}())`);
    if (!openTelemetryApi())
      fail(`option telemetry.${key} needs @opentelemetry/api: install it next to your OpenTelemetry SDK`);
  }
  return t;
}

function createClient(
  site: string | undefined,
  apiKey: string,
  baseUrl: string | undefined,
  timeoutMs: number,
  maxSockets: number,
  where: string,
): ChargebeeClient {
  try {
    return new ChargebeeClient({ site, apiKey, baseUrl, timeoutMs, maxSockets });
  } catch (error) {
    // The client's message names the bare option; say where it came from.
    fail((error as Error).message.replace(/^option /, `option ${where}`));
  }
}

/** Validates options once, at setup. Throws a `TypeError` that names the faulty option. */
export function normalizeOptions(options: ChargebeePortalLogoutOptions): Settings {
  if (!isPlainObject(options)) fail('options must be an object with at least site (or baseUrl) and apiKey');
  checkKeys(options, KNOWN_OPTIONS, '');
  const o = options as ChargebeePortalLogoutOptions;

  if (typeof o.apiKey !== 'string' || o.apiKey === '') fail('option apiKey is required (a Chargebee API key string)');
  if (o.site !== undefined && typeof o.site !== 'string') fail(`option site must be a string, got ${typeof o.site}`);
  if (o.baseUrl !== undefined && typeof o.baseUrl !== 'string')
    fail(`option baseUrl must be a string, got ${typeof o.baseUrl}`);
  if (o.site === undefined && o.baseUrl === undefined) fail('option site (or baseUrl) is required');
  const timeoutMs = o.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  if (typeof timeoutMs !== 'number' || !Number.isFinite(timeoutMs) || timeoutMs <= 0)
    fail('option timeoutMs must be a positive number of milliseconds');

  const budgetMs = positiveNumber(o.budgetMs, 'budgetMs', DEFAULT_BUDGET_MS);
  const maxSockets = wholeNumber(o.maxSockets, 'maxSockets', DEFAULT_MAX_SOCKETS, 1, 10_000);
  if (o.failClosed !== undefined && typeof o.failClosed !== 'boolean') fail('option failClosed must be a boolean');
  const failClosed = o.failClosed ?? false;
  const retry = normalizeRetry(o.retry);
  const deferred = normalizeDeferred(o.deferred, failClosed);
  const expiry = normalizeExpiry(o.expiry, deferred, fail);
  const circuitBreaker = normalizeBreaker(o.circuitBreaker);
  const telemetry = normalizeTelemetry(o.telemetry);
  if (o.skipCrossSiteGet !== undefined && typeof o.skipCrossSiteGet !== 'boolean')
    fail('option skipCrossSiteGet must be a boolean');

  // One client per site and key, so that each has one keep-alive pool and one circuit breaker.
  const clientsByTarget = new Map<string, ChargebeeClient>();
  const clientOnce = (client: ChargebeeClient, apiKey: string): ChargebeeClient => {
    const target = `${client.baseUrl}\n${apiKey}`;
    const existing = clientsByTarget.get(target);
    if (existing) return existing;
    clientsByTarget.set(target, client);
    return client;
  };
  const defaultClient = clientOnce(createClient(o.site, o.apiKey, o.baseUrl, timeoutMs, maxSockets, ''), o.apiKey);
  const entityClients = new Map<string, ChargebeeClient>();
  if (o.businessEntities !== undefined) {
    if (!isPlainObject(o.businessEntities))
      fail('option businessEntities must be an object keyed by business-entity ID');
    for (const [entityId, entity] of Object.entries(o.businessEntities)) {
      if (!isValidBusinessEntityId(entityId))
        fail(`option businessEntities has an invalid entity ID key (letters, digits, "_", "-", at most 100)`);
      if (!isPlainObject(entity)) fail(`option businessEntities.${entityId} must be an object`);
      checkKeys(entity, ENTITY_OPTIONS, `businessEntities.${entityId}.`);
      const e = entity as BusinessEntityOptions;
      if (e.apiKey !== undefined && (typeof e.apiKey !== 'string' || e.apiKey === ''))
        fail(`option businessEntities.${entityId}.apiKey must be a non-empty string`);
      for (const key of ['site', 'baseUrl'] as const) {
        if (e[key] !== undefined && typeof e[key] !== 'string')
          fail(`option businessEntities.${entityId}.${key} must be a string`);
      }
      if (e.site === undefined && e.baseUrl === undefined && e.apiKey === undefined) continue;
      // A new site without a base URL means Chargebee's host for that site, not the top-level base URL.
      const baseUrl = e.baseUrl ?? (e.site === undefined ? o.baseUrl : undefined);
      const apiKey = e.apiKey ?? o.apiKey;
      entityClients.set(
        entityId,
        clientOnce(
          createClient(e.site ?? o.site, apiKey, baseUrl, timeoutMs, maxSockets, `businessEntities.${entityId}.`),
          apiKey,
        ),
      );
    }
  }

  let defaultEntity: RequestValue = () => undefined;
  if (typeof o.businessEntityId === 'string') {
    if (!isValidBusinessEntityId(o.businessEntityId))
      fail('option businessEntityId must be letters, digits, "_" or "-" (at most 100)');
    const id = o.businessEntityId;
    defaultEntity = () => id;
  } else if (typeof o.businessEntityId === 'function') {
    defaultEntity = o.businessEntityId;
  } else if (o.businessEntityId !== undefined) {
    fail(`option businessEntityId must be a string or a function, got ${typeof o.businessEntityId}`);
  }

  const maxRemembered = o.maxRemembered ?? DEFAULT_MAX_REMEMBERED;
  if (!Number.isInteger(maxRemembered) || maxRemembered < 1 || maxRemembered > 100)
    fail('option maxRemembered must be a whole number from 1 to 100');

  if (o.sessionKey !== undefined && (typeof o.sessionKey !== 'string' || o.sessionKey === ''))
    fail('option sessionKey must be a non-empty string');
  if (o.cookie !== undefined) {
    if (!isPlainObject(o.cookie)) fail('option cookie must be an object');
    checkKeys(o.cookie, COOKIE_OPTIONS, 'cookie.');
    const c = o.cookie;
    if (c.name !== undefined && (typeof c.name !== 'string' || !COOKIE_NAME.test(c.name)))
      fail('option cookie.name must be a valid cookie name');
    const secrets = c.secret === undefined ? [] : ([] as unknown[]).concat(c.secret);
    if (c.secret !== undefined && (secrets.length === 0 || secrets.some((s) => typeof s !== 'string' || s === '')))
      fail('option cookie.secret must be a non-empty string or an array of them');
    if (c.signed !== undefined && typeof c.signed !== 'boolean') fail('option cookie.signed must be a boolean');
    if (c.signed === false && c.secret !== undefined)
      fail("can't pass cookie.signed: false and cookie.secret together: a secret signs the cookie");
    if (c.maxAge !== undefined && (typeof c.maxAge !== 'number' || !Number.isFinite(c.maxAge) || c.maxAge <= 0))
      fail('option cookie.maxAge must be a positive number of milliseconds');
    if (c.secure !== undefined && c.secure !== true && c.secure !== false && c.secure !== 'auto')
      fail('option cookie.secure must be true, false or "auto"');
    for (const key of ['domain', 'path'] as const) {
      if (c[key] !== undefined && (typeof c[key] !== 'string' || !COOKIE_ATTRIBUTE.test(c[key])))
        fail(`option cookie.${key} must be visible ASCII without ";"`);
    }
  }

  const warnings: string[] = [];
  let store: InternalStore;
  if (o.store === undefined || o.store === 'session') {
    if (o.cookie !== undefined) fail('option cookie is given but store is "session": set store: "cookie" as well');
    store = sessionStore(o.sessionKey ?? 'chargebeePortalSessions');
  } else if (o.store === 'cookie') {
    if (o.sessionKey !== undefined) fail('options sessionKey and store "cookie" cannot be used together');
    store = cookieStore(o.cookie ?? {});
    if (o.cookie?.signed === false) {
      warnings.push(
        'the portal-session cookie is unsigned (cookie.signed: false): a user can edit it and make this server ' +
          'send logouts for portal-session IDs of their choosing; set cookie.secret or use cookieParser(secret)',
      );
    }
  } else if (typeof o.store === 'function') {
    store = customStore({ read: o.store });
  } else if (isPlainObject(o.store) && typeof o.store.read === 'function') {
    // eslint-disable-next-line @typescript-eslint/unbound-method -- only checked to be a function here
    optionalFunction(o.store.write, 'store.write');
    store = customStore(o.store);
  } else {
    fail('option store must be "session", "cookie", a function (req) => ids, or an object with read(req)');
  }
  if (store.kind === 'custom' && (o.sessionKey !== undefined || o.cookie !== undefined))
    fail('options sessionKey and cookie apply only to the built-in stores');

  if (o.originHeaders !== undefined) {
    if (!isPlainObject(o.originHeaders)) fail('option originHeaders must be an object');
    checkKeys(o.originHeaders, ORIGIN_OPTIONS, 'originHeaders.');
    for (const key of ORIGIN_OPTIONS)
      optionalFunction((o.originHeaders as Record<string, unknown>)[key], `originHeaders.${key}`);
  }
  if (o.suppressEvents !== undefined) {
    if (!isPlainObject(o.suppressEvents)) fail('option suppressEvents must be an object like { webhooks: true }');
    checkKeys(o.suppressEvents, SUPPRESS_OPTIONS, 'suppressEvents.');
    for (const [key, value] of Object.entries(o.suppressEvents)) {
      if (typeof value !== 'boolean') fail(`option suppressEvents.${key} must be a boolean`);
    }
  }
  const registry = normalizeRegistry(o, fail, o.store === 'cookie' && o.cookie?.signed === false);
  warnings.push(...registry.warnings);
  optionalFunction(o.onOutcome, 'onOutcome');
  if (
    o.logger !== undefined &&
    (typeof o.logger !== 'object' || o.logger === null || typeof o.logger.child !== 'function')
  ) {
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
    ipFromReq: o.originHeaders?.ip === undefined,
    warnings,
    device: o.originHeaders?.device ?? ((req) => req.headers['user-agent']),
    email: o.originHeaders?.email ?? defaultEmail,
    suppressEvents: { ...o.suppressEvents },
    failClosed,
    onOutcome: o.onOutcome,
    logger: o.logger ?? defaultLogger(),
    observer: new LogoutObserver(
      new Telemetry(telemetry === false ? null : openTelemetryApi(), telemetry || undefined),
    ),
    registry: registry.registry,
    everywhere: registry.everywhere,
    customerId: registry.customerId,
    expiry,
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
