import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { Logger } from 'pino';
import type { ChargebeeClient, PortalSession } from '../chargebee/client';
import { isCrossSiteSafeRequest } from './cross-site';
import { TRUST_PROXY_WARNING, trustsEveryProxy } from './trust-proxy';
import type { DeferredLogoutJob } from '../reliability/deferred-queue';
import { ChargebeeApiError, PortalLogoutError } from '../chargebee/errors';
import { hashPortalSessionId, isValidBusinessEntityId, isValidPortalSessionId } from '../identifiers';
import { normalizeOptions, type Settings } from '../options/normalize';
import type { ChargebeePortalLogoutOptions } from '../options/types';
import {
  deviceFromUserAgent,
  emailHeaders,
  eventSuppressionHeaders,
  normalizeIp,
  ORIGIN_HEADERS,
} from './origin-headers';
import {
  FORGOTTEN_STATUSES,
  portalSessionOutcome,
  summarize,
  type PortalLogoutOutcome,
  type PortalSessionOutcome,
} from '../logout/outcome';
import { PortalSessionLogout, type PortalSessionResult } from '../logout/portal-session-logout';
import { addRemembered, toRememberedList, type RememberedPortalSession } from '../remembered/list';
import { SingleFlight } from '../reliability/single-flight';
import { createHealthCheck, type HealthCheckHandler, type HealthCheckOptions } from '../observability/health';
import type { PortalLogoutStats } from '../observability/stats';

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
    portalSession: string | Pick<PortalSession, 'id'>,
    options?: { businessEntityId?: string },
  ): Promise<void>;
  /** The Chargebee client for a business entity (the default one when absent or not overridden). */
  clientFor(businessEntityId?: string): ChargebeeClient;
  /**
   * For a clean shutdown: drains the deferred-logout queue for at most `timeoutMs` (default 5000), logs
   * what is left (count and ID hashes), then closes the clients' keep-alive sockets. Later deferrals fail.
   */
  close(options?: { timeoutMs?: number }): Promise<void>;
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
}

/**
 * Creates the logout middleware. Mount it on the app's logout route after the auth check and before the
 * app's own logout handler: `app.post('/logout', requireAuth, portalLogout, logoutHandler)`.
 * Options are validated here; a bad one throws a `TypeError` naming it.
 */
