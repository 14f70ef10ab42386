import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { Logger } from 'pino';
import type { ChargebeeClient, PortalSession } from '../chargebee/client';
import { PortalLogoutError } from '../base/outcome';
import {
  checkBusinessEntityId,
  checkCustomerId,
  isValidBusinessEntityId,
  isValidPortalSessionId,
} from '../base/identifiers';
import { errorFields, safeLog, type Log } from '../base/logging';
import { LogoutCore, type EndedHook } from '../logout/core';
import { checkLogoutCustomerId, customerLogoutHeaders, type LogoutCustomerOptions } from '../logout/customer';
import { customerOfRequest, othersToEnd } from './everywhere';
import { ENDED_STATUSES, FORGOTTEN_STATUSES, type PortalLogoutOutcome } from '../base/outcome';
import { buildSettings, type Settings } from '../options/build';
import { DEFAULT_TUNING, type Tuning } from '../options/tuning';
import { validateOptions } from '../options/validate';
import type { ChargebeePortalLogoutOptions } from '../options/types';
import { OpenPortalSessions } from '../registry/open-portal-sessions';
import type { RegisteredPortalSession } from '../registry/registry';
import { addRemembered, rememberedEntry } from '../remembered/list';
import { forgetEnded, loadRemembered, logDropped, validEntries } from '../remembered/load-and-forget';
import { createHealthCheck, type HealthCheckHandler, type HealthCheckOptions } from '../observability/health';
import type { PortalLogoutStats } from '../observability/stats';
import { isCrossSiteSafeRequest } from './cross-site';
import { appValue, requestValues } from './request-values';
import { TRUST_PROXY_WARNING, trustsEveryProxy } from './trust-proxy';
import { PortalSessionExpiry } from '../logout/expiry';
import { activityHook } from './activity';
import { epochNow, now } from '../base/time';

const NO_REGISTRY =
  'needs the registry of open portal sessions: set the option registry: true (this process), ' +
  'or pass a shared one (RedisPortalSessionRegistry, PostgresPortalSessionRegistry)';

/** Default time `close()` gives the deferred queue to drain. */
export const DEFAULT_CLOSE_TIMEOUT_MS = 5000;

/** The middleware, plus what the app calls where it creates portal sessions. */
export interface PortalLogoutMiddleware extends RequestHandler {
  /**
   * Remembers a portal session for the current user, where the middleware will look at logout. Call it
   * right after creating the portal session, before answering. Throws `TypeError` for an invalid ID.
   */
  remember(
    req: Request,
    res: Response,
    portalSession: string | (Pick<PortalSession, 'id'> & Partial<Pick<PortalSession, 'customer_id'>>),
    options?: {
      businessEntityId?: string;
      /**
       * The Chargebee customer, for the registry (`logoutCustomer`, `everywhere`). Default: the portal
       * session's `customer_id`, else the `customerId` option's answer. `TypeError` for an implausible one.
       */
      customerId?: string;
    },
  ): Promise<void>;
  /**
   * Ends every registered portal session of a Chargebee customer, whichever app session, device or
   * instance opened it (a password reset, an account deletion, an admin's action, a job): the same retries,
   * budget, deferral and outcome as a logout, without a request. No origin headers are sent unless given.
   * Rejects with a `TypeError` for an implausible customer ID or a bad option, never for a Chargebee or
   * registry fault (those are in the outcome and the log).
   */
  logoutCustomer(customerId: string, options?: LogoutCustomerOptions): Promise<PortalLogoutOutcome>;
  /**
   * The registered open portal sessions of a customer, oldest first, for an account page that lists the
   * customer's devices: those of the business entity when one is given, else all on the default site (the
   * site of `baseUrl`), the same ones `logoutCustomer()` would end. Rejects with a `TypeError` without a
   * registry or for an implausible customer ID, and with a
   * `PortalSessionRegistryError` (its message names no customer or ID) when the registry fails or does not
   * answer within the budget.
   */
  openPortalSessions(customerId: string, options?: { businessEntityId?: string }): Promise<RegisteredPortalSession[]>;
  /**
   * The activity hook of idle expiry (option `expiry.idleMs`): mount it on your authenticated routes,
   * after the session middleware, such as `app.use('/account', requireAuth, portalLogout.activity)`. Each
   * request keeps the app session's portal sessions from being logged out as idle; at most one store write
   * per app session per tenth of `expiry.idleMs` (at most a minute, in this process), made after `next()`. It never
   * fails a request. Without `expiry.idleMs` it does nothing (logged once).
   */
  activity: RequestHandler;
  /** The Chargebee client for a business entity (the default one when absent or not overridden). */
  clientFor(businessEntityId?: string): ChargebeeClient;
  /**
   * A snapshot for dashboards and health checks: the deferred queue (depth, in flight, oldest job's age),
   * the circuit breaker of each site, and counts since start by result and status. No ID, email or key.
   */
  stats(): Promise<PortalLogoutStats>;
  /**
   * A request handler to mount for monitoring (`app.get('/healthz/chargebee', portalLogout.healthCheck())`):
   * 200 while healthy, 503 when the oldest deferred logout or an open circuit breaker passes its limit.
   * The JSON body is a `HealthReport`. Throws `TypeError` for a bad option.
   */
  healthCheck(options?: HealthCheckOptions): HealthCheckHandler;
  /**
   * For a clean shutdown: drains the deferred-logout queue for at most `timeoutMs` (default 5000), logs
   * what is left (count and ID hashes), then closes the clients' keep-alive sockets. Later deferrals fail.
   */
  close(options?: { timeoutMs?: number }): Promise<void>;
}

