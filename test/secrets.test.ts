/**
 * Secrets and privacy: the integration flows run with a recognisable API key, email and portal-session
 * IDs; every log line (the logger and req.log), every error that reaches the app (its error handler,
 * the errors in the outcome, remember()'s errors), every OpenTelemetry span (name, attributes, status,
 * events, links) and every metric data point's attributes are captured, and none may contain any of these.
 */
import { inspect } from 'node:util';
import express, { type ErrorRequestHandler, type Request } from 'express';
import session from 'express-session';
import pino from 'pino';
import request from 'supertest';
import { ChargebeeEmulator } from '../src/testing';
import { MemoryDeferredLogoutStore, type PortalLogoutOutcome } from '../src';
import { signCookieValue } from '../src/remembered/cookie-signature';
import { captureLogs } from './helpers/log-capture';
import { waitFor } from './helpers/harness';
import { otelSuite } from './helpers/otel';
import { QUIET_QUEUE, tunedPortalLogout, type TestOptions } from './helpers/tuned';
import { cookiePayload } from '../src/remembered/cookie-store';

const API_KEY = 'live_RECOGNISABLE_SECRET_KEY_7f3a9c';
const WRONG_KEY = 'live_RECOGNISABLE_WRONG_KEY_1b2c';
const EMAIL = 'recognisable.secret.person@example.com';
const UNICODE_EMAIL = 'zoë.recognisable@exämple.com';

let emulator: ChargebeeEmulator;
const logs = captureLogs();
const hostErrors: unknown[] = [];
const outcomes: PortalLogoutOutcome[] = [];
const ids: string[] = [];
const middlewares: Array<{ close(o?: { timeoutMs?: number }): Promise<void> }> = [];
const otel = otelSuite();

beforeAll(async () => {
  emulator = await ChargebeeEmulator.start({ sites: { 'acme-test': { apiKey: API_KEY } } });
});
afterAll(() => emulator.close());

function newPortal(): string {
  const portal = emulator.createSession({ customerId: 'cus_secret', email: EMAIL });
  emulator.openSession(portal.id);
  ids.push(portal.id);
  return portal.id;
}

/** An app as an integrator writes it: express-session, pino child loggers on req.log, a logging error handler. */
function app(extra: Partial<TestOptions> = {}) {
  const portalLogout = tunedPortalLogout({
    apiKey: API_KEY,
    baseUrl: emulator.baseUrl('acme-test'),
    logger: logs.logger,
    budgetMs: 400,
    circuitBreaker: false,
    onOutcome: () => undefined,
    ...extra,
    tuning: {
      attemptTimeoutMs: 150,
      retryBaseDelayMs: 5,
      retryMaxDelayMs: 20,
      queueBaseDelayMs: 10,
      queueMaxDelayMs: 40,
      ...extra.tuning,
    },
  });
  middlewares.push(portalLogout);
  const a = express();
  a.use(express.json());
  a.use(session({ secret: 'secrets-test', resave: false, saveUninitialized: false }));
  a.use((req, _res, next) => {
    (req as Request & { log?: unknown }).log = logs.logger.child({ reqId: 'r' });
    const email = (req.session as unknown as { email?: string }).email;
    if (email) (req as Request & { user?: unknown }).user = { email };
    next();
  });
  a.post('/login', (req, res) => {
    (req.session as unknown as { email?: string }).email = req.body.email;
    res.json({ ok: true });
  });
  a.post('/remember', async (req, res, next) => {
    try {
      for (const id of req.body.ids as string[]) await portalLogout.remember(req, res, id);
      res.json({ ok: true });
    } catch (error) {
      next(error);
    }
  });
  a.post('/logout', portalLogout, (_req, res) => {
    const outcome = res.locals.chargebeePortalLogout as PortalLogoutOutcome;
    outcomes.push(outcome);
    res.json({ result: outcome.result });
  });
  const onError: ErrorRequestHandler = (err, _req, res, _next) => {
    hostErrors.push(err);
    logs.logger.error({ err }, 'app error handler'); // what an app typically does with an error
    res.status(err.status ?? 500).json({ error: err.message });
  };
  a.use(onError);
  return { app: a, portalLogout };
}