export function chargebeePortalLogout(options: ChargebeePortalLogoutOptions): PortalLogoutMiddleware {
  const settings = normalizeOptions(options);
  // A binding, not pino's `name`: a child's name would repeat the key when the app's logger has one.
  const baseLogger = settings.logger.child({ component: 'chargebee-portal-logout' });
  const reportDeferred = (job: DeferredLogoutJob, result: PortalSessionResult) => {
    const outcome = portalSessionOutcome({
      ...result,
      idHash: hashPortalSessionId(job.portalSessionId),
      ...(job.businessEntityId === undefined ? {} : { businessEntityId: job.businessEntityId }),
      deferred: true,
      durationMs: Math.max(0, Date.now() - job.firstAttemptAt),
    });
    writeDeferredLog(baseLogger, outcome);
    settings.observer.deferredResult(job, outcome);
    callOnOutcome(settings, outcome, undefined, baseLogger);
  };
  const logouts = new PortalSessionLogout(settings, reportDeferred, baseLogger);
  const flights = new SingleFlight<PortalSessionResult>();
  const clientIds = new Map<ChargebeeClient, number>(settings.clients.map((client, i) => [client, i]));
  const context: LogoutContext = { settings, logouts, flights, clientIds };
  for (const warning of settings.warnings) baseLogger.warn(`chargebee portal logout: ${warning}`);
  // Checked at the first logout of each app: the setting lives on the app, which setup does not see.
  const checkedApps = new WeakSet();
  const { observer } = settings;
  observer.watch({
    queue: logouts.queue,
    breakers: logouts.breakers,
    clients: settings.clients,
    circuitBreaker: settings.circuitBreaker !== false,
  });

  const middleware = function chargebeePortalLogoutMiddleware(req: Request, res: Response, next: NextFunction): void {
    // Mounted twice on one route, or run again through next('route'): the work is done already.
    if (res.locals.chargebeePortalLogout) return next();
    const log = loggerFor(req, baseLogger);
    if (settings.ipFromReq && typeof req.app === 'function' && !checkedApps.has(req.app)) {
      checkedApps.add(req.app);
      if (trustsEveryProxy(req)) baseLogger.warn(`chargebee portal logout: ${TRUST_PROXY_WARNING}`);
    }
    if (settings.skipCrossSiteGet && isCrossSiteSafeRequest(req)) {
      res.locals.chargebeePortalLogout = { result: 'skipped_cross_site', portalSessions: [], durationMs: 0 };
      observer.skipped(res.locals.chargebeePortalLogout);
      log.warn(
        { chargebeePortalLogout: { result: 'skipped_cross_site', method: req.method } },
        'chargebee portal logout: skipped_cross_site (a GET or HEAD from another site makes no Chargebee call; log out with POST)',
      );
      return next();
    }
    const run = () => logoutAll(context, req, res, log);
    observer.logout(run).then(
      (outcome) => {
        res.locals.chargebeePortalLogout = outcome;
        if (outcome.result === 'failed' && settings.failClosed) {
          next(
            new PortalLogoutError(
              'Could not end the Chargebee portal session(s) of this user; the logout was stopped (failClosed)',
              outcome,
            ),
          );
        } else {
          next();
        }
      },
      // logoutAll catches what it calls; reaching here is a bug, and logout must still happen.
      (error: unknown) => {
        log.error(
          { err: { type: (error as Error)?.name, message: (error as Error)?.message } },
          'chargebee portal logout: unexpected error',
        );
        if (settings.failClosed)
          next(
            new PortalLogoutError(
              'The Chargebee portal logout failed unexpectedly; the logout was stopped (failClosed)',
              { result: 'failed', portalSessions: [], durationMs: 0 },
            ),
          );
        else next();
      },
    );
  } as PortalLogoutMiddleware;

  middleware.remember = async (req, res, portalSession, rememberOptions = {}) => {
    const id = typeof portalSession === 'string' ? portalSession : portalSession?.id;
    if (!isValidPortalSessionId(id))
      throw new TypeError('remember: portal-session ID must be 1 to 70 letters, digits, "_" or "-"');
    const entity = rememberOptions.businessEntityId;
    if (entity !== undefined && !isValidBusinessEntityId(entity))
      throw new TypeError('remember: businessEntityId must be letters, digits, "_" or "-" (at most 100)');
    if (!settings.store.write)
      throw new TypeError('remember: the configured store has no write(req, res, list) method');
    const current = await settings.store.read(req);
    const list = (toRememberedList(current.value) ?? []).filter((e): e is RememberedPortalSession =>
      isValidPortalSessionId(e.id),
    );
    await settings.store.write(req, res, addRemembered(list, { id, businessEntityId: entity }, settings.maxRemembered));
  };
  middleware.clientFor = (entityId) => settings.clientFor(entityId);
  middleware.close = async (closeOptions = {}) => {
    const timeoutMs = closeOptions?.timeoutMs ?? DEFAULT_CLOSE_TIMEOUT_MS;
    if (typeof timeoutMs !== 'number' || !Number.isFinite(timeoutMs) || timeoutMs < 0)
      throw new TypeError('close: timeoutMs must be a number of milliseconds, 0 or more');
    try {
      await logouts.queue?.close(timeoutMs);
    } finally {
      observer.close();
      settings.clients.forEach((client) => client.close());
    }
  };
  middleware.stats = () => observer.stats();
  middleware.healthCheck = (healthOptions) => createHealthCheck(() => observer.stats(), healthOptions);
  return middleware;
}

/** What every logout of one middleware shares. */
interface LogoutContext {
  settings: Settings;
  logouts: PortalSessionLogout;
  flights: SingleFlight<PortalSessionResult>;
  clientIds: Map<ChargebeeClient, number>;
}

function loggerFor(req: Request, fallback: Logger): Logger {
  const log = (req as unknown as { log?: Logger }).log;
  return log && typeof log.info === 'function' && typeof log.child === 'function' ? log : fallback;
}

