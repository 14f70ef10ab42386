import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { Logger } from 'pino';
import type { ChargebeeClient, PortalSession } from './client';
import { ChargebeeApiError, ChargebeeError, PortalLogoutError } from './errors';
import { hashPortalSessionId, isValidBusinessEntityId, isValidPortalSessionId } from './identifiers';
import { normalizeOptions, type ChargebeePortalLogoutOptions, type Settings } from './options';
import { deviceFromUserAgent, emailHeaders, eventSuppressionHeaders, normalizeIp, ORIGIN_HEADERS } from './origin-headers';
import { ENDED_STATUSES, summarize, type PortalLogoutOutcome, type PortalSessionOutcome } from './outcome';
import { addRemembered, toRememberedList, type RememberedPortalSession } from './remembered';

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Locals {
      /** Set by chargebee-portal-logout: what happened to the user's portal sessions at this logout. */
      chargebeePortalLogout?: PortalLogoutOutcome;
    }
  }
}

/**
 * A logout that Chargebee reports with a `logout_at` this much older than the call is counted as
 * "already logged out". The margin absorbs clock skew between this server and Chargebee.
 */
const ALREADY_LOGGED_OUT_MARGIN_MS = 5000;

/** The middleware, plus what the app calls where it creates portal sessions. */
export interface PortalLogoutMiddleware extends RequestHandler {
  /**
   * Remembers a portal session for the current user, where the middleware will look at logout. Call it
   * right after creating the portal session, before answering. Throws `TypeError` for an invalid ID.
   */
  remember(req: Request, res: Response, portalSession: string | Pick<PortalSession, 'id'>, options?: { businessEntityId?: string }): Promise<void>;
  /** The Chargebee client for a business entity (the default one when absent or not overridden). */
  clientFor(businessEntityId?: string): ChargebeeClient;
  /** Closes the clients' keep-alive sockets, for a clean shutdown. */
  close(): void;
}

/**
 * Creates the logout middleware. Mount it on the app's logout route after the auth check and before the
 * app's own logout handler: `app.post('/logout', requireAuth, portalLogout, logoutHandler)`.
 * Options are validated here; a bad one throws a `TypeError` naming it.
 */
