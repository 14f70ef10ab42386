/**
 * The demo app: express-session, cookie-parser, pino-http and the middleware, on the routes of a real
 * app's account area. `createDemoApp` builds it without listening, so tests can mount it.
 * In your app the import is `from 'chargebee-portal-logout'`.
 */
import { createHash, randomBytes } from 'node:crypto';
import cookieParser from 'cookie-parser';
import express, {
  type ErrorRequestHandler,
  type Express,
  type Request,
  type RequestHandler,
  type Response,
} from 'express';
import session, { type Store } from 'express-session';
import pino, { type Logger } from 'pino';
import { pinoHttp } from 'pino-http';
import {
  chargebeePortalLogout,
  ChargebeeError,
  hashPortalSessionId,
  type DeferredLogoutStore,
  MemoryDeferredLogoutStore,
  MemoryPortalSessionRegistry,
  type PortalLogoutMiddleware,
  type PortalLogoutOutcome,
  type PortalSessionRegistry,
} from '../../src';
import { renderHome, type LogoutSummary, type PortalSessionRow, type ScheduledEnd } from './pages';

declare module 'express-session' {
  interface SessionData {
    user?: { email: string; customerId: string };
  }
}

export interface DemoAppOptions {
  /** Where Chargebee is: a site or base URL, and the API key. */
  chargebee: { site?: string; baseUrl?: string; apiKey: string };
  /** Default business entity, sent with each logout. */
  businessEntityId?: string;
  /** Express's `trust proxy` setting. Default false. */
  trustProxy?: boolean | number | string;
  /** The emulator's overview page, linked from the demo's page. */
  emulatorUrl?: string;
  /** Default: a pino logger at level info. */
  logger?: Logger;
  /** Default: random at each start (sessions do not survive a restart). */
  sessionSecret?: string;
  /** Where express-session keeps sessions. Default: its memory store (one process only). */
  sessionStore?: Store;
  /** Where deferred logouts wait. Default: the in-memory queue. */
  deferredStore?: DeferredLogoutStore;
  /** Where the customer's open portal sessions are kept across devices. Default: in this process's memory. */
  registry?: PortalSessionRegistry;
  /** Portal sessions that end by themselves (maximum age, idle time). Default: only at a sign-out. */
  expiry?: { maxAgeMs?: number; idleMs?: number };
}

export interface DemoApp {
  app: Express;
  portalLogout: PortalLogoutMiddleware;
  /** Closes the Chargebee client's keep-alive sockets. */
  close(): Promise<void>;
}

const SESSION_COOKIE = 'demo.sid';
const FLASH_COOKIE = 'demo_flash';
const FLASH_TTL_MS = 10 * 60 * 1000;
const FLASH_LIMIT = 1000;

interface Flash {
  notice?: string;
  logout?: LogoutSummary;
}

/**
 * Messages that must outlive the session (the outcome of a sign-out, shown after the session is destroyed):
 * kept here for a few minutes, keyed by a random token in a short-lived cookie.
 */
class FlashStore {
  private readonly entries = new Map<string, { expires: number; flash: Flash }>();

  set(req: Request, res: Response, flash: Flash): void {
    const token = randomBytes(18).toString('base64url');
    const now = Date.now();
    this.entries.set(token, { expires: now + FLASH_TTL_MS, flash });
    for (const [key, entry] of this.entries) {
      if (this.entries.size <= FLASH_LIMIT && entry.expires > now) break;
      this.entries.delete(key);
    }
    res.cookie(FLASH_COOKIE, token, { httpOnly: true, sameSite: 'lax', secure: req.secure, maxAge: FLASH_TTL_MS });
  }

  get(req: Request): Flash | undefined {
    const token: unknown = req.cookies?.[FLASH_COOKIE];
    const entry = typeof token === 'string' ? this.entries.get(token) : undefined;
    return entry && entry.expires > Date.now() ? entry.flash : undefined;
  }
}

/** A stable stand-in customer ID for an email: the app's real user record would hold it. */
export function customerIdFor(email: string): string {
  return `cus_demo_${createHash('sha256').update(email.toLowerCase()).digest('hex').slice(0, 16)}`;
}

/** The email as typed, NFC-normalised; `undefined` when it does not look like an address. */
export function parseEmail(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  const email = value.normalize('NFC').trim();
  // eslint-disable-next-line no-control-regex
  if (email.length > 254 || /[\s\u0000-\u001f\u007f]/.test(email)) return undefined;
  return /^[^@]+@[^@]+$/.test(email) ? email : undefined;
}

