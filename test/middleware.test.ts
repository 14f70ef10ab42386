import request from 'supertest';
import type { Request } from 'express';
import { ChargebeeEmulator } from '../src/testing';
import { PortalLogoutError, type PortalLogoutOutcome, type PortalSessionOutcome } from '../src';
import { signCookieValue } from '../src/remembered/cookie-signature';
import { createTestApp, EXPRESS_VERSIONS, type ExpressFactory } from './helpers/apps';
import { captureLogs } from './helpers/log-capture';
import { withOptions, type TestOptions } from './helpers/tuned';
import { cookiePayload } from '../src/remembered/cookie-store';

const API_KEY = 'test_MIDDLEWAREKEY_41';
let emulator: ChargebeeEmulator;

beforeAll(async () => {
  emulator = await ChargebeeEmulator.start({
    sites: { 'acme-test': { apiKey: API_KEY }, 'acme-eu-test': { apiKey: 'test_EUKEY_7' } },
  });
});
afterEach(() => {
  emulator.clearFaults();
  emulator.clearRequests();
});
afterAll(() => emulator.close());

function options(extra: Partial<TestOptions> = {}): TestOptions {
  return {
    apiKey: API_KEY,
    baseUrl: emulator.baseUrl('acme-test'),
    logger: captureLogs().logger,
    budgetMs: 800,
    ...withOptions({ tuning: { attemptTimeoutMs: 1000, retryBaseDelayMs: 5, retryMaxDelayMs: 20 } }, extra),
  };
}

function newSession(site = 'acme-test') {
  return emulator.createSession({ site, customerId: 'cus_1' });
}

type Agent = ReturnType<typeof request.agent>;

async function remember(agent: Agent, portalSessions: Array<{ id: string; businessEntityId?: string }>): Promise<void> {
  await agent.post('/login').send({ email: 'jane@example.com' }).expect(200);
  await agent.post('/remember').send({ portalSessions }).expect(200);
}

async function logout(
  agent: Agent,
  headers: Record<string, string> = {},
): Promise<{ status: number; outcome: PortalLogoutOutcome; body: Record<string, unknown>; setCookie: string[] }> {
  const res = await agent.post('/logout').set(headers);
  const raw = res.headers['set-cookie'] as unknown;
  return {
    status: res.status,
    outcome: res.body.outcome,
    body: res.body,
    setCookie: Array.isArray(raw) ? raw : raw ? [String(raw)] : [],
  };
}