export function chargebeePortalLogout(options: ChargebeePortalLogoutOptions): PortalLogoutMiddleware {
  const settings = normalizeOptions(options);
  const baseLogger = settings.logger.child({ name: 'chargebee-portal-logout' });

  const middleware = function chargebeePortalLogoutMiddleware(req: Request, res: Response, next: NextFunction): void {
    // Mounted twice on one route, or run again through next('route'): the work is done already.
    if (res.locals.chargebeePortalLogout) return next();
    logoutAll(settings, req, res, loggerFor(req, baseLogger)).then(
      (outcome) => {
        res.locals.chargebeePortalLogout = outcome;
        if (outcome.result === 'failed' && settings.failClosed) {
          next(new PortalLogoutError('Could not end the Chargebee portal session(s) of this user; the logout was stopped (failClosed)', outcome));
        } else {
          next();
        }
      },
      // logoutAll catches what it calls; reaching here is a bug, and logout must still happen.
      (error: unknown) => {
        baseLogger.error({ err: { type: (error as Error)?.name, message: (error as Error)?.message } }, 'chargebee portal logout: unexpected error');
        if (settings.failClosed) next(error);
        else next();
      },
    );
  } as PortalLogoutMiddleware;

  middleware.remember = async (req, res, portalSession, rememberOptions = {}) => {
    const id = typeof portalSession === 'string' ? portalSession : portalSession?.id;
    if (!isValidPortalSessionId(id)) throw new TypeError('remember: portal-session ID must be 1 to 70 letters, digits, "_" or "-"');
    const entity = rememberOptions.businessEntityId;
    if (entity !== undefined && !isValidBusinessEntityId(entity)) throw new TypeError('remember: businessEntityId must be letters, digits, "_" or "-" (at most 100)');
    if (!settings.store.write) throw new TypeError('remember: the configured store has no write(req, res, list) method');
    const current = await settings.store.read(req);
    const list = (toRememberedList(current.value) ?? []).filter((e): e is RememberedPortalSession => isValidPortalSessionId(e.id));
    await settings.store.write(req, res, addRemembered(list, { id, businessEntityId: entity }, settings.maxRemembered));
  };
  middleware.clientFor = (entityId) => settings.clientFor(entityId);
  middleware.close = () => settings.clients.forEach((client) => client.close());
  return middleware;
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
    log.warn({ err: { type: (error as Error)?.name } }, `chargebee portal logout: the ${what} function threw; no ${what} is sent`);
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

async function logoutAll(settings: Settings, req: Request, res: Response, log: Logger): Promise<PortalLogoutOutcome> {
  const started = performance.now();
  const elapsed = () => Math.round((performance.now() - started) * 10) / 10;

  let stored;
  try {
    stored = await settings.store.read(req);
  } catch (error) {
    const outcome: PortalLogoutOutcome = { result: 'failed', portalSessions: [], error: error as Error, durationMs: elapsed() };
    log.error({ chargebeePortalLogout: { result: outcome.result, store: settings.store.kind, reason: (error as Error)?.message } }, 'chargebee portal logout: could not read the remembered portal sessions');
    return outcome;
  }
  let list = toRememberedList(stored.value);
  let rewrite = stored.problem !== undefined;
  if (list === undefined) {
    stored.problem = 'stored value has an unexpected shape';
    list = [];
    rewrite = true;
  }
  if (stored.problem) log.warn({ chargebeePortalLogout: { store: settings.store.kind, problem: stored.problem } }, 'chargebee portal logout: remembered portal sessions unreadable; counted as none');
  const seen = new Set<unknown>();
  list = list.filter((entry) => !seen.has(entry.id) && seen.add(entry.id));
  if (list.length > settings.maxRemembered) {
    log.warn({ chargebeePortalLogout: { remembered: list.length, max: settings.maxRemembered } }, 'chargebee portal logout: more portal sessions remembered than maxRemembered; the oldest are ignored');
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
    outcomes = await Promise.all(list.map((entry) => logoutOne(settings, entry.id, entityFor(entry.businessEntityId), headers)));
  }

  const remaining: RememberedPortalSession[] = [];
  list.forEach((entry, i) => {
    const status = outcomes[i].status;
    if (status === 'invalid_id' || ENDED_STATUSES.has(status)) rewrite = true;
    else remaining.push(entry.businessEntityId === undefined ? { id: entry.id as string } : { id: entry.id as string, businessEntityId: entry.businessEntityId });
  });
  if (rewrite && settings.store.write) {
    try {
      await settings.store.write(req, res, remaining);
    } catch (error) {
      log.warn({ chargebeePortalLogout: { store: settings.store.kind, reason: (error as Error)?.message } }, 'chargebee portal logout: could not forget the ended portal sessions');
    }
  }

  const outcome: PortalLogoutOutcome = { result: summarize(outcomes), portalSessions: outcomes, durationMs: elapsed() };
  writeLog(log, outcome);
  if (settings.onOutcome) {
    for (const item of outcomes) {
      try {
        settings.onOutcome(item, req);
      } catch (error) {
        log.warn({ err: { type: (error as Error)?.name, message: (error as Error)?.message } }, 'chargebee portal logout: onOutcome threw');
      }
    }
  }
  return outcome;
}

async function logoutOne(settings: Settings, id: unknown, businessEntityId: string | undefined, shared: Record<string, string>): Promise<PortalSessionOutcome> {
  const started = performance.now();
  const idHash = hashPortalSessionId(id);
  const base = { idHash, ...(businessEntityId === undefined ? {} : { businessEntityId }) };
  const done = (fields: Omit<PortalSessionOutcome, 'idHash' | 'durationMs'>): PortalSessionOutcome => ({
    ...fields,
    ...base,
    durationMs: Math.round((performance.now() - started) * 10) / 10,
  });
  if (!isValidPortalSessionId(id)) return done({ status: 'invalid_id' });

  const headers = businessEntityId === undefined ? shared : { ...shared, [ORIGIN_HEADERS.businessEntity]: businessEntityId };
  const sentAt = Date.now();
  try {
    const session = await settings.clientFor(businessEntityId).logout(id, headers);
    if (session.status !== 'logged_out') {
      const error = new ChargebeeApiError({ status: 200, message: `Chargebee answered 200 but left the portal session ${session.status}` });
      return done({ status: 'failed', id, httpStatus: 200, error });
    }
    const already = typeof session.logout_at === 'number' && session.logout_at * 1000 < sentAt - ALREADY_LOGGED_OUT_MARGIN_MS;
    return done({ status: already ? 'already_logged_out' : 'logged_out', id, httpStatus: 200 });
  } catch (error) {
    if (!(error instanceof ChargebeeError)) throw error;
    if (error instanceof ChargebeeApiError) {
      const answered = { id, httpStatus: error.status, apiErrorCode: error.apiErrorCode, error };
      return done({ ...answered, status: error.status === 404 && error.apiErrorCode === 'resource_not_found' ? 'not_found' : 'failed' });
    }
    return done({ status: 'failed', id, error });
  }
}

function writeLog(log: Logger, outcome: PortalLogoutOutcome): void {
  const configurationFault = outcome.portalSessions.some((o) => o.error instanceof ChargebeeApiError && o.error.isConfigurationFault);
  const entry = {
    chargebeePortalLogout: {
      result: outcome.result,
      durationMs: outcome.durationMs,
      portalSessions: outcome.portalSessions.map((o) => ({
        idHash: o.idHash,
        status: o.status,
        businessEntityId: o.businessEntityId,
        httpStatus: o.httpStatus,
        apiErrorCode: o.apiErrorCode,
        error: o.status === 'failed' ? o.error?.message : undefined,
        durationMs: o.durationMs,
      })),
    },
  };
  const message = `chargebee portal logout: ${outcome.result}`;
  if (configurationFault) log.error(entry, `${message} (check the Chargebee site and API key)`);
  else if (outcome.result === 'failed') log.warn(entry, message);
  else log.info(entry, message);
}
