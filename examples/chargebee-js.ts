/**
 * Recipe: Chargebee.js in the browser. The page opens the portal with Chargebee.js; `setPortalSession` asks
 * the backend for a portal session, and the backend creates it, remembers it and returns Chargebee's
 * portal-session object as JSON. Logout is as usual: the middleware ends the remembered portal sessions.
 * In your app the import is `from 'chargebee-portal-logout'`.
 */
import express, { type Request, type RequestHandler } from 'express';
import session from 'express-session';
import { chargebeePortalLogout, type ChargebeePortalLogoutOptions } from '../src';

declare module 'express-session' {
  interface SessionData {
    shopper?: { email: string; customerId: string };
  }
}

export interface ChargebeeJsAppOptions {
  /** Options of the middleware: site (or baseUrl), apiKey, ... */
  chargebee: ChargebeePortalLogoutOptions;
  /** The site Chargebee.js is initialised with (`Chargebee.init({ site })`). */
  chargebeeJsSite: string;
  sessionSecret: string;
  /** Your customer lookup. */
  chargebeeCustomerIdFor: (email: string) => string;
}

/** The browser's part: served as a file, so that the page's CSP needs no 'unsafe-inline'. */
export const PORTAL_SCRIPT = `const cbInstance = Chargebee.init({ site: document.body.dataset.site });
cbInstance.setPortalSession(() =>
  fetch('/api/chargebee/portal-session', { method: 'POST' }).then((res) => {
    if (!res.ok) throw new Error('Could not open the billing portal');
    return res.json();
  }),
);
document.getElementById('manage-billing').addEventListener('click', () => cbInstance.createChargebeePortal().open());
// Chargebee.js keeps the portal session in the page; forget it there too when signing out.
document.getElementById('sign-out').addEventListener('submit', () => cbInstance.logout());
`;

export function createChargebeeJsApp({
  chargebee,
  chargebeeJsSite,
  sessionSecret,
  chargebeeCustomerIdFor,
}: ChargebeeJsAppOptions) {
  const portalLogout = chargebeePortalLogout({
    ...chargebee,
    originHeaders: { email: (req: Request) => req.session?.shopper?.email },
  });
  const requireAuth: RequestHandler = (req, res, next) => (req.session.shopper ? next() : res.sendStatus(401));

  const app = express();
  app.use(express.urlencoded({ extended: false }));
  // SameSite=Lax: a cross-site POST carries no session, so another site cannot have portal sessions made.
  app.use(session({ secret: sessionSecret, resave: false, saveUninitialized: false, cookie: { sameSite: 'lax' } }));

  app.get('/', (req, res) => {
    res.set(
      'Content-Security-Policy',
      "default-src 'self'; script-src 'self' https://js.chargebee.com; frame-src https:",
    );
    const site = chargebeeJsSite.replace(/[^a-z0-9-]/gi, '');
    res.type('html').send(`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Billing</title>
<script src="https://js.chargebee.com/v2/chargebee.js" defer></script><script src="/portal.js" defer></script></head>
<body data-site="${site}">${
      req.session.shopper
        ? `<button id="manage-billing">Manage billing</button>
<form id="sign-out" method="post" action="/logout"><button>Sign out</button></form>`
        : '<form method="post" action="/login"><input name="email"><button>Sign in</button></form>'
    }</body></html>`);
  });
  app.get('/portal.js', (_req, res) => res.type('text/javascript').send(PORTAL_SCRIPT));

  app.post('/login', (req, res) => {
    const email = (req.body as { email?: unknown } | undefined)?.email; // a stand-in for your real sign-in
    if (typeof email !== 'string' || !email.includes('@')) return res.sendStatus(400);
    req.session.shopper = { email, customerId: chargebeeCustomerIdFor(email) };
    res.redirect(303, '/');
  });

  // What setPortalSession calls: Chargebee.js wants the portal_session object itself.
  app.post('/api/chargebee/portal-session', requireAuth, async (req, res, next) => {
    try {
      const portal = await portalLogout.clientFor().create({ customerId: req.session.shopper!.customerId });
      await portalLogout.remember(req, res, portal);
      res.set('Cache-Control', 'no-store').json(portal);
    } catch (err) {
      next(err);
    }
  });

  app.post('/logout', requireAuth, portalLogout, (req, res, next) => {
    req.session.destroy((err) => (err ? next(err) : res.redirect(303, '/')));
  });

  return { app, portalLogout };
}