/**
 * Creates the logout middleware. Mount it on the app's logout route after the auth check and before the
 * app's own logout handler: `app.post('/logout', requireAuth, portalLogout, logoutHandler)`.
 * Options are validated here; a bad one throws a `TypeError` naming it.
 */
export function chargebeePortalLogout(options: ChargebeePortalLogoutOptions): PortalLogoutMiddleware {
  return createPortalLogout(options);
}

/**
 * {@link chargebeePortalLogout} with the package's fixed figures changed (backoffs, sockets, ...): for the
 * tests and benchmarks, which scale time down. Not exported by the package.
 */
export function createPortalLogout(
  options: ChargebeePortalLogoutOptions,
  tuning: Partial<Tuning> = {},
): PortalLogoutMiddleware {
  const settings = buildSettings(validateOptions(options), { ...DEFAULT_TUNING, ...tuning });
  // A binding, not pino's `name`: a child's name would repeat the key when the app's logger has one.
  const baseLogger = settings.logger.child({ component: 'chargebee-portal-logout' });
  const baseLog = safeLog(baseLogger);
  const open = settings.registry
    ? new OpenPortalSessions(settings.registry, baseLog, settings.hashCustomer)
    : undefined;
  // The one place told when portal sessions end, whichever way (a logout, everywhere, logoutCustomer, the
  // queue): whatever keeps track of open portal sessions is updated here.
  // A deferred logout's end (`fromQueue`) cancels nothing: the queue forgets its own job.
  // Without a registry or expiry nothing keeps track of them, and a logout pays nothing for it.
  const ended: EndedHook | undefined =
    open || settings.expiry
      ? async (outcomes, waitUntil, log, fromQueue) => {
          // By site: a not_found from one site says nothing of a portal session of another.
          const bySite = new Map<string, string[]>();
          for (const o of outcomes) {
            if (!ENDED_STATUSES.has(o.status) || o.id === undefined) continue;
            const site = settings.siteFor(o.businessEntityId);
            const ids = bySite.get(site);
            if (ids) ids.push(o.id);
            else bySite.set(site, [o.id]);
          }
          if (bySite.size === 0) return;
          await Promise.all([
            open?.ended(bySite, waitUntil, log),
            fromQueue ? undefined : expiry?.ended([...bySite.values()].flat(), waitUntil),
          ]);
        }
      : undefined;
  const core = new LogoutCore(settings, baseLogger, ended);
  const expiry =
    settings.expiry && core.queue ? new PortalSessionExpiry(settings, settings.expiry, core.queue, baseLog) : undefined;
  const { observer } = settings;
  for (const warning of settings.warnings) baseLog.warn({}, warning);
  // Checked at the first logout of each app: the setting lives on the app, which setup does not see.
  const checkedApps = new WeakSet();

  const middleware = function chargebeePortalLogoutMiddleware(req: Request, res: Response, next: NextFunction): void {
    // Mounted twice on one route, or run again through next('route'): the work is done already.
    if (res.locals.chargebeePortalLogout) return next();
    const log = requestLog(req, baseLog);
    if (settings.ipFromReq && typeof req.app === 'function' && !checkedApps.has(req.app)) {
      checkedApps.add(req.app);
      if (trustsEveryProxy(req)) baseLog.warn({}, TRUST_PROXY_WARNING);
    }
    if (settings.skipCrossSiteGet && isCrossSiteSafeRequest(req)) {
      res.locals.chargebeePortalLogout = { result: 'skipped_cross_site', portalSessions: [], durationMs: 0 };
      observer.skipped(res.locals.chargebeePortalLogout);
      log.warn(
        { chargebeePortalLogout: { result: 'skipped_cross_site', method: req.method } },
        'skipped_cross_site (a GET or HEAD from another site makes no Chargebee call; log out with POST)',
      );
      return next();
    }
    const handOver = (outcome: PortalLogoutOutcome): void => {
      res.locals.chargebeePortalLogout = outcome;
      if (outcome.result === 'failed' && settings.failClosed)
        next(
          new PortalLogoutError(
            'Could not end the Chargebee portal session(s) of this user; the logout was stopped (failClosed)',
            outcome,
          ),
        );
      else next();
    };
    observer
      .logout(() => logoutRequest(settings, core, open, req, res, log))
      .then(handOver, (error: unknown) => {
        // Everything it calls is caught; reaching here is a bug, and the local logout must still happen.
        log.error({ err: errorFields(error) }, 'unexpected error');
        handOver({ result: 'failed', portalSessions: [], error: error as Error, durationMs: 0 });
      })
      .catch((error: unknown) => log.error({ err: errorFields(error) }, 'the next handler threw'));
  } as PortalLogoutMiddleware;

  middleware.remember = async (req, res, portalSession, rememberOptions = {}) => {
    const id = typeof portalSession === 'string' ? portalSession : portalSession?.id;
    if (!isValidPortalSessionId(id))
      throw new TypeError('remember: portal-session ID must be 1 to 70 letters, digits, "_" or "-"');
    const entity = rememberOptions.businessEntityId;
    checkBusinessEntityId(entity, 'remember');
    const given =
      rememberOptions.customerId ?? (typeof portalSession === 'object' ? portalSession?.customer_id : undefined);
    if (given !== undefined) checkCustomerId(given, 'remember');
    if (!settings.store.write)
      throw new TypeError('remember: the configured store has no write(req, res, list) method');
    const log = requestLog(req, baseLog);
    const deadline = now() + settings.budgetMs;
    const customerId = open ? (given ?? (await customerOfRequest(settings, req, deadline, log))) : undefined;
    const current = await settings.store.read(req);
    const entry = rememberedEntry(id, entity);
    const list = addRemembered(validEntries(current.value), entry, settings.maxRemembered);
    logDropped(await settings.store.write(req, res, list), settings.store, log);
    const registering = open !== undefined && customerId !== undefined;
    if (!registering && !expiry) return;
    // The registry and a scheduled logout keep the entity the logout is for, so that a logout without a
    // request sends the right one.
    const fallback = entity ?? (await appValue(settings.defaultEntity, req, deadline, log, 'businessEntityId', false));
    const registeredEntity = isValidBusinessEntityId(fallback) ? fallback : undefined;
    await Promise.all([
      registering &&
        open.record(
          {
            id,
            customerId,
            site: settings.siteFor(registeredEntity),
            ...(registeredEntity === undefined ? {} : { businessEntityId: registeredEntity }),
            rememberedAt: epochNow(),
          },
          deadline,
          log,
        ),
      expiry?.schedule(id, registeredEntity, deadline, log),
    ]);
  };
  middleware.activity = activityHook(expiry, settings.store, settings.budgetMs, baseLog);
  middleware.logoutCustomer = async (customerId, customerOptions = {}) => {
    checkLogoutCustomerId(customerId);
    const headers = customerLogoutHeaders(settings.suppressEvents, customerOptions);
    if (!open) throw new TypeError(`logoutCustomer ${NO_REGISTRY}`);
    const startedAt = now();
    const deadline = startedAt + settings.budgetMs;
    const entity = customerOptions.businessEntityId;
    // Its own span and counts, like a logout's.
    return observer.logout(async () => {
      // The customer of the entity's site (the default site without one): customer IDs are a site's own.
      const found = await open.ofCustomer([settings.siteFor(entity)], customerId, deadline);
      return core.logout({
        portalSessions: ofEntity(found.entries, entity),
        headers,
        deadline,
        startedAt,
        ...(found.failure ? { failure: found.failure } : {}),
      });
    });
  };
  middleware.openPortalSessions = async (customerId, listOptions = {}) => {
    checkCustomerId(customerId, 'openPortalSessions');
    const entity = listOptions?.businessEntityId;
    checkBusinessEntityId(entity, 'openPortalSessions');
    if (!open) throw new TypeError(`openPortalSessions: ${NO_REGISTRY}`);
    const found = await open.ofCustomer([settings.siteFor(entity)], customerId, now() + settings.budgetMs);
    if (found.failure) throw found.failure.error;
    return ofEntity(found.entries, entity);
  };
  middleware.clientFor = (entityId) => settings.clientFor(entityId);
  middleware.stats = () => observer.stats();
  middleware.healthCheck = (healthOptions) => createHealthCheck(() => observer.stats(), healthOptions);
  middleware.close = async (closeOptions = {}) => {
    const timeoutMs = closeOptions?.timeoutMs ?? DEFAULT_CLOSE_TIMEOUT_MS;
    if (typeof timeoutMs !== 'number' || !Number.isFinite(timeoutMs) || timeoutMs < 0)
      throw new TypeError('close: timeoutMs must be a number of milliseconds, 0 or more');
    await core.close(timeoutMs);
  };
  return middleware;
}

