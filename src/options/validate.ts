import type { Request } from 'express';
import type { Logger } from 'pino';
import { isValidBusinessEntityId } from '../base/identifiers';
import type { EventSuppression } from '../base/origin-headers';
import type { PortalSessionOutcome } from '../base/outcome';
import { isPlainObject, OptionCheck, typeOf } from '../base/validate';
import { resolveBaseUrl } from '../chargebee/client';
import { openTelemetryApi } from '../observability/telemetry';
import { SCHEDULING_METHODS, STORE_METHODS, type DeferredLogoutStore } from '../queue/store';
import { REGISTRY_METHODS, type PortalSessionRegistry } from '../registry/registry';
import type { PortalSessionCookieOptions } from '../remembered/cookie-store';
import type { PortalSessionStore } from '../remembered/store';
import { DEFAULT_CIRCUIT_BREAKER, type CircuitBreakerOptions } from '../reliability/circuit-breaker';
import { DEFAULT_DRAIN_RATE_PER_MINUTE } from '../reliability/rate-limit';
import { DEFAULT_BUDGET_MS, DEFAULT_MAX_ATTEMPTS } from '../reliability/retry';
import type { BusinessEntityOptions, ChargebeePortalLogoutOptions, RequestValue } from './types';

/**
 * The app's options, checked once at setup: every rule about what an option may be, what it defaults to
 * and which options go together lives here. Nothing is built here (see build.ts); a bad option throws a
 * `TypeError` that names it and says the fix.
 */

/** The options after validation: plain values, with the app's own objects and functions passed through. */
export interface ValidatedOptions {
  apiKey: string;
  /** The base URL of the default site. */
  baseUrl: string;
  /** Business entities with a site or key of their own. */
  entities: Map<string, { baseUrl: string; apiKey: string }>;
  budgetMs: number;
  /** Most attempts per portal session inside a request; 1 with `retry: false`. */
  maxAttempts: number;
  deferred: false | { store: DeferredLogoutStore | undefined; maxAgeMs: number; ratePerMinute: number | undefined };
  circuitBreaker: false | Required<CircuitBreakerOptions>;
  skipCrossSiteGet: boolean;
  store:
    | { kind: 'session' }
    | { kind: 'cookie'; cookie: PortalSessionCookieOptions }
    | { kind: 'custom'; store: PortalSessionStore };
  defaultEntity: RequestValue;
  originHeaders: { ip?: RequestValue; device?: RequestValue; email?: RequestValue };
  suppressEvents: EventSuppression;
  failClosed: boolean;
  onOutcome?: (outcome: PortalSessionOutcome, req: Request | undefined) => unknown;
  /** `false`: none at all; otherwise the providers to use (the global ones when absent). */
  telemetry: false | { tracerProvider?: object; meterProvider?: object };
  /** `true`: the in-memory registry; `false`: none. */
  registry: boolean | PortalSessionRegistry;
  everywhere: ((req: Request) => unknown) | undefined;
  customerId: ((req: Request) => unknown) | undefined;
  expiry: { maxAgeMs: number | undefined; idleMs: number | undefined } | undefined;
  logger: Logger | undefined;
  /** Setup warnings, logged once when the middleware is created. */
  warnings: string[];
}

const check: OptionCheck = new OptionCheck('chargebeePortalLogout');

const KNOWN = new Set([
  'site',
  'apiKey',
  'baseUrl',
  'budgetMs',
  'retry',
  'deferred',
  'circuitBreaker',
  'skipCrossSiteGet',
  'store',
  'cookie',
  'businessEntityId',
  'businessEntities',
  'originHeaders',
  'suppressEvents',
  'failClosed',
  'onOutcome',
  'telemetry',
  'registry',
  'everywhere',
  'customerId',
  'expiry',
  'logger',
]);