describe.each(EXPRESS_VERSIONS)('%s', (_label, express: ExpressFactory) => {
  describe('session store (express-session)', () => {
    it('logs out the remembered portal session and runs the app handler once', async () => {
      const { app, handlerCalls } = createTestApp({ express, middleware: options() });
      const agent = request.agent(app);
      const portal = newSession();
      emulator.openSession(portal.id);
      await remember(agent, [{ id: portal.id }]);
      const { status, outcome } = await logout(agent);
      expect(status).toBe(200);
      expect(handlerCalls()).toBe(1);
      expect(emulator.getSession(portal.id)?.status).toBe('logged_out');
      expect(outcome.result).toBe('ended');
      expect(outcome.portalSessions).toEqual([
        expect.objectContaining({ status: 'logged_out', id: portal.id, httpStatus: 200 }),
      ]);
    });

    it('logs out several portal sessions of one app session in one logout', async () => {
      const { app } = createTestApp({ express, middleware: options() });
      const agent = request.agent(app);
      const portals = [newSession(), newSession(), newSession()];
      await remember(
        agent,
        portals.map((p) => ({ id: p.id })),
      );
      const { outcome } = await logout(agent);
      expect(outcome.portalSessions.map((o) => o.status)).toEqual(['logged_out', 'logged_out', 'logged_out']);
      for (const p of portals) expect(emulator.getSession(p.id)?.status).toBe('logged_out');
    });

    it('forgets ended portal sessions in the session and keeps failed ones', async () => {
      const { app } = createTestApp({ express, middleware: options({ deferred: false }) });
      const agent = request.agent(app);
      const ok = newSession();
      const failing = newSession();
      await remember(agent, [{ id: ok.id }, { id: failing.id }]);
      emulator.injectFault({
        match: { path: `/portal_sessions/${failing.id}/logout` },
        status: 500,
        apiErrorCode: 'internal_error',
      });
      const { outcome } = await logout(agent);
      expect(outcome.result).toBe('failed');
      expect((await agent.get('/remembered')).body.session).toEqual([{ id: failing.id }]);
    });

    it('reports nothing_remembered and makes no call when there is nothing', async () => {
      const { app, handlerCalls } = createTestApp({ express, middleware: options() });
      const agent = request.agent(app);
      await agent.post('/login').send({ email: 'jane@example.com' });
      const { outcome } = await logout(agent);
      expect(outcome).toMatchObject({ result: 'nothing_remembered', portalSessions: [] });
      expect(emulator.requests).toHaveLength(0);
      expect(handlerCalls()).toBe(1);
    });

    it('treats resource_not_found as done and already-ended sessions as already_logged_out', async () => {
      const { app } = createTestApp({ express, middleware: options() });
      const agent = request.agent(app);
      const ended = newSession();
      emulator.openSession(ended.id);
      // Ended well before this logout, as when the customer logged out inside the portal.
      emulator.injectFault({
        match: { path: `/portal_sessions/${ended.id}/logout` },
        times: 1,
        status: 200,
        rawBody: JSON.stringify({
          portal_session: { ...ended, status: 'logged_out', logout_at: Math.floor(Date.now() / 1000) - 3600 },
        }),
        contentType: 'application/json',
      });
      await remember(agent, [{ id: 'portal_doesnotexist' }, { id: ended.id }]);
      const { outcome } = await logout(agent);
      expect(outcome.result).toBe('ended');
      expect(outcome.portalSessions.map((o) => [o.status, o.apiErrorCode])).toEqual([
        ['not_found', 'resource_not_found'],
        ['already_logged_out', undefined],
      ]);
      expect((await agent.get('/remembered')).body.session).toBeNull();
    });

    it('counts a missing express-session as a failed read, logged, and still runs the handler', async () => {
      const logs = captureLogs();
      const { app, handlerCalls } = createTestApp({
        express,
        session: false,
        middleware: options({ logger: logs.logger }),
      });
      const { status, outcome } = await logout(request.agent(app));
      expect(status).toBe(200);
      expect(handlerCalls()).toBe(1);
      expect(outcome.result).toBe('failed');
      expect(logs.lines.some((l) => l.level === 50 && String(l.msg).includes('could not read'))).toBe(true);
    });

    it('keeps at most 10 portal sessions per app session (2 here, scaled down), dropping the oldest', async () => {
      const { app } = createTestApp({ express, middleware: options({ tuning: { maxRemembered: 2 } }) });
      const agent = request.agent(app);
      const portals = [newSession(), newSession(), newSession()];
      await remember(
        agent,
        portals.map((p) => ({ id: p.id })),
      );
      expect((await agent.get('/remembered')).body.session).toEqual([{ id: portals[1].id }, { id: portals[2].id }]);
    });
  });

  describe('cookie store', () => {
    it('remembers in an HttpOnly SameSite=Lax cookie and logs out without cookie-parser', async () => {
      const { app } = createTestApp({
        express,
        session: false,
        middleware: options({ store: 'cookie', cookie: { signed: false } }),
      });
      const agent = request.agent(app);
      const portal = newSession();
      const res = await agent.post('/remember').send({ portalSessions: [{ id: portal.id }] });
      const cookie = String(res.headers['set-cookie']);
      expect(cookie).toMatch(/^chargebee_portal_sessions=j%3A/);
      expect(cookie).toMatch(/; HttpOnly; SameSite=Lax/);
      const { outcome, setCookie } = await logout(agent);
      expect(outcome.result).toBe('ended');
      expect(emulator.getSession(portal.id)?.status).toBe('logged_out');
      expect(setCookie[0]).toMatch(/^chargebee_portal_sessions=; .*Max-Age=0/);
    });

    it('signs the cookie with cookie.secret and reads it with or without cookie-parser', async () => {
      for (const withParser of [false, true]) {
        const { app } = createTestApp({
          express,
          session: false,
          cookieParser: withParser,
          middleware: options({ store: 'cookie', cookie: { secret: 'cookie-secret', name: 'cbps' } }),
        });
        const agent = request.agent(app);
        const portal = newSession();
        const res = await agent
          .post('/remember')
          .send({ portalSessions: [{ id: portal.id, businessEntityId: 'acme-us' }] });
        expect(String(res.headers['set-cookie'])).toMatch(/^cbps=s%3Aj%3A/);
        const { outcome } = await logout(agent);
        expect(outcome.portalSessions).toEqual([
          expect.objectContaining({ status: 'logged_out', businessEntityId: 'acme-us' }),
        ]);
      }
    });

    it('signs with the secret given to cookie-parser when cookie.secret is not set', async () => {
      const { app } = createTestApp({
        express,
        session: false,
        cookieParser: 'parser-secret',
        middleware: options({ store: 'cookie' }),
      });
      const portal = newSession();
      const res = await request(app)
        .post('/remember')
        .send({ portalSessions: [{ id: portal.id }] });
      const value = decodeURIComponent(String(res.headers['set-cookie']).split(';')[0].split('=')[1]);
      expect(value).toBe(
        signCookieValue(cookiePayload('chargebee_portal_sessions', [{ id: portal.id }]), 'parser-secret'),
      );
    });

    it('counts a tampered signed cookie as absent, logs it, sends nothing and clears it', async () => {
      const logs = captureLogs();
      const { app, handlerCalls } = createTestApp({
        express,
        session: false,
        middleware: options({ store: 'cookie', logger: logs.logger, cookie: { secret: 's1' } }),
      });
      const forged = signCookieValue(
        cookiePayload('chargebee_portal_sessions', [{ id: 'portal_victim' }]),
        'attacker-secret',
      );
      const { outcome, setCookie } = await logout(request.agent(app), {
        Cookie: `chargebee_portal_sessions=${encodeURIComponent(forged)}`,
      });
      expect(outcome.result).toBe('nothing_remembered');
      expect(handlerCalls()).toBe(1);
      expect(emulator.requests).toHaveLength(0);
      expect(setCookie[0]).toMatch(/Max-Age=0/);
      expect(logs.lines.find((l) => l.level === 40)?.chargebeePortalLogout).toMatchObject({
        problem: expect.stringMatching(/signature/),
      });
    });

    it('counts an unsigned cookie as absent when a secret is configured', async () => {
      const { app } = createTestApp({
        express,
        session: false,
        middleware: options({ store: 'cookie', cookie: { secret: 's1' } }),
      });
      const value = encodeURIComponent(cookiePayload('chargebee_portal_sessions', ['portal_x']));
      const { outcome } = await logout(request.agent(app), { Cookie: `chargebee_portal_sessions=${value}` });
      expect(outcome.result).toBe('nothing_remembered');
      expect(emulator.requests).toHaveLength(0);
    });

    it('counts an unparsable cookie as absent and logs it', async () => {
      const logs = captureLogs();
      const { app, handlerCalls } = createTestApp({
        express,
        session: false,
        middleware: options({ store: 'cookie', logger: logs.logger, cookie: { signed: false } }),
      });
      const { outcome } = await logout(request.agent(app), { Cookie: 'chargebee_portal_sessions=j%3A%5Bnot-json' });
      expect(outcome.result).toBe('nothing_remembered');
      expect(handlerCalls()).toBe(1);
      expect(logs.text()).toMatch(/not valid JSON/);
    });

    it('marks the cookie Secure behind a trusted HTTPS proxy', async () => {
      const { app } = createTestApp({
        express,
        session: false,
        trustProxy: true,
        middleware: options({ store: 'cookie', cookie: { secret: 's1' } }),
      });
      const res = await request(app)
        .post('/remember')
        .set('X-Forwarded-Proto', 'https')
        .send({ portalSessions: [{ id: 'portal_a' }] });
      expect(String(res.headers['set-cookie'])).toMatch(/; Secure/);
    });
  });

  describe('resolver and custom store', () => {
    it('reads IDs from a resolver function (e.g. req.appSession)', async () => {
      const portal = newSession();
      const { app } = createTestApp({
        express,
        session: false,
        before: (req, _res, next) => {
          (req as Request & { appSession?: unknown }).appSession = { portal: portal.id };
          next();
        },
        middleware: options({
          store: (req) => (req as Request & { appSession?: { portal?: string } }).appSession?.portal,
        }),
      });
      const { outcome } = await logout(request.agent(app));
      expect(outcome.portalSessions).toEqual([expect.objectContaining({ status: 'logged_out', id: portal.id })]);
    });

    it('writes the remaining list back through a custom store', async () => {
      const portal = newSession();
      const written: unknown[] = [];
      const { app } = createTestApp({
        express,
        session: false,
        middleware: options({
          store: { read: () => [portal.id], write: (_req, _res, list) => void written.push(list) },
        }),
      });
      await logout(request.agent(app));
      expect(written).toEqual([[]]);
    });

    it('logs a resolver that throws, reports failed and still runs the handler', async () => {
      const logs = captureLogs();
      const { app, handlerCalls } = createTestApp({
        express,
        session: false,
        middleware: options({
          logger: logs.logger,
          store: () => {
            throw new Error('db down');
          },
        }),
      });
      const { status, outcome } = await logout(request.agent(app));
      expect(status).toBe(200);
      expect(handlerCalls()).toBe(1);
      expect(outcome.result).toBe('failed');
    });

    it('makes remember() throw a TypeError for a read-only resolver', async () => {
      const { app } = createTestApp({ express, session: false, middleware: options({ store: () => [] }) });
      const res = await request(app)
        .post('/remember')
        .send({ portalSessions: [{ id: 'portal_a' }] });
      expect(res.status).toBe(500);
      expect(res.body.error).toMatchObject({ name: 'TypeError', message: expect.stringMatching(/no write/) });
    });
  });

  describe('invalid IDs', () => {
    it('never sends an invalid ID, reports invalid_id, forgets it and still logs out the valid ones', async () => {
      const valid = newSession();
      const hostile = [
        '../../customers/cus_1/delete',
        'portal%2F..',
        'x'.repeat(71),
        'pörtal',
        'a b',
        42,
        { nested: true },
      ];
      const { app, handlerCalls } = createTestApp({
        express,
        session: false,
        middleware: options({
          store: { read: () => [...hostile, valid.id].map((id) => ({ id })), write: () => undefined },
        }),
      });
      const { outcome } = await logout(request.agent(app));
      expect(handlerCalls()).toBe(1);
      expect(outcome.result).toBe('ended');
      expect(outcome.portalSessions.filter((o) => o.status === 'invalid_id')).toHaveLength(hostile.length);
      expect(outcome.portalSessions.filter((o) => o.status === 'invalid_id').every((o) => o.id === undefined)).toBe(
        true,
      );
      expect(emulator.requests.map((r) => r.path)).toEqual([`/acme-test/api/v2/portal_sessions/${valid.id}/logout`]);
    });

    it('refuses to remember an invalid ID with a TypeError', async () => {
      const { app } = createTestApp({ express, middleware: options() });
      const res = await request(app)
        .post('/remember')
        .send({ portalSessions: [{ id: '../x' }] });
      expect(res.body.error).toMatchObject({ name: 'TypeError', message: expect.stringMatching(/portal-session ID/) });
    });
  });

  describe('origin headers', () => {
    async function headersOfLogout(
      appOptions: Parameters<typeof createTestApp>[0],
      requestHeaders: Record<string, string> = {},
      email = 'jane@example.com',
    ) {
      const { app } = createTestApp({ express, ...appOptions });
      const agent = request.agent(app);
      const portal = newSession();
      await agent.post('/login').send({ email });
      await agent.post('/remember').send({ portalSessions: [{ id: portal.id }] });
      await agent.post('/logout').set(requestHeaders);
      return emulator.logoutRequests(portal.id)[0].headers;
    }

    it('sends IP, device and ASCII email', async () => {
      const headers = await headersOfLogout({ middleware: options() }, { 'User-Agent': 'Mozilla/5.0 TestBrowser' });
      expect(headers['chargebee-request-origin-ip']).toBe('127.0.0.1');
      expect(headers['chargebee-request-origin-device']).toBe('Mozilla/5.0 TestBrowser');
      expect(headers['chargebee-request-origin-user']).toBe('jane@example.com');
      expect(headers['chargebee-request-origin-user-encoded']).toBeUndefined();
    });

    it('sends a non-ASCII email as Base64 UTF-8 in -encoded only', async () => {
      const headers = await headersOfLogout({ middleware: options() }, {}, 'zoë@exämple.com');
      expect(headers['chargebee-request-origin-user']).toBeUndefined();
      expect(Buffer.from(String(headers['chargebee-request-origin-user-encoded']), 'base64').toString('utf8')).toBe(
        'zoë@exämple.com',
      );
    });

    it('ignores X-Forwarded-For when trust proxy is off', async () => {
      const headers = await headersOfLogout({ middleware: options() }, { 'X-Forwarded-For': '198.51.100.23' });
      expect(headers['chargebee-request-origin-ip']).toBe('127.0.0.1');
    });

    it('takes the client IP from X-Forwarded-For when trust proxy is on', async () => {
      const headers = await headersOfLogout(
        { trustProxy: 'loopback', middleware: options() },
        { 'X-Forwarded-For': '198.51.100.23' },
      );
      expect(headers['chargebee-request-origin-ip']).toBe('198.51.100.23');
    });

    it('sends an IPv6 client address as IPv6', async () => {
      const headers = await headersOfLogout(
        { trustProxy: true, middleware: options() },
        { 'X-Forwarded-For': '2001:db8::42' },
      );
      expect(headers['chargebee-request-origin-ip']).toBe('2001:db8::42');
    });

    it('sends IPv4-mapped IPv6 as plain IPv4', async () => {
      const headers = await headersOfLogout(
        { trustProxy: true, middleware: options() },
        { 'X-Forwarded-For': '::ffff:203.0.113.50' },
      );
      expect(headers['chargebee-request-origin-ip']).toBe('203.0.113.50');
    });

    it('drops a forwarded value that is not an IP address', async () => {
      const headers = await headersOfLogout(
        { trustProxy: true, middleware: options() },
        { 'X-Forwarded-For': 'evil-host' },
      );
      expect(headers['chargebee-request-origin-ip']).toBeUndefined();
    });

    it('cleans a hostile user agent: no control characters, bounded length', async () => {
      const headers = await headersOfLogout(
        { middleware: options() },
        { 'User-Agent': `evil\tagent ${'A'.repeat(10_000)}` },
      );
      const device = String(headers['chargebee-request-origin-device']);
      expect(device).toMatch(/^evil agent A+$/);
      expect(device.length).toBeLessThanOrEqual(256);
    });

    it('applies override functions, validating what they return', async () => {
      const headers = await headersOfLogout({
        middleware: options({
          originHeaders: {
            ip: () => '192.0.2.1',
            device: () => 'kiosk\r\nX-Evil: 1',
            email: () => 'ops@example.com\r\nBcc: x',
          },
        }),
      });
      expect(headers['chargebee-request-origin-ip']).toBe('192.0.2.1');
      expect(headers['chargebee-request-origin-device']).toBe('kiosk X-Evil: 1');
      expect(headers['chargebee-request-origin-user']).toBeUndefined();
      expect(headers['x-evil']).toBeUndefined();
    });

    it('sends no header from an override that throws, and still logs out', async () => {
      const headers = await headersOfLogout({
        middleware: options({
          originHeaders: {
            email: () => {
              throw new Error('no user');
            },
          },
        }),
      });
      expect(headers['chargebee-request-origin-user']).toBeUndefined();
      expect(headers['chargebee-request-origin-ip']).toBe('127.0.0.1');
    });

    it('sends the event-suppression headers that are configured', async () => {
      const headers = await headersOfLogout({
        middleware: options({ suppressEvents: { webhooks: true, actions: true } }),
      });
      expect(headers['chargebee-event-webhook']).toBe('all-disabled');
      expect(headers['chargebee-event-actions']).toBe('all-disabled');
      expect(headers['chargebee-event-email']).toBeUndefined();
    });
  });

  describe('business entities', () => {
    it('sends the remembered entity, else the resolver, else none', async () => {
      const { app } = createTestApp({
        express,
        middleware: options({ businessEntityId: (req) => req.headers['x-entity'] as string | undefined }),
      });
      const agent = request.agent(app);
      const a = newSession();
      const b = newSession();
      await remember(agent, [{ id: a.id, businessEntityId: 'acme-eu' }, { id: b.id }]);
      await logout(agent, { 'X-Entity': 'acme-us' });
      expect(emulator.logoutRequests(a.id)[0].headers['chargebee-business-entity-id']).toBe('acme-eu');
      expect(emulator.logoutRequests(b.id)[0].headers['chargebee-business-entity-id']).toBe('acme-us');
    });

    it('falls back to the static default entity', async () => {
      const { app } = createTestApp({ express, middleware: options({ businessEntityId: 'acme-default' }) });
      const agent = request.agent(app);
      const a = newSession();
      await remember(agent, [{ id: a.id }]);
      const { outcome } = await logout(agent);
      expect(emulator.logoutRequests(a.id)[0].headers['chargebee-business-entity-id']).toBe('acme-default');
      expect(outcome.portalSessions[0].businessEntityId).toBe('acme-default');
    });

    it('sends no entity header when a resolver returns an invalid ID', async () => {
      const { app } = createTestApp({ express, middleware: options({ businessEntityId: () => 'bad\r\nentity' }) });
      const agent = request.agent(app);
      const a = newSession();
      await remember(agent, [{ id: a.id }]);
      await logout(agent);
      expect(emulator.logoutRequests(a.id)[0].headers['chargebee-business-entity-id']).toBeUndefined();
      expect(emulator.getSession(a.id)?.status).toBe('logged_out');
    });

    it('routes each entity to its own site and key when overridden', async () => {
      const { app } = createTestApp({
        express,
        middleware: options({
          businessEntities: { 'acme-eu': { baseUrl: emulator.baseUrl('acme-eu-test'), apiKey: 'test_EUKEY_7' } },
        }),
      });
      const agent = request.agent(app);
      const us = newSession('acme-test');
      const eu = newSession('acme-eu-test');
      await remember(agent, [{ id: us.id }, { id: eu.id, businessEntityId: 'acme-eu' }]);
      const { outcome } = await logout(agent);
      expect(outcome.portalSessions.map((o) => o.status)).toEqual(['logged_out', 'logged_out']);
      expect(emulator.logoutRequests(eu.id)[0].path).toBe(`/acme-eu-test/api/v2/portal_sessions/${eu.id}/logout`);
      expect(emulator.logoutRequests(eu.id)[0].headers.authorization).toBe(
        `Basic ${Buffer.from('test_EUKEY_7:').toString('base64')}`,
      );
    });
  });

  describe('fail open and fail closed', () => {
    it('fails open by default: the handler runs once when Chargebee fails', async () => {
      const { app, handlerCalls } = createTestApp({ express, middleware: options({ deferred: false }) });
      const agent = request.agent(app);
      const portal = newSession();
      await remember(agent, [{ id: portal.id }]);
      emulator.injectFault({ status: 503, apiErrorCode: 'site_not_ready' });
      const { status, outcome } = await logout(agent);
      expect(status).toBe(200);
      expect(handlerCalls()).toBe(1);
      expect(outcome.portalSessions[0]).toMatchObject({
        status: 'failed',
        httpStatus: 503,
        apiErrorCode: 'site_not_ready',
      });
    });

    it('fails open on a timeout', async () => {
      const { app, handlerCalls } = createTestApp({
        express,
        middleware: options({ deferred: false, tuning: { attemptTimeoutMs: 100 } }),
      });
      const agent = request.agent(app);
      await remember(agent, [{ id: newSession().id }]);
      emulator.injectFault({ hang: true });
      const { status, outcome } = await logout(agent);
      expect(status).toBe(200);
      expect(handlerCalls()).toBe(1);
      expect(outcome.portalSessions[0].status).toBe('failed');
      expect(outcome.portalSessions[0].error).toBeDefined();
    });

    it('fails closed when asked: next(err) with a PortalLogoutError, and the handler does not run', async () => {
      const { app, handlerCalls } = createTestApp({ express, middleware: options({ failClosed: true }) });
      const agent = request.agent(app);
      const portal = newSession();
      await remember(agent, [{ id: portal.id }]);
      emulator.injectFault({ status: 500, apiErrorCode: 'internal_error' });
      const res = await agent.post('/logout');
      expect(res.status).toBe(502);
      expect(res.body.error.name).toBe('PortalLogoutError');
      expect(res.body.error.message).not.toContain(portal.id);
      expect(handlerCalls()).toBe(0);
    });

    it('does not fail closed when everything ended', async () => {
      const { app, handlerCalls } = createTestApp({ express, middleware: options({ failClosed: true }) });
      const agent = request.agent(app);
      await remember(agent, [{ id: newSession().id }]);
      await logout(agent);
      expect(handlerCalls()).toBe(1);
    });
  });

  describe('outcome hook and logging', () => {
    it('calls onOutcome once per portal session with the request', async () => {
      const seen: Array<[PortalSessionOutcome, string]> = [];
      const { app } = createTestApp({
        express,
        middleware: options({ onOutcome: (o, req) => seen.push([o, req?.path ?? 'no request']) }),
      });
      const agent = request.agent(app);
      await remember(agent, [{ id: newSession().id }, { id: 'portal_missing' }]);
      await logout(agent);
      expect(seen.map(([o, path]) => [o.status, path])).toEqual([
        ['logged_out', '/logout'],
        ['not_found', '/logout'],
      ]);
    });

    it('survives an onOutcome that throws', async () => {
      const { app, handlerCalls } = createTestApp({
        express,
        middleware: options({
          onOutcome: () => {
            throw new Error('metrics down');
          },
        }),
      });
      const agent = request.agent(app);
      await remember(agent, [{ id: newSession().id }]);
      expect((await logout(agent)).status).toBe(200);
      expect(handlerCalls()).toBe(1);
    });

    it('logs one line per logout with outcome, status, code and entity, and no key, email or raw ID', async () => {
      const logs = captureLogs();
      const { app } = createTestApp({
        express,
        middleware: options({ logger: logs.logger, businessEntityId: 'acme-us' }),
      });
      const agent = request.agent(app);
      const portal = newSession();
      await remember(agent, [{ id: portal.id }, { id: 'portal_gone' }]);
      await logout(agent);
      const lines = logs.lines.filter((l) => l.chargebeePortalLogout);
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatchObject({
        level: 30,
        chargebeePortalLogout: {
          result: 'ended',
          durationMs: expect.any(Number),
          portalSessions: [
            {
              status: 'logged_out',
              httpStatus: 200,
              businessEntityId: 'acme-us',
              idHash: expect.stringMatching(/^[0-9a-f]{12}$/),
            },
            { status: 'not_found', httpStatus: 404, apiErrorCode: 'resource_not_found' },
          ],
        },
      });
      const text = logs.text();
      for (const secret of [API_KEY, portal.id, 'portal_gone', 'jane@example.com', 'Basic '])
        expect(text).not.toContain(secret);
    });

    it("marks its lines with a component binding and never repeats the app logger's name", async () => {
      const logs = captureLogs();
      const { app } = createTestApp({ express, middleware: options({ logger: logs.logger.child({ name: 'app' }) }) });
      const agent = request.agent(app);
      await remember(agent, [{ id: newSession().id }]);
      await logout(agent);
      const line =
        logs
          .text()
          .split('\n')
          .find((l) => l.includes('chargebeePortalLogout')) ?? '';
      expect(line.match(/"name":/g)).toHaveLength(1);
      expect(JSON.parse(line)).toMatchObject({ name: 'app', component: 'chargebee-portal-logout' });
    });

    it('logs a wrong API key at error level as a configuration fault', async () => {
      const logs = captureLogs();
      const { app, handlerCalls } = createTestApp({
        express,
        middleware: options({ logger: logs.logger, apiKey: 'test_WRONG_KEY_1' }),
      });
      const agent = request.agent(app);
      await remember(agent, [{ id: newSession().id }]);
      const { outcome } = await logout(agent);
      expect(handlerCalls()).toBe(1);
      expect(outcome.portalSessions[0]).toMatchObject({
        status: 'failed',
        httpStatus: 401,
        apiErrorCode: 'api_authentication_failed',
      });
      const line = logs.lines.find((l) => l.chargebeePortalLogout);
      expect(line?.level).toBe(50);
      expect(line?.msg).toMatch(/check the Chargebee site and API key/);
      expect(logs.text()).not.toContain('test_WRONG_KEY_1');
    });

    it('logs through req.log when pino-http put one there', async () => {
      const own = captureLogs();
      const perRequest = captureLogs();
      const { app } = createTestApp({
        express,
        middleware: options({ logger: own.logger }),
        before: (req, _res, next) => {
          (req as Request & { log?: unknown }).log = perRequest.logger.child({ reqId: 'r-1' });
          next();
        },
      });
      const agent = request.agent(app);
      await remember(agent, [{ id: newSession().id }]);
      await logout(agent);
      expect(perRequest.lines.find((l) => l.chargebeePortalLogout)).toMatchObject({ reqId: 'r-1' });
      expect(own.lines.find((l) => l.chargebeePortalLogout)).toBeUndefined();
    });
  });

  it('steps aside when mounted twice on one route', async () => {
    const { app, portalLogout } = createTestApp({ express, middleware: options() });
    const agent = request.agent(app);
    const portal = newSession();
    await remember(agent, [{ id: portal.id }]);
    app.post('/logout-twice', portalLogout, portalLogout, (_req, res) => void res.json({ ok: true }));
    await agent.post('/logout-twice').expect(200);
    expect(emulator.logoutRequests(portal.id)).toHaveLength(1);
  });
});

it('puts the PortalLogoutError outcome on the error for error handlers', async () => {
  const error = new PortalLogoutError('x', { result: 'failed', portalSessions: [], durationMs: 1 });
  expect(error).toMatchObject({ status: 502, expose: false, outcome: { result: 'failed' } });
});