async function loginAndLogout(a: express.Express, portalIds: string[], email = EMAIL): Promise<request.Response> {
  const agent = request.agent(a);
  await agent.post('/login').send({ email }).expect(200);
  await agent.post('/remember').send({ ids: portalIds });
  return agent.post('/logout');
}

/** Everything an error shows when a host logs, prints, serialises or inspects it. */
function renderings(error: unknown): string[] {
  const e = error as Error;
  return [
    String(e),
    e?.message ?? '',
    e?.stack ?? '',
    inspect(e, { depth: 10 }),
    JSON.stringify(e) ?? '',
    JSON.stringify(pino.stdSerializers.err(e)),
  ];
}

it('no log line, no error reaching the app, no span and no metric contains the API key, the email or a portal-session ID', async () => {
  // A normal logout, with an ASCII and a non-ASCII email.
  const ok = app();
  await loginAndLogout(ok.app, [newPortal(), newPortal()]);
  await loginAndLogout(ok.app, [newPortal()], UNICODE_EMAIL);

  // Chargebee's error messages quote what they were sent: the ID and the email are scrubbed from errors.
  const quoted = newPortal();
  emulator.injectFault({
    match: { path: `/portal_sessions/${quoted}/logout` },
    status: 500,
    message: `Failure for ${quoted} of ${EMAIL}`,
    times: 2,
  });
  emulator.injectFault({
    match: { path: `/portal_sessions/${quoted}/logout` },
    status: 409,
    message: `Session ${quoted} of ${EMAIL} is locked`,
    times: 1,
  });
  await loginAndLogout(ok.app, [quoted]);

  // Faults: a hang (deferred, then logged out in the background), a cut response, a proxy page, a 429.
  const hung = newPortal();
  const stopHang = emulator.injectFault({ match: { path: `/portal_sessions/${hung}/logout` }, hang: true });
  const cut = newPortal();
  emulator.injectFault({ match: { path: `/portal_sessions/${cut}/logout` }, drop: 'mid-response', times: 1 });
  const html = newPortal();
  emulator.injectFault({
    match: { path: `/portal_sessions/${html}/logout` },
    status: 502,
    rawBody: `<html>${html} ${EMAIL}</html>`,
    times: 1,
  });
  const limited = newPortal();
  emulator.injectFault({ match: { path: `/portal_sessions/${limited}/logout` }, status: 429, retryAfter: 1, times: 1 });
  await loginAndLogout(ok.app, [hung, cut, html, limited]);
  stopHang();

  // A wrong key, a wrong site, fail-closed errors that reach the error handler.
  await loginAndLogout(app({ apiKey: WRONG_KEY }).app, [newPortal()]);
  await loginAndLogout(app({ baseUrl: emulator.baseUrl('no-such-site') }).app, [newPortal()]);
  const closed = app({ failClosed: true, deferred: false });
  const failing = newPortal();
  emulator.injectFault({ match: { path: `/portal_sessions/${failing}/logout` }, status: 503 });
  expect((await loginAndLogout(closed.app, [failing])).status).toBe(502);
  const breaker = app({ failClosed: true, deferred: false, retry: false, circuitBreaker: { failureThreshold: 1 } });
  await loginAndLogout(breaker.app, [failing]);
  expect((await loginAndLogout(breaker.app, [newPortal()])).status).toBe(502);

  // The queue: a full queue, a maximum age, a shutdown with logouts left.
  const small = app({
    retry: false,
    deferred: { store: new MemoryDeferredLogoutStore(1), maxAgeMs: 200 },
    tuning: { queueBaseDelayMs: 10, queueMaxDelayMs: 20 },
  });
  const stuck = [newPortal(), newPortal()];
  for (const id of stuck) emulator.injectFault({ match: { path: `/portal_sessions/${id}/logout` }, status: 503 });
  await loginAndLogout(small.app, [stuck[0]]);
  await loginAndLogout(small.app, [stuck[1]]);
  const leftover = app({ retry: false, tuning: QUIET_QUEUE });
  await loginAndLogout(leftover.app, [stuck[0]]);
  await leftover.portalLogout.close({ timeoutMs: 100 });

  // The cookie store, with a tampered cookie, and remember() with bad input.
  const cookieApp = app({ store: 'cookie', cookie: { secret: 'cookie-secret' } });
  const forged = signCookieValue(cookiePayload('chargebee_portal_sessions', [newPortal()]), 'not-the-secret');
  await request(cookieApp.app)
    .post('/logout')
    .set('Cookie', `chargebee_portal_sessions=${encodeURIComponent(forged)}`);
  await request(ok.app)
    .post('/remember')
    .send({ ids: [`${ids[0]}/../x`] });
  await request(ok.app)
    .post('/remember')
    .send({ ids: [EMAIL] });

  await waitFor(
    () => emulator.getSession(hung)?.status === 'logged_out' && emulator.getSession(limited)?.status === 'logged_out',
    8000,
    'the deferred logouts',
  );
  await waitFor(() => logs.text().includes('max_age'), 8000, 'the maximum age');
  const points = await otel.points(); // before close(), which stops the gauges
  await Promise.all(middlewares.map((m) => m.close({ timeoutMs: 200 })));
  const spans = otel.spans();
  const telemetry = [
    ...spans.map((span) =>
      JSON.stringify({
        name: span.name,
        attributes: span.attributes,
        status: span.status,
        events: span.events,
        links: span.links.map((l) => l.attributes ?? {}),
        resource: span.resource.attributes,
      }),
    ),
    ...points.map((p) => JSON.stringify({ name: p.name, attributes: p.attributes })),
  ];

  const texts = [logs.text(), ...hostErrors.flatMap(renderings)];
  for (const outcome of outcomes)
    for (const o of outcome.portalSessions) if (o.error) texts.push(...renderings(o.error));

  // The flows did what they were meant to: errors reached the host, the queue worked, logs were written.
  expect(hostErrors.map((e) => (e as Error).name).sort()).toEqual([
    'PortalLogoutError',
    'PortalLogoutError',
    'PortalLogoutError',
    'TypeError',
    'TypeError',
  ]);
  expect(outcomes.flatMap((o) => o.portalSessions.map((p) => p.status))).toEqual(
    expect.arrayContaining(['logged_out', 'deferred', 'failed']),
  );
  expect(logs.lines.length).toBeGreaterThan(20);
  expect(logs.text()).toMatch(/not drained/);
  // Spans and metrics were recorded for all of it: logouts, background attempts, failures.
  expect(spans.filter((sp) => sp.name === 'chargebee_portal_logout.logout').length).toBeGreaterThan(10);
  expect(spans.some((sp) => sp.name === 'chargebee_portal_logout.deferred_attempt')).toBe(true);
  expect(new Set(points.map((p) => p.name))).toEqual(
    new Set([
      'chargebee_portal_logout.portal_sessions',
      'chargebee_portal_logout.logout.duration',
      'chargebee_portal_logout.chargebee.call.duration',
      'chargebee_portal_logout.portal_session.attempts',
      'chargebee_portal_logout.deferred_queue.depth',
      'chargebee_portal_logout.deferred_queue.oldest_job.age',
      'chargebee_portal_logout.circuit.state',
    ]),
  );
  texts.push(...telemetry);

  const secrets = [
    API_KEY,
    WRONG_KEY,
    Buffer.from(`${API_KEY}:`).toString('base64'),
    Buffer.from(`${WRONG_KEY}:`).toString('base64'),
    EMAIL,
    UNICODE_EMAIL,
    Buffer.from(UNICODE_EMAIL.normalize('NFC'), 'utf8').toString('base64'),
    ...ids,
  ];
  for (const text of texts) {
    for (const secret of secrets) expect(text).not.toContain(secret);
  }
  // The outcome still hands the raw IDs to the app that asks (documented: treat as a secret).
  expect(
    (hostErrors.find((e) => (e as Error).name === 'PortalLogoutError') as { outcome: PortalLogoutOutcome }).outcome
      .portalSessions[0].id,
  ).toBe(failing);
}, 30_000);