/** Options of earlier versions, with what replaces them. */
const REMOVED: Record<string, string> = {
  timeoutMs: 'budgetMs bounds every call',
  maxSockets: 'each Chargebee client opens at most 50 sockets',
  sessionKey: 'the session store keeps req.session.chargebeePortalSessions',
  maxRemembered: 'at most 10 portal sessions are remembered per app session',
  'retry.baseDelayMs': 'the backoff is fixed within budgetMs',
  'retry.maxDelayMs': 'the backoff is fixed within budgetMs',
  'deferred.baseDelayMs': 'the background backoff is fixed, and ends when Chargebee answers',
  'deferred.maxDelayMs': 'the background backoff is fixed, and ends when Chargebee answers',
  'deferred.concurrency': 'it follows deferred.ratePerMinute',
  'deferred.maxQueued': 'pass deferred.store: new MemoryDeferredLogoutStore(maxQueued)',
  'expiry.activityIntervalMs': 'activity writes at most once per tenth of idleMs',
};

const SECTIONS = {
  retry: new Set(['maxAttempts']),
  deferred: new Set(['store', 'maxAgeMs', 'ratePerMinute']),
  circuitBreaker: new Set(['failureThreshold', 'coolOffMs']),
  telemetry: new Set(['tracerProvider', 'meterProvider']),
  cookie: new Set(['name', 'secret', 'signed', 'maxAge', 'secure', 'domain', 'path']),
  entity: new Set(['site', 'apiKey', 'baseUrl']),
  originHeaders: new Set(['ip', 'device', 'email']),
  suppressEvents: new Set(['webhooks', 'emails', 'actions']),
  expiry: new Set(['maxAgeMs', 'idleMs']),
};

const COOKIE_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const COOKIE_ATTRIBUTE = /^[\u0021-\u003a\u003c-\u007e]+$/; // visible ASCII without ";"
/** Default time a deferred logout is retried before it is given up. */
export const DEFAULT_DEFERRED_MAX_AGE_MS = 24 * 3600 * 1000;
const YEAR_MS = 365 * 24 * 3600 * 1000;

function refuseRemoved(value: Record<string, unknown>, prefix: string): void {
  for (const key of Object.keys(value)) {
    const why = REMOVED[prefix + key];
    if (why !== undefined) check.fail(`option ${prefix}${key} was removed: ${why}`);
  }
}

/** Checks every option once, at setup. Throws a `TypeError` that names the faulty option. */
export function validateOptions(options: ChargebeePortalLogoutOptions): ValidatedOptions {
  const raw: unknown = options;
  if (!isPlainObject(raw)) check.fail('options must be an object with at least site (or baseUrl) and apiKey');
  refuseRemoved(raw, '');
  check.keys(raw, KNOWN);
  const o = options;
  const warnings: string[] = [];

  if (typeof o.apiKey !== 'string' || o.apiKey === '')
    check.fail('option apiKey is required (a Chargebee API key string)');
  if (o.site !== undefined && typeof o.site !== 'string')
    check.fail(`option site must be a string, got ${typeOf(o.site)}`);
  if (o.baseUrl !== undefined && typeof o.baseUrl !== 'string')
    check.fail(`option baseUrl must be a string, got ${typeOf(o.baseUrl)}`);
  if (o.site === undefined && o.baseUrl === undefined) check.fail('option site (or baseUrl) is required');
  checkApiKey(o.apiKey, 'apiKey');
  const baseUrl = siteUrl(o.site, o.baseUrl, '');

  const failClosed = check.boolean(o.failClosed, 'failClosed', false);
  if (isPlainObject(o.retry)) refuseRemoved(o.retry, 'retry.');
  const retry = check.section(o.retry, 'retry', SECTIONS.retry);
  const deferred = validateDeferred(o.deferred, failClosed);
  const expiry = validateExpiry(o.expiry, deferred);
  const store = validateStore(o, warnings);
  const registry = validateRegistry(o);

  return {
    apiKey: o.apiKey,
    baseUrl,
    entities: validateEntities(o),
    budgetMs: check.ms(o.budgetMs, 'budgetMs', DEFAULT_BUDGET_MS, 1),
    maxAttempts: retry === false ? 1 : check.whole(retry.maxAttempts, 'retry.maxAttempts', DEFAULT_MAX_ATTEMPTS, 1, 20),
    deferred,
    circuitBreaker: validateBreaker(o.circuitBreaker),
    skipCrossSiteGet: check.boolean(o.skipCrossSiteGet, 'skipCrossSiteGet', true),
    store,
    defaultEntity: validateDefaultEntity(o.businessEntityId),
    originHeaders: validateOriginHeaders(o.originHeaders),
    suppressEvents: validateSuppression(o.suppressEvents),
    failClosed,
    onOutcome: check.func(o.onOutcome, 'onOutcome') as ValidatedOptions['onOutcome'],
    telemetry: validateTelemetry(o.telemetry),
    ...registry,
    expiry,
    logger: validateLogger(o.logger),
    warnings,
  };
}

