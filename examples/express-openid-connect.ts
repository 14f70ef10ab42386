/**
 * Recipe: express-openid-connect (Auth0 or any OpenID Connect provider). That library keeps its own
 * encrypted cookie session in `req.appSession`, so the portal-session IDs go there through a store
 * object; its logout route is turned off, and the app's own runs the middleware, then `res.oidc.logout()`.
 * In your app the import is `from 'chargebee-portal-logout'`.
 */
import express, { type Request, type RequestHandler } from 'express';
import { auth, requiresAuth, type ConfigParams } from 'express-openid-connect';
import { chargebeePortalLogout, type ChargebeePortalLogoutOptions, type RememberedPortalSession } from '../src';

/** What this app adds to express-openid-connect's session. */
interface AppSession {
  chargebeePortalSessions?: RememberedPortalSession[];
}

const appSession = (req: Request): AppSession | undefined => (req as Request & { appSession?: AppSession }).appSession;
const emailOf = (req: Request): string | undefined => {
  const email: unknown = req.oidc.user?.email; // the ID token's claims are untyped
  return typeof email === 'string' ? email : undefined;
};

export interface OpenIdConnectAppOptions {
  /** express-openid-connect's configuration: issuerBaseURL, baseURL, clientID, clientSecret, secret, ... */
  auth: ConfigParams;
  /** Options of the middleware: site (or baseUrl), apiKey, ... */
  chargebee: ChargebeePortalLogoutOptions;
  /** Your customer lookup, from the ID token's claims. */
  chargebeeCustomerIdFor: (user: Record<string, unknown>) => string;
}

export function createOpenIdConnectApp(options: OpenIdConnectAppOptions) {
  const portalLogout = chargebeePortalLogout({
    ...options.chargebee,
    store: {
      read: (req) => appSession(req)?.chargebeePortalSessions,
      write: (req, _res, list) => {
        const session = appSession(req);
        if (session) session.chargebeePortalSessions = list;
      },
    },
    originHeaders: { email: (req) => emailOf(req) },
  });

  const app = express();
  app.use(auth({ authRequired: false, ...options.auth, routes: { ...options.auth.routes, logout: false } }));

  app.get('/me', requiresAuth(), (req, res) => res.json({ email: emailOf(req) }));

  app.post('/billing/portal', requiresAuth(), async (req, res, next) => {
    try {
      const portal = await portalLogout
        .clientFor()
        .create({ customerId: options.chargebeeCustomerIdFor(req.oidc.user!) });
      await portalLogout.remember(req, res, portal);
      res.redirect(303, portal.access_url);
    } catch (err) {
      next(err);
    }
  });

  // Signed out already: nothing to end, go home (a logout must not send anyone to the login page).
  const signedIn: RequestHandler = (req, res, next) => (req.oidc.isAuthenticated() ? next() : res.redirect(303, '/'));
  app.post('/logout', signedIn, portalLogout, (_req, res, next) => {
    res.oidc.logout({ returnTo: '/' }).catch(next);
  });

  return { app, portalLogout };
}
