import express, { type ErrorRequestHandler, type Express, type Request, type RequestHandler } from 'express';
import session from 'express-session';
import type { PortalLogoutMiddleware, PortalLogoutOutcome } from '../../src';
import { tunedPortalLogout, type TestOptions } from './tuned';

declare module 'express-session' {
  interface SessionData {
    everywhereUser?: { email: string; customerId: string };
  }
}

/** The outcome as JSON with the raw IDs copied in (the tests read them; apps should not). */
export function withIds(outcome: PortalLogoutOutcome | undefined) {
  return (
    outcome && {
      ...outcome,
      error: outcome.error && { name: outcome.error.name, message: outcome.error.message },
      portalSessions: outcome.portalSessions.map((o) => ({ ...o, ...(o.id === undefined ? {} : { id: o.id }) })),
    }
  );
}

/**
 * An app shaped like a real account area, for signing out everywhere: `/login` signs a customer in,
 * `/portal` creates a portal session at Chargebee (the emulator) and remembers it, `/account` is a page
 * that counts as activity, `/logout` ends this app
 * session's portal sessions and `/logout/everywhere` every one of the customer's, `/admin/logout-customer`
 * calls `logoutCustomer()`. `session` lets several apps (instances) share one session store.
 */
export function createEverywhereApp(
  options: TestOptions,
  extra: { sessionStore?: session.Store } = {},
): { app: Express; portalLogout: PortalLogoutMiddleware; handlerCalls: () => number } {
  const portalLogout = tunedPortalLogout({
    everywhere: (req) => req.path === '/logout/everywhere',
    customerId: (req) => req.session.everywhereUser?.customerId,
    ...options,
  });
  const app = express();
  app.use(express.json());
  app.use(session({ secret: 'everywhere-secret', resave: false, saveUninitialized: false, store: extra.sessionStore }));

  app.post('/login', (req, res) => {
    req.session.everywhereUser = { email: req.body.email, customerId: req.body.customerId };
    res.json({ ok: true });
  });

  app.post('/portal', async (req, res, next) => {
    try {
      const user = req.session.everywhereUser;
      if (!user) return res.status(401).json({ error: 'sign in first' });
      const entity: string | undefined = req.body?.businessEntityId;
      const portal = await portalLogout
        .clientFor(entity)
        .create({ customerId: user.customerId }, entity ? { 'chargebee-business-entity-id': entity } : {});
      await portalLogout.remember(req, res, req.body?.bareId ? portal.id : portal, {
        businessEntityId: entity,
        customerId: req.body?.customerId,
      });
      res.json({ id: portal.id });
    } catch (error) {
      next(error);
    }
  });

  app.get('/remembered', (req, res) => {
    res.json({ remembered: req.session.chargebeePortalSessions ?? [] });
  });

  const requireAuth: RequestHandler = (req, res, next) => {
    if (req.session.everywhereUser) return next();
    res.status(401).json({ error: 'sign in first' });
  };
  // A page of the account area: activity keeps this app session's portal sessions from idling out.
  app.get('/account', requireAuth, portalLogout.activity, (_req, res) => void res.json({ ok: true }));
  let calls = 0;
  const appLogout: RequestHandler = (req, res) => {
    calls += 1;
    const outcome = withIds(res.locals.chargebeePortalLogout);
    req.session.destroy(() => res.json({ handled: true, outcome }));
  };
  app.post('/logout', requireAuth, portalLogout, appLogout);
  app.post('/logout/everywhere', requireAuth, portalLogout, appLogout);

  app.post('/admin/logout-customer', async (req: Request, res, next) => {
    try {
      const { customerId, ...rest } = req.body as { customerId: string };
      res.json({ outcome: withIds(await portalLogout.logoutCustomer(customerId, rest)) });
    } catch (error) {
      next(error);
    }
  });

  const onError: ErrorRequestHandler = (err, _req, res, _next) => {
    res.status(500).json({ error: { name: err.name, message: err.message } });
  };
  app.use(onError);
  return { app, portalLogout, handlerCalls: () => calls };
}