function checkApiKey(apiKey: unknown, name: string): void {
  // The key goes into an HTTP header: visible ASCII, no spaces. The message never quotes it.
  if (typeof apiKey !== 'string' || apiKey === '' || !/^[\x21-\x7e]+$/.test(apiKey))
    check.fail(`option ${name} must be a non-empty string without spaces or control characters`);
}

/** A site's base URL; the client's message names the bare option, so say where it came from. */
function siteUrl(site: string | undefined, baseUrl: string | undefined, where: string): string {
  try {
    return resolveBaseUrl(site, baseUrl);
  } catch (error) {
    return check.fail((error as Error).message.replace(/^option /, `option ${where}`));
  }
}

function validateEntities(o: ChargebeePortalLogoutOptions): ValidatedOptions['entities'] {
  const entities: ValidatedOptions['entities'] = new Map();
  if (o.businessEntities === undefined) return entities;
  if (!isPlainObject(o.businessEntities))
    check.fail('option businessEntities must be an object keyed by business-entity ID');
  for (const [entityId, entity] of Object.entries(o.businessEntities)) {
    if (!isValidBusinessEntityId(entityId))
      check.fail(`option businessEntities has an invalid entity ID key (letters, digits, "_", "-", at most 100)`);
    const where = `businessEntities.${entityId}`;
    const e = check.object(entity, where, SECTIONS.entity) as BusinessEntityOptions;
    for (const key of ['site', 'baseUrl'] as const) {
      if (e[key] !== undefined && typeof e[key] !== 'string') check.fail(`option ${where}.${key} must be a string`);
    }
    if (e.apiKey !== undefined) checkApiKey(e.apiKey, `${where}.apiKey`);
    if (e.site === undefined && e.baseUrl === undefined && e.apiKey === undefined) continue;
    // A new site without a base URL means Chargebee's host for that site, not the top-level base URL.
    const baseUrl = e.baseUrl ?? (e.site === undefined ? o.baseUrl : undefined);
    entities.set(entityId, { baseUrl: siteUrl(e.site ?? o.site, baseUrl, `${where}.`), apiKey: e.apiKey ?? o.apiKey });
  }
  return entities;
}

function validateDeferred(value: unknown, failClosed: boolean): ValidatedOptions['deferred'] {
  if (failClosed && value !== undefined && value !== false)
    check.fail(
      "can't pass failClosed: true and deferred together: failing closed never defers (set deferred: false or leave it out)",
    );
  if (isPlainObject(value)) refuseRemoved(value, 'deferred.');
  const d = check.section(value, 'deferred', SECTIONS.deferred);
  if (d === false || failClosed) return false;
  const store = check.implementation(d.store, 'deferred.store', STORE_METHODS, 'an object (see DeferredLogoutStore)');
  let ratePerMinute: number | undefined;
  if (d.ratePerMinute !== false)
    ratePerMinute = check.positive(
      d.ratePerMinute,
      'deferred.ratePerMinute',
      DEFAULT_DRAIN_RATE_PER_MINUTE,
      'requests per minute, or false for no limit',
    );
  return {
    store: store as DeferredLogoutStore | undefined,
    maxAgeMs: check.ms(d.maxAgeMs, 'deferred.maxAgeMs', DEFAULT_DEFERRED_MAX_AGE_MS, 1, YEAR_MS),
    ratePerMinute,
  };
}

