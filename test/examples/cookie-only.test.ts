import pino from 'pino';
import request from 'supertest';
import { ChargebeeEmulator } from '../../src/testing';
import { createCookieOnlyApp } from '../../examples/cookie-only';
import { listen } from '../helpers/listen';

const API_KEY = 'test_COOKIEKEY_3';
let emulator: ChargebeeEmulator;
let served: Awaited<ReturnType<typeof listen>>;
let close: () => unknown;

beforeAll(async () => {
  emulator = await ChargebeeEmulator.start({ sites: { 'acme-test': { apiKey: API_KEY } } });
  const { app, portalLogout } = createCookieOnlyApp({
    chargebee: { baseUrl: emulator.baseUrl(), apiKey: API_KEY, logger: pino({ level: 'silent' }) },
    cookieSecret: 'cookie-example-secret',
    chargebeeCustomerIdFor: (email) => `cus_${email.split('@')[0]}`,
  });
  close = () => portalLogout.close();
  served = await listen(app);
});
afterAll(async () => {
  await served.close();
  await Promise.resolve(close());
  await emulator.close();
});

function setCookies(res: request.Response): string[] {
  const raw = res.headers['set-cookie'] as unknown;
  return Array.isArray(raw) ? raw : raw ? [String(raw)] : [];
}

async function signedInWithPortal() {
  const agent = request.agent(served.url);
  const login = await agent.post('/login').type('form').send({ email: 'ann@example.com' }).expect(303);
  const created = await agent.post('/billing/portal').expect(303);
  const portal = emulator.sessions().find((s) => s.access_url === created.headers.location)!;
  emulator.openSession(portal.id);
  return { agent, id: portal.id, loginCookies: setCookies(login), portalCookies: setCookies(created) };
}

describe('cookie storage without express-session (examples/cookie-only.ts)', () => {
  it('remembers the portal session in a signed, HttpOnly cookie and sets no session cookie', async () => {
    const { loginCookies, portalCookies } = await signedInWithPortal();
    expect(loginCookies.map((c) => c.split('=')[0])).toEqual(['app_user']);
    expect(portalCookies).toHaveLength(1);
    expect(portalCookies[0]).toMatch(
      /^chargebee_portal_sessions=s%3Aj%3A[^;]+; Path=\/; HttpOnly; SameSite=Lax; Max-Age=86400;/,
    );
  });

  it('logs the portal session out, then clears both cookies', async () => {
    const { agent, id } = await signedInWithPortal();
    const res = await agent.post('/logout').expect(303);
    expect(emulator.getSession(id)?.status).toBe('logged_out');
    expect(emulator.logoutRequests(id)[0].headers['chargebee-request-origin-user']).toBe('ann@example.com');
    const cleared = setCookies(res);
    expect(cleared.find((c) => c.startsWith('chargebee_portal_sessions='))).toMatch(
      /^chargebee_portal_sessions=;.*Max-Age=0/,
    );
    expect(cleared.find((c) => c.startsWith('app_user='))).toMatch(/^app_user=;.*Expires=Thu, 01 Jan 1970/);
    await agent.post('/billing/portal').expect(401);
  });

  it('sends nothing to Chargebee for a portal cookie whose signature does not match, and still signs out', async () => {
    const { id, loginCookies, portalCookies } = await signedInWithPortal();
    const signed = decodeURIComponent(portalCookies[0].split(';')[0].slice('chargebee_portal_sessions='.length));
    const forged = signed.replace(id, 'portal_SomeoneElse123');
    emulator.clearRequests();
    const res = await request(served.url)
      .post('/logout')
      .set('Cookie', `${loginCookies[0].split(';')[0]}; chargebee_portal_sessions=${encodeURIComponent(forged)}`)
      .expect(303);
    expect(emulator.requests).toEqual([]);
    expect(emulator.getSession(id)?.status).toBe('logged_in');
    expect(setCookies(res).some((c) => c.startsWith('app_user=;'))).toBe(true);
  });
});
