import type { Request } from 'express';
import type { Logger } from 'pino';
import type { PortalSessionCookieOptions } from '../remembered/cookie-store';
import type { EventSuppression } from '../base/origin-headers';
import type { PortalSessionOutcome } from '../base/outcome';
import type { PortalSessionStore } from '../remembered/store';
import type { DeferredLogoutStore } from '../queue/store';
import type { CircuitBreakerOptions } from '../reliability/circuit-breaker';
import type { PortalSessionRegistry } from '../registry/registry';

/** The options of `chargebeePortalLogout`, as an app writes them. Validation lives in `normalize.ts`. */

/**
 * A function of the request that gives a header's source value; `undefined` sends no header. It may be
 * async. A throw, a rejection, or no answer within the budget sends no header (logged once).
 */
export type RequestValue = (req: Request) => string | undefined | Promise<string | undefined>;

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
  /**
   * Most attempts per portal session, the first included, from 1 to 20. The waits between them (100 ms
   * doubling, at most 1 s, with jitter, or Chargebee's `Retry-After`) stay within `budgetMs`. Default 4.
   */
  maxAttempts?: number;
}

/** The background queue of logouts that did not fit the request's budget (option `deferred`). */
export interface DeferredLogoutOptions {
  /**
   * Where deferred logouts wait. Default: a `MemoryDeferredLogoutStore` of 10 000 jobs, lost if the process
   * dies (`new MemoryDeferredLogoutStore(n)` for another bound). Give a shared store (`RedisDeferredLogoutStore`,
   * `PostgresDeferredLogoutStore`) when the app runs on several instances.
   */
  store?: DeferredLogoutStore;
  /**
   * A deferred logout still failing this long after its first attempt is given up (logged at error level),
   * up to a year. Default 24 h. Background attempts back off from 1 s to 60 s between tries, and
   * start again at once, within the rate, when Chargebee answers.
   */
  maxAgeMs?: number;
  /**
   * Most background logout requests per minute per Chargebee site, so that a backlog after an outage leaves
   * the site's API rate limit (150 a minute on test sites and small plans) to the app. Per process with the
   * in-memory store; shared by every instance with a store that limits the rate (the Redis store). Up to
   * ten requests may go at once after a quiet time; the queue runs up to one attempt at once per 600 a
   * minute (4 to 32). Logouts inside a request are not limited by it, nor the drain of `close()`. A 429 with
   * `Retry-After` pauses the site's drain as asked in any case. `false`: no limit (4 attempts at once).
   * Default 30.
   */
  ratePerMinute?: number | false;
}

/**
 * A tracer provider, as `@opentelemetry/api` types it (`TracerProvider`); only `getTracer` is used. Typed here
 * so that an app without OpenTelemetry compiles without its types.
 */
export interface TracerProviderLike {
  getTracer(name: string, version?: string, options?: { schemaUrl?: string }): unknown;
}

/** A meter provider, as `@opentelemetry/api` types it (`MeterProvider`); only `getMeter` is used. */
export interface MeterProviderLike {
  getMeter(name: string, version?: string, options?: { schemaUrl?: string }): unknown;
}

/** OpenTelemetry settings (option `telemetry`). */
export interface TelemetryOptions {
  /** Where spans go. Default: the global tracer provider of `@opentelemetry/api` (the app's SDK). */
  tracerProvider?: TracerProviderLike;
  /** Where metrics go. Default: the global meter provider of `@opentelemetry/api` (the app's SDK). */
  meterProvider?: MeterProviderLike;
}

/**
 * Portal sessions that end by themselves (option `expiry`): a maximum age, and idle expiry that follows the
 * app session. Each is a scheduled logout in the deferred queue: a job due in the future, moved later by
 * activity, removed when the portal session ends another way. On the Redis store it works across instances
 * and survives restarts; with the in-memory store it dies with the process.
 */