/** Calls an app-supplied function; a throw or a non-string counts as no value, with a warning. */
function callSafely(fn: (req: Request) => unknown, req: Request, log: Logger, what: string): string | undefined {
  try {
    const value = fn(req);
    return typeof value === 'string' ? value : undefined;
  } catch (error) {
    log.warn(
      { err: { type: (error as Error)?.name } },
      `chargebee portal logout: the ${what} function threw; no ${what} is sent`,
    );
    return undefined;
  }
}

/** The origin and event headers shared by every portal session of this logout. */
function requestHeaders(settings: Settings, req: Request, log: Logger): Record<string, string> {
  const headers: Record<string, string> = { ...eventSuppressionHeaders(settings.suppressEvents) };
  const ip = normalizeIp(callSafely(settings.ip, req, log, 'ip'));
  if (ip) headers[ORIGIN_HEADERS.ip] = ip;
  const device = deviceFromUserAgent(callSafely(settings.device, req, log, 'device'));
  if (device) headers[ORIGIN_HEADERS.device] = device;
  Object.assign(headers, emailHeaders(callSafely(settings.email, req, log, 'email')));
  return headers;
}

async function logoutAll(
  context: LogoutContext,
  req: Request,
  res: Response,
  log: Logger,
): Promise<PortalLogoutOutcome> {
  const { settings } = context;
  const started = performance.now();
  const deadline = started + settings.budgetMs;
  const elapsed = () => Math.round((performance.now() - started) * 10) / 10;

  let stored;
  try {
    stored = await settings.store.read(req);
  } catch (error) {
    const outcome: PortalLogoutOutcome = {
      result: 'failed',
      portalSessions: [],
      error: error as Error,
      durationMs: elapsed(),
    };
    log.error(
      {
        chargebeePortalLogout: {
          result: outcome.result,
          store: settings.store.kind,
          reason: (error as Error)?.message,
        },
      },
      'chargebee portal logout: could not read the remembered portal sessions',
    );
    return outcome;
  }
  let list = toRememberedList(stored.value);
  let rewrite = stored.problem !== undefined;
  if (list === undefined) {
    stored.problem = 'stored value has an unexpected shape';
    list = [];
    rewrite = true;
  }
  if (stored.problem)
    log.warn(
      { chargebeePortalLogout: { store: settings.store.kind, problem: stored.problem } },
      'chargebee portal logout: remembered portal sessions unreadable; counted as none',
    );
  const seen = new Set<unknown>();
  list = list.filter((entry) => !seen.has(entry.id) && seen.add(entry.id));
  if (list.length > settings.maxRemembered) {
    log.warn(
      { chargebeePortalLogout: { remembered: list.length, max: settings.maxRemembered } },
      'chargebee portal logout: more portal sessions remembered than maxRemembered; the oldest are ignored',
    );
    list = list.slice(-settings.maxRemembered);
    rewrite = true;
  }

  let outcomes: PortalSessionOutcome[] = [];
  if (list.length > 0) {
    const headers = requestHeaders(settings, req, log);
    let fallbackEntity: string | undefined | null = null; // resolved once, when first needed
    const entityFor = (remembered: string | undefined) => {
      if (remembered !== undefined) return remembered;
      if (fallbackEntity === null) {
        fallbackEntity = callSafely(settings.defaultEntity, req, log, 'businessEntityId');
        if (fallbackEntity !== undefined && !isValidBusinessEntityId(fallbackEntity)) {
          log.warn('chargebee portal logout: businessEntityId function gave an invalid entity ID; none is sent');
          fallbackEntity = undefined;
        }
      }
      return fallbackEntity;
    };
    outcomes = await Promise.all(
      list.map((entry) => logoutOne(context, entry.id, entityFor(entry.businessEntityId), headers, deadline)),
    );
  }

  const remaining: RememberedPortalSession[] = [];
  list.forEach((entry, i) => {
    if (FORGOTTEN_STATUSES.has(outcomes[i].status)) rewrite = true;
    else
      remaining.push(
        entry.businessEntityId === undefined
          ? { id: entry.id as string }
          : { id: entry.id as string, businessEntityId: entry.businessEntityId },
      );
  });
  if (rewrite && settings.store.write) {
    try {
      await settings.store.write(req, res, remaining);
    } catch (error) {
      log.warn(
        { chargebeePortalLogout: { store: settings.store.kind, reason: (error as Error)?.message } },
        'chargebee portal logout: could not forget the ended portal sessions',
      );
    }
  }

  const outcome: PortalLogoutOutcome = { result: summarize(outcomes), portalSessions: outcomes, durationMs: elapsed() };
  writeLog(log, outcome);
  for (const item of outcomes) callOnOutcome(settings, item, req, log);
  return outcome;
}