function summarizeLogout(outcome: PortalLogoutOutcome | undefined, everywhere: boolean): LogoutSummary {
  return {
    everywhere,
    result: outcome?.result ?? 'nothing_remembered',
    at: Date.now(),
    error: outcome?.error?.message,
    portalSessions: (outcome?.portalSessions ?? []).map((p) => ({
      idHash: p.idHash,
      status: p.status,
      businessEntityId: p.businessEntityId,
      elsewhere: p.elsewhere === true,
      detail:
        p.status === 'failed'
          ? [p.httpStatus, p.apiErrorCode ?? p.error?.message].filter(Boolean).join(' ')
          : undefined,
    })),
  };
}

/** The app's URL as the browser sees it, for the portal's "back" link; `undefined` when the Host header is unusable. */
function appUrl(req: Request): string | undefined {
  try {
    return new URL('/', `${req.protocol}://${req.get('host') ?? ''}`).href;
  } catch {
    return undefined;
  }
}

/** When each portal session with a scheduled logout ends by itself, and why, from the deferred-logout store. */
async function scheduledEnds(store: DeferredLogoutStore): Promise<Map<string, ScheduledEnd>> {
  const ends = new Map<string, ScheduledEnd>();
  try {
    for (const job of (await store.list?.(1000)) ?? []) {
      if (job.attempts === 0 && (job.reason === 'idle' || job.reason === 'portal_max_age'))
        ends.set(job.portalSessionId, { at: job.notBefore, reason: job.reason });
    }
  } catch {
    // The page shows no scheduled end when the store does not answer.
  }
  return ends;
}

