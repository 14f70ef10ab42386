/**
 * Recipe: no server-side session. The app's own sign-in is a signed cookie (a stand-in for your auth
 * cookie or token), and the portal-session IDs go in a second signed cookie (`store: 'cookie'`), signed
 * with cookie-parser's secret. In your app the import is `from 'chargebee-portal-logout'`.
 */
import cookieParser from 'cookie-parser';
import express, { type Request, type RequestHandler } from 'express';
import { chargebeePortalLogout, type ChargebeePortalLogoutOptions } from '../src';

export interface CookieOnlyAppOptions {
  /** Options of the middleware: site (or baseUrl), apiKey, ... */
  chargebee: ChargebeePortalLogoutOptions;
  /** Signs both cookies. */
  cookieSecret: string;
  /** Your customer lookup. */
  chargebeeCustomerIdFor: (email: string) => string;
}

const USER_COOKIE = 'app_user';

export function createCookieOnlyApp({ chargebee, cookieSecret, chargebeeCustomerIdFor }: CookieOnlyAppOptions) {
  const currentEmail = (req: Request): string | undefined => {
    const email: unknown = req.signedCookies[USER_COOKIE];
    return typeof email === 'string' ? email : undefined;
  };
  const portalLogout = chargebeePortalLogout({
    ...chargebee,
    store: 'cookie',
    cookie: { maxAge: 24 * 3600 * 1000 }, // signed with cookie-parser's secret
    originHeaders: { email: currentEmail },
  });
  const requireAuth: RequestHandler = (req, res, next) => (currentEmail(req) ? next() : res.sendStatus(401));

  const app = express();
  app.use(express.urlencoded({ extended: false }));
  app.use(cookieParser(cookieSecret));

  app.post('/login', (req, res) => {
    const email = (req.body as { email?: unknown } | undefined)?.email; // a stand-in for your real sign-in
    if (typeof email !== 'string' || !email.includes('@')) return res.sendStatus(400);
    res.cookie(USER_COOKIE, email, { signed: true, httpOnly: true, sameSite: 'lax', secure: req.secure });
    res.redirect(303, '/');
  });

  app.post('/billing/portal', requireAuth, async (req, res, next) => {
    try {
      const portal = await portalLogout.clientFor().create({ customerId: chargebeeCustomerIdFor(currentEmail(req)!) });
      await portalLogout.remember(req, res, portal); // Set-Cookie: chargebee_portal_sessions=s%3Aj%3A...
      res.redirect(303, portal.access_url);
    } catch (err) {
      next(err);
    }
  });

  // The middleware clears its own cookie once every portal session has ended; the app clears its own.
  app.post('/logout', requireAuth, portalLogout, (_req, res) => {
    res.clearCookie(USER_COOKIE).redirect(303, '/');
  });

  return { app, portalLogout };
}