export interface PortalSessionExpiryOptions {
  /**
   * Maximum portal-session age, in milliseconds: a portal session is logged out this long after
   * `remember()`, whether or not anyone signs out, active or not (outcome reason `portal_max_age`).
   * Default none. Recommended: 1 hour (3 600 000), Chargebee's own lifetime of an unused access URL.
   * From 1000 ms to 365 days.
   */
  maxAgeMs?: number;
  /**
   * Idle expiry, in milliseconds: the portal sessions of an app session are logged out once no request of
   * that app session has gone through `portalLogout.activity` for this long (outcome reason `idle`).
   * Typically your app session's idle timeout. Mount `activity` on your authenticated routes, or this acts
   * as a second maximum age. `activity` writes to the store at most once per app session per tenth of
   * `idleMs` (at most a minute), so an idle logout is made up to that much after `idleMs`. Default none.
   * From 1000 ms to 365 days.
   */
  idleMs?: number;
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
  /**
   * Total time one logout may take inside the request, in milliseconds: reading the remembered IDs, your
   * header and entity functions, all attempts and waits, the deferral and the store write. When it runs out
   * on a retryable failure the logout is deferred (see `deferred`); a store that does not answer in time
   * makes it `failed` (`reason: 'store_timeout'`). A background attempt of the deferred queue may take as
   * long. Default 3000.
   */
  budgetMs?: number;
  /**
   * Retries inside the request for network errors, timeouts, 429 and 500/502/503/504 (never other 4xx),
   * with exponential backoff and full jitter, honouring `Retry-After` when it fits the budget. Every attempt
   * of one portal session's logout carries the same `chargebee-idempotency-key`. `false`: one attempt only.
   * Default `{ maxAttempts: 4 }`.
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
   * Where portal-session IDs are remembered: `'session'` (express-session's `req.session.chargebeePortalSessions`,
   * the default), `'cookie'`, or your own store object or read-only resolver function `(req) => ids`. At
   * most 10 portal sessions are remembered per app session; the oldest are dropped.
   */
  store?: 'session' | 'cookie' | PortalSessionStore | PortalSessionStore['read'];
  /** Settings of the `'cookie'` store. */
  cookie?: PortalSessionCookieOptions;
  /**
   * Default business entity: an ID, or a function of the request. Used for a portal session that was
   * remembered without one. Default none (no `chargebee-business-entity-id` header).
   */
  businessEntityId?: string | RequestValue;
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
   * Called once per portal session with its outcome (metrics, audit). It may be async; nothing waits for
   * it, and a throw or a rejection is logged once. For a deferred logout it is called twice: at the request
   * (status `deferred`), and with the final result (`deferred: true`) where `req` is `undefined`.
   */
  onOutcome?: (outcome: PortalSessionOutcome, req: Request | undefined) => unknown;
  /**
   * OpenTelemetry spans and metrics, through `@opentelemetry/api` when the app has it installed (an optional
   * peer dependency): a span per logout and per background attempt, and the metrics listed in docs/observability.md.
   * Nothing is recorded until the app registers an OpenTelemetry SDK. Attributes carry ID hashes, never an
   * ID, an email or the key. `false`: none at all. `{ tracerProvider, meterProvider }`: use these instead of
   * the global ones. Default `{}` (the global providers).
   */
  telemetry?: false | TelemetryOptions;
  /**
   * The registry of open portal sessions by Chargebee customer, which `logoutCustomer()` and `everywhere`
   * read to end all of a customer's portal sessions: `remember()` records each portal session under its
   * customer, and ended ones leave it. `true`: a `MemoryPortalSessionRegistry` (this process only: 20 per
   * customer, 100 000 in all, kept 30 days). On several instances pass a `RedisPortalSessionRegistry`
   * (`chargebee-portal-logout/redis`) or a `PostgresPortalSessionRegistry` (`chargebee-portal-logout/postgres`).
   * Default: `true` when `everywhere` is set, else `false` (no registry, nothing recorded;
   * `logoutCustomer()` then rejects with a `TypeError`).
   */
  registry?: boolean | PortalSessionRegistry;
  /**
   * At this logout, also end every other portal session of the signed-in customer (other devices, other
   * browsers, expired app sessions), found in the registry: `true`, or a function of the request such as
   * `(req) => req.path === '/logout/everywhere'`. The customer comes from `customerId`, which `everywhere`
   * requires (a `TypeError` at setup without it). Default false: a logout ends this app session's portal
   * sessions only.
   */
  everywhere?: boolean | ((req: Request) => boolean | Promise<boolean>);
  /**
   * The signed-in user's Chargebee customer ID, such as `(req) => req.user?.chargebeeCustomerId`. Used by
   * `remember()` for a portal session given as a bare ID, and by `everywhere`. Default none: the customer
   * is the portal-session object's `customer_id` (or `remember()`'s `customerId` option).
   */
  customerId?: (req: Request) => string | undefined | Promise<string | undefined>;
  /**
   * Portal sessions that end by themselves, even when nobody signs out: a maximum age (`maxAgeMs`) and
   * idle expiry following the app session (`idleMs`, with `portalLogout.activity` mounted on your
   * authenticated routes). Scheduled logouts ride the deferred queue (its store, retries, drain rate and
   * outcome reports), so they need `deferred` (not `false`, not `failClosed`) and a store with `schedule`,
   * `postpone` and `cancel` (the built-in ones have them). Default `false`: a portal session ends only at
   * a logout. See {@link PortalSessionExpiryOptions}.
   */
  expiry?: false | PortalSessionExpiryOptions;
  /**
   * pino logger used when `req.log` (pino-http) is absent. Default: a pino logger at level `info` writing
   * synchronously to stdout. A logger that throws loses its lines, never the logout (a process warning
   * says so once).
   */
  logger?: Logger;
}