export function createDemoApp(options: DemoAppOptions): DemoApp {
  const logger = options.logger ?? pino({ name: 'demo' });
  const flash = new FlashStore();
  const entity = options.businessEntityId;
  const registry = options.registry ?? new MemoryPortalSessionRegistry();
  // Kept at hand, so that the page can show when each portal session ends by itself.
  const deferredStore = options.deferredStore ?? new MemoryDeferredLogoutStore();
  const portalLogout = chargebeePortalLogout({
    ...options.chargebee,
    businessEntityId: entity,
    originHeaders: { email: (req) => req.session.user?.email },
    deferred: { store: deferredStore },
    ...(options.expiry ? { expiry: options.expiry } : {}),
    registry,
    // "Sign out of all devices" posts here; a plain "Sign out" ends this sign-in's portal sessions only.
    everywhere: (req) => req.path === '/logout/everywhere',
    customerId: (req) => req.session.user?.customerId,
    logger,
  });
  const emulatorUrl = options.emulatorUrl;
  const description = emulatorUrl
    ? 'the embedded emulator'
    : `site ${options.chargebee.site ?? options.chargebee.baseUrl}`;

  const app = express();
  app.set('trust proxy', options.trustProxy ?? false);
  app.disable('x-powered-by');
  app.use(
    pinoHttp({
      logger,
      // Method, URL and status only: headers would log cookies, and the Location of /billing/portal is a portal link.
      serializers: {
        req: (req: { id: unknown; method: string; url: string }) => ({ id: req.id, method: req.method, url: req.url }),
        res: (res: { statusCode: number }) => ({ statusCode: res.statusCode }),
      },
      customSuccessMessage: (req, res, ms) => `${req.method} ${req.url} ${res.statusCode} (${Math.round(ms)} ms)`,
      customErrorMessage: (req, res) => `${req.method} ${req.url} ${res.statusCode} failed`,
    }),
  );
  app.use((_req, res, next) => {
    res.set(
      'Content-Security-Policy',
      "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; frame-ancestors 'none'",
    );
    next();
  });
  app.use(express.urlencoded({ extended: false, limit: '4kb' }));
  app.use(cookieParser());
  app.use(
    session({
      name: SESSION_COOKIE,
      secret: options.sessionSecret ?? randomBytes(32).toString('hex'),
      ...(options.sessionStore ? { store: options.sessionStore } : {}),
      resave: false,
      saveUninitialized: false,
      cookie: { httpOnly: true, sameSite: 'lax', secure: 'auto' },
    }),
  );

  // The app's auth check: a stand-in for whatever your app does.
  const requireAuth: RequestHandler = (req, res, next) => {
    if (req.session.user) return next();
    flash.set(req, res, { notice: 'Sign in first.' });
    res.redirect(303, '/');
  };

  // Pages of the signed-in account area count as activity: they keep the sign-in's portal sessions from
  // ending as idle (PORTAL_IDLE_MS).
  const activity: RequestHandler = (req, res, next) =>
    req.session.user ? portalLogout.activity(req, res, next) : next();

  app.get('/', activity, async (req, res) => {
    const user = req.session.user;
    const remembered = req.session.chargebeePortalSessions ?? [];
    const here = new Set(remembered.map((entry) => entry.id));
    // This sign-in's portal sessions, then the customer's others from the registry (other devices).
    let registryError: string | undefined;
    let registered: Array<{ id: string; businessEntityId?: string }> = [];
    if (user) {
      try {
        registered = (await portalLogout.openPortalSessions(user.customerId)).filter((entry) => !here.has(entry.id));
      } catch (error) {
        registryError = error instanceof Error ? error.message : 'the registry failed';
      }
    }
    const endsAt = options.expiry ? await scheduledEnds(deferredStore) : new Map<string, ScheduledEnd>();
    const rows = await Promise.all(
      [...remembered, ...registered].map(async (entry): Promise<PortalSessionRow> => {
        const row = {
          idHash: hashPortalSessionId(entry.id),
          businessEntityId: entry.businessEntityId ?? entity,
          thisDevice: here.has(entry.id),
          endsBySelf: endsAt.get(entry.id),
        };
        try {
          const portal = await portalLogout.clientFor(entry.businessEntityId).retrieve(entry.id, { timeoutMs: 2000 });
          return { ...row, status: portal.status, createdAt: portal.created_at };
        } catch (error) {
          return { ...row, error: error instanceof ChargebeeError ? error.message : 'could not ask Chargebee' };
        }
      }),
    );
    const shown = flash.get(req);
    const stats = await portalLogout.stats();
    res.type('html').send(
      renderHome({
        user,
        remembered: rows,
        registryError,
        notice: shown?.notice,
        lastLogout: shown?.logout,
        chargebee: { emulatorUrl, description },
        stats,
        expiry: options.expiry,
      }),
    );
  });

  app.post('/login', (req, res, next) => {
    const email = parseEmail((req.body as { email?: unknown } | undefined)?.email);
    if (email === undefined) {
      flash.set(req, res, { notice: 'Enter an email address, such as zoë@exämple.com.' });
      return res.redirect(303, '/');
    }
    // A new session ID at sign-in, so a session ID planted before it is worth nothing.
    req.session.regenerate((err) => {
      if (err) return next(err);
      req.session.user = { email, customerId: customerIdFor(email) };
      res.clearCookie(FLASH_COOKIE);
      res.redirect(303, '/');
    });
  });

  app.post('/billing/portal', requireAuth, activity, async (req, res, next) => {
    try {
      const headers = entity ? { 'chargebee-business-entity-id': entity } : {};
      const portal = await portalLogout
        .clientFor()
        .create({ customerId: req.session.user!.customerId, redirectUrl: appUrl(req) }, headers);
      await portalLogout.remember(req, res, portal);
      res.redirect(303, portal.access_url);
    } catch (error) {
      if (!(error instanceof ChargebeeError)) return next(error);
      req.log.warn({ err: { type: error.name, message: error.message } }, 'demo: could not create a portal session');
      flash.set(req, res, { notice: `Could not open the billing portal. ${error.message}` });
      res.redirect(303, '/');
    }
  });

  // Auth check, then the portal logout (it reads the IDs from the session), then the app's own logout.
  const appLogout: RequestHandler = (req, res, next) => {
    const summary = summarizeLogout(res.locals.chargebeePortalLogout, req.path === '/logout/everywhere');
    req.session.destroy((err) => {
      if (err) return next(err);
      res.clearCookie(SESSION_COOKIE);
      flash.set(req, res, { logout: summary });
      res.redirect(303, '/');
    });
  };
  app.post('/logout', requireAuth, portalLogout, appLogout);
  // The same, and every other portal session of the customer (other devices), from the registry. A real
  // app would also end its own sessions on the other devices here.
  app.post('/logout/everywhere', requireAuth, portalLogout, appLogout);

  // The snapshot as JSON, 503 when the queue or a circuit breaker is past its limit: for monitoring.
  app.get('/healthz/chargebee', portalLogout.healthCheck());

  const onError: ErrorRequestHandler = (err: unknown, req, res, _next) => {
    const { status: code, name, message } = (err ?? {}) as { status?: unknown; name?: unknown; message?: unknown };
    const status = typeof code === 'number' && Number.isInteger(code) && code >= 400 && code < 500 ? code : 500;
    req.log.error({ err: { type: name, message } }, 'demo: request failed');
    res
      .status(status)
      .type('text')
      .send(status === 500 ? 'Something went wrong; see the server log.' : 'Bad request.');
  };
  app.use(onError);

  return { app, portalLogout, close: () => Promise.resolve(portalLogout.close()) };
}