/** The registry entries of a business entity, or all of them (the site's) without one. */
function ofEntity<T extends { businessEntityId?: string }>(entries: T[], entity: string | undefined): T[] {
  return entity === undefined ? entries : entries.filter((e) => e.businessEntityId === entity);
}

/** pino-http's `req.log` when there is one, else the middleware's logger; either way, calls that cannot throw. */
function requestLog(req: Request, fallback: Log): Log {
  try {
    const log = (req as unknown as { log?: Logger }).log;
    return log && typeof log.info === 'function' && typeof log.child === 'function' ? safeLog(log) : fallback;
  } catch {
    return fallback;
  }
}

/**
 * Time kept at the end of the budget for the work after the Chargebee calls (handing a logout to the
 * deferred queue, forgetting the ended IDs), so that a store which answers slowly still fits the budget.
 */
function bookkeepingMs(budgetMs: number): number {
  return Math.min(100, budgetMs / 10);
}

/**
 * One logout request: reads the remembered portal sessions and the request's values, has the core log
 * them out, then forgets the ended ones. The budget bounds all of it, the store's calls included.
 */
async function logoutRequest(
  settings: Settings,
  core: LogoutCore,
  open: OpenPortalSessions | undefined,
  req: Request,
  res: Response,
  log: Log,
): Promise<PortalLogoutOutcome> {
  const startedAt = now();
  const deadline = startedAt + settings.budgetMs;
  const callDeadline = deadline - bookkeepingMs(settings.budgetMs);
  const elapsed = () => Math.round((now() - startedAt) * 10) / 10;

  const loading = loadRemembered(settings.store, req, callDeadline, settings.maxRemembered, log);
  const loaded = loading instanceof Promise ? await loading : loading;
  if (!loaded.ok)
    return { result: 'failed', portalSessions: [], error: loaded.error, reason: loaded.reason, durationMs: elapsed() };

  const { entries } = loaded;
  // At a sign-out everywhere, the customer's portal sessions other app sessions opened, from the registry.
  const elsewhere = open ? await othersToEnd(settings, open, req, entries, callDeadline, log) : undefined;
  const all = elsewhere?.entries.length
    ? [...entries, ...elsewhere.entries.map((e) => ({ ...e, elsewhere: true }))]
    : entries;
  const values =
    all.length === 0
      ? { headers: {} }
      : await requestValues(
          settings,
          req,
          callDeadline,
          log,
          all.some((entry) => entry.businessEntityId === undefined),
          elsewhere,
        );
  const outcome = await core.logout({
    portalSessions: all,
    ...values,
    deadline: callDeadline,
    startedAt,
    log,
    req,
    ...(elsewhere?.failure ? { failure: elsewhere.failure } : {}),
  });
  const ended = new Set<unknown>();
  // Only this app session's own entries are in its store (the others follow them in the outcome).
  entries.forEach((entry, i) => {
    if (FORGOTTEN_STATUSES.has(outcome.portalSessions[i].status)) ended.add(entry.id);
  });
  if (loaded.rewrite || ended.size > 0) {
    const forgetting = forgetEnded(settings.store, req, res, ended, deadline, settings.maxRemembered, log);
    const reason = forgetting instanceof Promise ? await forgetting : forgetting;
    if (reason) outcome.reason = reason;
  }
  outcome.durationMs = elapsed();
  return outcome;
}