function validateExpiry(value: unknown, deferred: ValidatedOptions['deferred']): ValidatedOptions['expiry'] {
  if (value === undefined || value === false) return undefined;
  if (isPlainObject(value)) refuseRemoved(value, 'expiry.');
  const e = check.object(
    value,
    'expiry',
    SECTIONS.expiry,
    'false or an object like { maxAgeMs: 3600000, idleMs: 1800000 }',
  );
  const maxAgeMs = e.maxAgeMs === undefined ? undefined : check.ms(e.maxAgeMs, 'expiry.maxAgeMs', 0, 1000, YEAR_MS);
  const idleMs = e.idleMs === undefined ? undefined : check.ms(e.idleMs, 'expiry.idleMs', 0, 1000, YEAR_MS);
  if (maxAgeMs === undefined && idleMs === undefined)
    check.fail('option expiry needs maxAgeMs, idleMs or both (or set expiry: false)');
  if (deferred === false)
    check.fail("can't pass expiry with deferred: false or failClosed: true: scheduled logouts ride the deferred queue");
  const store = deferred.store as unknown as Record<string, unknown> | undefined;
  const missing = SCHEDULING_METHODS.filter((method) => store !== undefined && typeof store[method] !== 'function');
  if (missing.length > 0)
    check.fail(
      `option expiry needs a deferred.store with ${missing.map((m) => `${m}()`).join(', ')} (see DeferredLogoutStore; ` +
        'the in-memory, Redis and PostgreSQL stores have them)',
    );
  return { maxAgeMs, idleMs };
}

function validateBreaker(value: unknown): ValidatedOptions['circuitBreaker'] {
  const b = check.section(value, 'circuitBreaker', SECTIONS.circuitBreaker);
  if (b === false) return false;
  return {
    failureThreshold: check.whole(
      b.failureThreshold,
      'circuitBreaker.failureThreshold',
      DEFAULT_CIRCUIT_BREAKER.failureThreshold,
      1,
      1_000_000,
    ),
    coolOffMs: check.ms(b.coolOffMs, 'circuitBreaker.coolOffMs', DEFAULT_CIRCUIT_BREAKER.coolOffMs, 1),
  };
}

function validateTelemetry(value: unknown): ValidatedOptions['telemetry'] {
  const t = check.section(value, 'telemetry', SECTIONS.telemetry);
  if (t === false) return false;
  for (const [key, method] of [
    ['tracerProvider', 'getTracer'],
    ['meterProvider', 'getMeter'],
  ] as const) {
    const provider = t[key] as Record<string, unknown> | undefined;
    if (provider === undefined) continue;
    if (typeof provider !== 'object' || provider === null || typeof provider[method] !== 'function')
      check.fail(`option telemetry.${key} must be an OpenTelemetry ${key} (an object with ${method}())`);
    if (!openTelemetryApi())
      check.fail(`option telemetry.${key} needs @opentelemetry/api: install it next to your OpenTelemetry SDK`);
  }
  const { tracerProvider, meterProvider } = t as { tracerProvider?: object; meterProvider?: object };
  return { ...(tracerProvider ? { tracerProvider } : {}), ...(meterProvider ? { meterProvider } : {}) };
}

function validateStore(o: ChargebeePortalLogoutOptions, warnings: string[]): ValidatedOptions['store'] {
  if (o.store === undefined || o.store === 'session') {
    if (o.cookie !== undefined)
      check.fail('option cookie is given but store is "session": set store: "cookie" as well');
    return { kind: 'session' };
  }
  if (o.store === 'cookie') {
    const cookie = validateCookie(o.cookie);
    if (cookie.signed === false)
      warnings.push(
        'the portal-session cookie is unsigned (cookie.signed: false): a user can edit it and make this server ' +
          'send logouts for portal-session IDs of their choosing; set cookie.secret or use cookieParser(secret)',
      );
    return { kind: 'cookie', cookie };
  }
  if (o.cookie !== undefined) check.fail('option cookie applies only to store: "cookie"');
  if (typeof o.store === 'function') return { kind: 'custom', store: { read: o.store } };
  const custom: unknown = o.store;
  if (isPlainObject(custom) && typeof custom.read === 'function') {
    check.func(custom.write, 'store.write');
    return { kind: 'custom', store: custom as unknown as PortalSessionStore };
  }
  return check.fail('option store must be "session", "cookie", a function (req) => ids, or an object with read(req)');
}

