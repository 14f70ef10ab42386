import cookieParser from 'cookie-parser';
import express5 from 'express';
import type { ErrorRequestHandler, Express, Request, RequestHandler } from 'express';
import session from 'express-session';
import type { PortalLogoutMiddleware } from '../../src';
import { tunedPortalLogout, type TestOptions } from './tuned';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const express4 = require('express4') as typeof express5;

/** Both Express majors, to run each integration suite against each. */
export const EXPRESS_VERSIONS = [
  ['Express 5', express5],
  ['Express 4', express4],
] as const;

export type ExpressFactory = typeof express5;

export interface TestAppOptions {
  express?: ExpressFactory;
  middleware: TestOptions;
  /** Mount express-session (default true). */
  session?: boolean;
  /** Mount cookie-parser, with this secret when a string (default: not mounted). */
  cookieParser?: boolean | string | string[];
  /** Express `trust proxy` setting. */
  trustProxy?: boolean | string | number;
  /** Runs before the middleware, e.g. to set req.user. */
  before?: RequestHandler;
}

/**
 * A small app shaped like a real one: `/login` signs in (an email), `/remember` remembers portal
 * sessions given in the JSON body, `/logout` runs auth, the middleware, then the app's handler that
 * counts its calls and echoes `res.locals.chargebeePortalLogout`. Errors end in a JSON error handler.
 */
export function createTestApp(options: TestAppOptions): {
  app: Express;
  portalLogout: PortalLogoutMiddleware;
  handlerCalls: () => number;
} {
  const express = options.express ?? express5;
  const app = express();
  if (options.trustProxy !== undefined) app.set('trust proxy', options.trustProxy);
  app.use(express.json());
  if (options.session !== false) {
    app.use(session({ secret: 'test-session-secret', resave: false, saveUninitialized: false }));
  }
  if (options.cookieParser)
    app.use(options.cookieParser === true ? cookieParser() : cookieParser(options.cookieParser));
  const portalLogout = tunedPortalLogout(options.middleware);

  app.use((req, _res, next) => {
    const email = (req as Request & { session?: { email?: string } }).session?.email ?? req.headers['x-test-email'];
    if (typeof email === 'string') (req as Request & { user?: { email: string } }).user = { email };
    next();
  });

  app.post('/login', (req, res) => {
    const s = (req as Request & { session?: Record<string, unknown> }).session;
    if (s) s.email = req.body.email;
    res.json({ ok: true });
  });

  app.post('/remember', async (req, res, next) => {
    try {
      for (const item of req.body.portalSessions as Array<{ id: string; businessEntityId?: string }>) {
        await portalLogout.remember(req, res, item.id, { businessEntityId: item.businessEntityId });
      }
      res.json({ ok: true });
    } catch (error) {
      next(error);
    }
  });

  app.get('/remembered', (req, res) => {
    const s = (req as Request & { session?: Record<string, unknown> }).session;
    res.json({ session: s?.chargebeePortalSessions ?? null });
  });

  let calls = 0;
  const requireAuth: RequestHandler = (_req, _res, next) => next();
  const middlewares: RequestHandler[] = options.before
    ? [requireAuth, options.before, portalLogout]
    : [requireAuth, portalLogout];
  // Every method, so that tests can send the GET a forged cross-site link would.
  app.all('/logout', ...middlewares, (_req, res) => {
    calls += 1;
    // The raw IDs are not serialised (a safe default for apps); the tests read them, so they are copied out.
    const outcome = res.locals.chargebeePortalLogout;
    const portalSessions = outcome?.portalSessions.map((o) => ({ ...o, ...(o.id === undefined ? {} : { id: o.id }) }));
    res.json({ handled: true, outcome: outcome && { ...outcome, portalSessions } });
  });

  const onError: ErrorRequestHandler = (err, _req, res, _next) => {
    res.status(err.status ?? 500).json({ error: { name: err.name, message: err.message } });
  };
  app.use(onError);
  return { app, portalLogout, handlerCalls: () => calls };
}
