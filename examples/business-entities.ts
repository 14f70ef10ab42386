/**
 * Recipe: one Chargebee site with several business entities, plus one entity that lives on a site of
 * its own (an EU-hosted site, with its own API key). Each customer belongs to an entity; the portal
 * session is created and remembered with it, and its logout goes to that entity's site with the
 * `chargebee-business-entity-id` header. In your app the import is `from 'chargebee-portal-logout'`.
 */
import express, { type RequestHandler } from 'express';
import session from 'express-session';
import { chargebeePortalLogout, type BusinessEntityOptions, type ChargebeePortalLogoutOptions } from '../src';

export interface Account {
  email: string;
  chargebeeCustomerId: string;
  /** The entity the customer was created in; none for customers from before entities. */
  businessEntityId?: string;
}

declare module 'express-session' {
  interface SessionData {
    account?: Account;
  }
}

export interface BusinessEntitiesAppOptions {
  /** The main site: site (or baseUrl), apiKey, ... */
  chargebee: ChargebeePortalLogoutOptions;
  /** Entity of customers created without one (sent with their logouts). */
  defaultBusinessEntityId: string;
  /** Entities on another site than the main one, by entity ID: `{ site or baseUrl, apiKey }`. */
  otherSites: Record<string, BusinessEntityOptions>;
  sessionSecret: string;
  /** Your user lookup. */
  findAccount: (email: string) => Account | undefined;
}

export function createBusinessEntitiesApp(options: BusinessEntitiesAppOptions) {
  const portalLogout = chargebeePortalLogout({
    ...options.chargebee,
    businessEntityId: options.defaultBusinessEntityId,
    businessEntities: options.otherSites, // clientFor(entity) and the logout use the entity's own site and key
    originHeaders: { email: (req) => req.session.account?.email },
  });
  const requireAuth: RequestHandler = (req, res, next) => (req.session.account ? next() : res.sendStatus(401));

  const app = express();
  app.use(express.urlencoded({ extended: false }));
  app.use(
    session({
      secret: options.sessionSecret,
      resave: false,
      saveUninitialized: false,
      cookie: { httpOnly: true, sameSite: 'lax' },
    }),
  );

  app.post('/login', (req, res, next) => {
    const account = options.findAccount(String((req.body as { email?: unknown } | undefined)?.email));
    if (!account) return res.sendStatus(401);
    req.session.regenerate((err) => {
      if (err) return next(err);
      req.session.account = account;
      res.redirect(303, '/');
    });
  });

  app.post('/billing/portal', requireAuth, async (req, res, next) => {
    try {
      const { chargebeeCustomerId, businessEntityId } = req.session.account!;
      const entity = businessEntityId ?? options.defaultBusinessEntityId;
      const portal = await portalLogout
        .clientFor(entity)
        .create({ customerId: chargebeeCustomerId }, { 'chargebee-business-entity-id': entity });
      await portalLogout.remember(req, res, portal, { businessEntityId });
      res.redirect(303, portal.access_url);
    } catch (err) {
      next(err);
    }
  });

  app.post('/logout', requireAuth, portalLogout, (req, res, next) => {
    req.session.destroy((err) => (err ? next(err) : res.redirect(303, '/')));
  });

  return { app, portalLogout };
}