function validateCookie(value: unknown): PortalSessionCookieOptions {
  const c = check.object(value, 'cookie', SECTIONS.cookie) as PortalSessionCookieOptions;
  if (c.name !== undefined && (typeof c.name !== 'string' || !COOKIE_NAME.test(c.name)))
    check.fail('option cookie.name must be a valid cookie name');
  const secrets = c.secret === undefined ? [] : ([] as unknown[]).concat(c.secret);
  if (c.secret !== undefined && (secrets.length === 0 || secrets.some((s) => typeof s !== 'string' || s === '')))
    check.fail('option cookie.secret must be a non-empty string or an array of them');
  check.boolean(c.signed, 'cookie.signed', true);
  if (c.signed === false && c.secret !== undefined)
    check.fail("can't pass cookie.signed: false and cookie.secret together: a secret signs the cookie");
  if (c.maxAge !== undefined) check.ms(c.maxAge, 'cookie.maxAge', 0, 1000, 400 * 24 * 3600 * 1000);
  if (c.secure !== undefined && c.secure !== true && c.secure !== false && c.secure !== 'auto')
    check.fail('option cookie.secure must be true, false or "auto"');
  for (const key of ['domain', 'path'] as const) {
    if (c[key] !== undefined && (typeof c[key] !== 'string' || !COOKIE_ATTRIBUTE.test(c[key])))
      check.fail(`option cookie.${key} must be visible ASCII without ";"`);
  }
  return { ...c };
}

function validateDefaultEntity(value: unknown): RequestValue {
  if (value === undefined) return () => undefined;
  if (typeof value === 'function') return value as RequestValue;
  if (typeof value !== 'string')
    check.fail(`option businessEntityId must be a string or a function, got ${typeOf(value)}`);
  if (!isValidBusinessEntityId(value))
    check.fail('option businessEntityId must be letters, digits, "_" or "-" (at most 100)');
  const id: string = value;
  return () => id;
}

function validateOriginHeaders(value: unknown): ValidatedOptions['originHeaders'] {
  const h = check.object(value, 'originHeaders', SECTIONS.originHeaders);
  return {
    ip: check.func(h.ip, 'originHeaders.ip') as RequestValue | undefined,
    device: check.func(h.device, 'originHeaders.device') as RequestValue | undefined,
    email: check.func(h.email, 'originHeaders.email') as RequestValue | undefined,
  };
}

function validateSuppression(value: unknown): EventSuppression {
  const s = check.object(value, 'suppressEvents', SECTIONS.suppressEvents, 'an object like { webhooks: true }');
  for (const [key, flag] of Object.entries(s)) {
    if (typeof flag !== 'boolean') check.fail(`option suppressEvents.${key} must be a boolean`);
  }
  return { ...s };
}

function validateRegistry(
  o: ChargebeePortalLogoutOptions,
): Pick<ValidatedOptions, 'registry' | 'everywhere' | 'customerId'> {
  const customerId = check.func(o.customerId, 'customerId', 'a function (req) => customer ID') as
    ((req: Request) => unknown) | undefined;
  const given: unknown = o.everywhere;
  let everywhere: ValidatedOptions['everywhere'];
  if (given === true) everywhere = () => true;
  else if (typeof given === 'function') everywhere = given as ValidatedOptions['everywhere'];
  else if (given !== undefined && given !== false)
    check.fail(`option everywhere must be a boolean or a function (req) => boolean, got ${typeOf(given)}`);

  let registry: ValidatedOptions['registry'];
  if (o.registry === undefined) registry = everywhere !== undefined;
  else if (typeof o.registry === 'boolean') registry = o.registry;
  else
    registry = (check.implementation(
      o.registry,
      'registry',
      REGISTRY_METHODS,
      'PortalSessionRegistry',
      'true, false or an object',
    ) ?? false) as PortalSessionRegistry | false;

  if (everywhere && registry === false)
    check.fail("can't pass everywhere and registry: false together: signing out everywhere reads the registry");
  if (everywhere && !customerId)
    check.fail(
      "option everywhere needs customerId: (req) => the signed-in user's Chargebee customer ID; the customer " +
        "is never taken from what the user's own store holds (a cookie can be edited or replayed)",
    );
  return { registry, everywhere, customerId };
}

function validateLogger(value: unknown): Logger | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'object' || value === null || typeof (value as Logger).child !== 'function')
    check.fail('option logger must be a pino logger');
  return value as Logger;
}
