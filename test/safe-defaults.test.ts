import express from 'express';
import request from 'supertest';
import { chargebeePortalLogout, type ChargebeePortalLogoutOptions } from '../src';
import { ChargebeeEmulator } from '../src/testing';
import { createTestApp } from './helpers/apps';
import { captureLogs } from './helpers/log-capture';
import { cookiePayload } from '../src/remembered/cookie-store';

const API_KEY = 'test_SAFEDEFAULTS_13';
let emulator: ChargebeeEmulator;

beforeAll(async () => {
  emulator = await ChargebeeEmulator.start({ sites: { 'acme-test': { apiKey: API_KEY } } });
});
afterEach(() => emulator.clearRequests());
afterAll(() => emulator.close());

function options(extra: Partial<ChargebeePortalLogoutOptions> = {}): ChargebeePortalLogoutOptions {
  return { apiKey: API_KEY, baseUrl: emulator.baseUrl('acme-test'), logger: captureLogs().logger, ...extra };
}

function setupError(extra: Record<string, unknown>): string {
  try {
    chargebeePortalLogout({ apiKey: 'k', ...extra } as ChargebeePortalLogoutOptions);
  } catch (error) {
    expect(error).toBeInstanceOf(TypeError);
    return (error as Error).message;
  }
  throw new Error('setup did not throw');
}

describe('the cookie store needs a secret unless told otherwise', () => {
  it('refuses to remember into an unsigned cookie when no secret is set anywhere, and says the fix', async () => {
    const { app } = createTestApp({ session: false, middleware: options({ store: 'cookie' }) });
    const res = await request(app)
      .post('/remember')
      .send({ portalSessions: [{ id: 'portal_a' }] });
    expect(res.status).toBe(500);
    expect(res.body.error.message).toMatch(/set cookie\.secret, mount cookieParser\(secret\).*cookie\.signed: false/);
    expect(res.headers['set-cookie']).toBeUndefined();
  });

  it('reads no unsigned cookie without a secret: no Chargebee call, the fix logged, the handler still runs', async () => {
    const logs = captureLogs();
    const { app, handlerCalls } = createTestApp({
      session: false,
      middleware: options({ store: 'cookie', logger: logs.logger }),
    });
    const portal = emulator.createSession({ customerId: 'cus_1' });
    const forged = encodeURIComponent(cookiePayload('chargebee_portal_sessions', [{ id: portal.id }]));
    const res = await request(app).post('/logout').set('Cookie', `chargebee_portal_sessions=${forged}`);
    expect(res.body.outcome.result).toBe('nothing_remembered');
    expect(handlerCalls()).toBe(1);
    expect(emulator.logoutRequests()).toHaveLength(0);
    expect(logs.text()).toMatch(/no secret to sign with: set cookie\.secret/);
  });

  it('signs with the secret cookie-parser was given, with no cookie.secret', async () => {
    const { app } = createTestApp({
      session: false,
      cookieParser: 'parser-secret',
      middleware: options({ store: 'cookie' }),
    });
    const res = await request(app)
      .post('/remember')
      .send({ portalSessions: [{ id: 'portal_a' }] });
    expect(res.status).toBe(200);
    expect(String(res.headers['set-cookie'])).toMatch(/^chargebee_portal_sessions=s%3Aj%3A/);
  });

  it('accepts an unsigned cookie with cookie.signed: false and warns once, at setup', async () => {
    const logs = captureLogs();
    const { app } = createTestApp({
      session: false,
      middleware: options({ store: 'cookie', cookie: { signed: false }, logger: logs.logger }),
    });
    const warnings = () => logs.lines.filter((l) => l.level === 40 && /unsigned/.test(String(l.msg)));
    expect(warnings()).toHaveLength(1);
    const agent = request.agent(app);
    const portal = emulator.createSession({ customerId: 'cus_1' });
    await agent
      .post('/remember')
      .send({ portalSessions: [{ id: portal.id }] })
      .expect(200);
    const res = await agent.post('/logout');
    expect(res.body.outcome.result).toBe('ended');
    expect(warnings()).toHaveLength(1);
  });

  it('refuses cookie.signed: false together with cookie.secret', () => {
    expect(setupError({ site: 'acme', store: 'cookie', cookie: { signed: false, secret: 's' } })).toMatch(
      /can't pass cookie\.signed: false and cookie\.secret together/,
    );
    expect(setupError({ site: 'acme', store: 'cookie', cookie: { signed: 'no' } })).toMatch(
      /cookie\.signed must be a boolean/,
    );
  });
});

