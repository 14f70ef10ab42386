/**
 * Recipe: OpenTelemetry, part 2: the app. Nothing to configure in the middleware: with an SDK registered
 * (see ./telemetry.ts) it records a span per logout and its metrics. The app serves the Prometheus scrape
 * on `GET /metrics` and a health check on `GET /healthz/chargebee`.
 * In your app the import is `from 'chargebee-portal-logout'`.
 */
import type { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import express, { type Request, type RequestHandler } from 'express';
import session from 'express-session';
import { chargebeePortalLogout, type ChargebeePortalLogoutOptions } from '../../src';

declare module 'express-session' {
  interface SessionData {
    email?: string;
  }
}

export interface MonitoredAppOptions {
  /** Options of the middleware: site (or baseUrl), apiKey, ... */
  chargebee: ChargebeePortalLogoutOptions;
  /** The exporter ./telemetry.ts made. */
  prometheus: PrometheusExporter;
  sessionSecret: string;
  /** Your customer lookup. */
  chargebeeCustomerIdFor: (email: string) => string;
}

export function createMonitoredApp({
  chargebee,
  prometheus,
  sessionSecret,
  chargebeeCustomerIdFor,
}: MonitoredAppOptions) {
  const portalLogout = chargebeePortalLogout({
    ...chargebee,
    originHeaders: { email: (req: Request) => req.session?.email },
  });
  const requireAuth: RequestHandler = (req, res, next) => (req.session.email ? next() : res.sendStatus(401));

  const app = express();
  app.use(express.urlencoded({ extended: false }));
  app.use(session({ secret: sessionSecret, resave: false, saveUninitialized: false }));

  app.post('/login', (req, res) => {
    const email = (req.body as { email?: unknown } | undefined)?.email; // a stand-in for your real sign-in
    if (typeof email !== 'string' || !email.includes('@')) return res.sendStatus(400);
    req.session.email = email;
    res.redirect(303, '/');
  });

  app.post('/billing/portal', requireAuth, async (req, res, next) => {
    try {
      const portal = await portalLogout.clientFor().create({ customerId: chargebeeCustomerIdFor(req.session.email!) });
      await portalLogout.remember(req, res, portal);
      res.redirect(303, portal.access_url);
    } catch (err) {
      next(err);
    }
  });

  app.post('/logout', requireAuth, portalLogout, (req, res, next) => {
    req.session.destroy((err) => (err ? next(err) : res.redirect(303, '/')));
  });

  // For your monitoring only: keep these off the public internet (a separate port, or your proxy's rules).
  app.get('/metrics', (req, res) => prometheus.getMetricsRequestHandler(req, res));
  app.get('/healthz/chargebee', portalLogout.healthCheck());

  return { app, portalLogout };
}