function callOnOutcome(settings: Settings, outcome: PortalSessionOutcome, req: Request | undefined, log: Logger): void {
  if (!settings.onOutcome) return;
  try {
    settings.onOutcome(outcome, req);
  } catch (error) {
    log.warn(
      { err: { type: (error as Error)?.name, message: (error as Error)?.message } },
      'chargebee portal logout: onOutcome threw',
    );
  }
}

async function logoutOne(
  context: LogoutContext,
  id: unknown,
  businessEntityId: string | undefined,
  shared: Record<string, string>,
  deadline: number,
): Promise<PortalSessionOutcome> {
  const started = performance.now();
  const idHash = hashPortalSessionId(id);
  const base = { idHash, ...(businessEntityId === undefined ? {} : { businessEntityId }) };
  const done = (fields: PortalSessionResult): PortalSessionOutcome =>
    portalSessionOutcome({
      ...fields,
      ...base,
      durationMs: Math.round((performance.now() - started) * 10) / 10,
    });
  if (!isValidPortalSessionId(id)) return done({ status: 'invalid_id' });

  const headers =
    businessEntityId === undefined ? shared : { ...shared, [ORIGIN_HEADERS.businessEntity]: businessEntityId };
  // A double click logs the same portal session out twice at once: one upstream call, one shared result.
  const client = context.settings.clientFor(businessEntityId);
  const key = `${context.clientIds.get(client)}\n${businessEntityId ?? ''}\n${id}`;
  return done(await context.flights.run(key, () => context.logouts.inline(id, businessEntityId, headers, deadline)));
}

/** The safe fields of a portal session's outcome, for a log line: no raw ID, no email, no key. */
function loggable(o: PortalSessionOutcome): Record<string, unknown> {
  return {
    idHash: o.idHash,
    status: o.status,
    businessEntityId: o.businessEntityId,
    httpStatus: o.httpStatus,
    apiErrorCode: o.apiErrorCode,
    reason: o.reason,
    attempts: o.attempts,
    error: o.status === 'failed' || o.status === 'deferred' ? o.error?.message : undefined,
    durationMs: o.durationMs,
  };
}

function isConfigurationFault(o: PortalSessionOutcome): boolean {
  return o.error instanceof ChargebeeApiError && o.error.isConfigurationFault;
}

function writeLog(log: Logger, outcome: PortalLogoutOutcome): void {
  const entry = {
    chargebeePortalLogout: {
      result: outcome.result,
      durationMs: outcome.durationMs,
      portalSessions: outcome.portalSessions.map(loggable),
    },
  };
  const message = `chargebee portal logout: ${outcome.result}`;
  if (outcome.portalSessions.some(isConfigurationFault))
    log.error(entry, `${message} (check the Chargebee site and API key)`);
  else if (outcome.result === 'failed' || outcome.result === 'deferred') log.warn(entry, message);
  else log.info(entry, message);
}

/** One line per final result of a deferred logout. */
function writeDeferredLog(log: Logger, outcome: PortalSessionOutcome): void {
  const entry = { chargebeePortalLogout: { deferred: true, ...loggable(outcome) } };
  const message = `chargebee portal logout (deferred): ${outcome.status}${outcome.reason ? ` (${outcome.reason})` : ''}`;
  if (isConfigurationFault(outcome)) log.error(entry, `${message} (check the Chargebee site and API key)`);
  else if (outcome.status === 'failed') log.error(entry, `${message}; the portal session may stay open`);
  else log.info(entry, message);
}