describe('setup errors that say the fix', () => {
  it.each([
    ['acme-test.chargebee.com', 'acme-test'],
    ['https://acme.chargebee.com/api/v2', 'acme'],
    ['ACME-TEST.CHARGEBEE.COM', 'ACME-TEST'],
  ])('suggests the site name for the host %s', (site, name) => {
    expect(setupError({ site })).toMatch(new RegExp(`did you mean site: "${name}"\\?`));
  });

  it('points a URL that is not a Chargebee host to baseUrl', () => {
    expect(setupError({ site: 'https://billing.example.eu/api/v2' })).toMatch(/use baseUrl instead/);
  });

  it('names the closest option first for a misspelt one, top level and nested', () => {
    expect(setupError({ site: 'acme', budgetMS: 100 })).toMatch(
      /unknown option budgetMS \(did you mean budgetMs\? known:/,
    );
    expect(setupError({ site: 'acme', retry: { maxAtempts: 2 } })).toMatch(
      /unknown option retry\.maxAtempts \(did you mean retry\.maxAttempts\?/,
    );
    expect(setupError({ site: 'acme', Store: 'cookie' })).toMatch(/did you mean store\?/);
  });

  it('gives no guess for a name unlike any option, only the list', () => {
    const message = setupError({ site: 'acme', zzzzzz: 1 });
    expect(message).toMatch(/unknown option zzzzzz \(known: site, apiKey/);
    expect(message).not.toMatch(/did you mean/);
  });
});

describe('raw portal-session IDs stay out of serialised outcomes', () => {
  it('keeps outcome.id readable in code but out of res.json() and JSON.stringify', async () => {
    const portal = emulator.createSession({ customerId: 'cus_1' });
    let inCode: string | undefined;
    let stringified = '';
    const portalLogout = chargebeePortalLogout(options({ store: () => [portal.id] }));
    const app = express();
    app.post('/logout', portalLogout, (_req, res) => {
      const outcome = res.locals.chargebeePortalLogout;
      inCode = outcome?.portalSessions[0].id;
      stringified = JSON.stringify(outcome);
      res.json(outcome);
    });
    const res = await request(app).post('/logout').expect(200);
    expect(inCode).toBe(portal.id);
    expect(res.body.result).toBe('ended');
    expect(res.body.portalSessions[0]).toMatchObject({ status: 'logged_out', idHash: expect.any(String) });
    expect(JSON.stringify(res.body)).not.toContain(portal.id);
    expect(stringified).not.toContain(portal.id);
    expect(stringified).toContain(res.body.portalSessions[0].idHash);
  });
});

describe("app.set('trust proxy', true)", () => {
  async function logoutTwice(trustProxy: boolean | string | number, extra: Partial<ChargebeePortalLogoutOptions> = {}) {
    const logs = captureLogs();
    const { app, handlerCalls } = createTestApp({
      session: false,
      trustProxy,
      middleware: options({ store: () => [], logger: logs.logger, ...extra }),
    });
    await request(app).post('/logout').set('X-Forwarded-For', '203.0.113.9').expect(200);
    await request(app).post('/logout').expect(200);
    expect(handlerCalls()).toBe(2);
    return logs.lines.filter((l) => /trust proxy/.test(String(l.msg)));
  }

  it('logs one warning at the first logout, naming the safer settings', async () => {
    const warnings = await logoutTwice(true);
    expect(warnings).toHaveLength(1);
    expect(warnings[0].level).toBe(40);
    expect(warnings[0].msg).toMatch(/'loopback', a hop count such as 1, or the proxies' addresses/);
  });

  it.each([['loopback'], [1], [false]])('stays quiet with trust proxy %p', async (setting) => {
    expect(await logoutTwice(setting)).toHaveLength(0);
  });

  it('stays quiet when the app gives its own originHeaders.ip', async () => {
    expect(await logoutTwice(true, { originHeaders: { ip: () => '198.51.100.7' } })).toHaveLength(0);
  });
});
