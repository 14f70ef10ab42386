/**
 * examples/chargebee-js.ts over HTTP against the emulator: the endpoint Chargebee.js's setPortalSession
 * calls creates, remembers and returns the portal-session object; logout ends it.
 */
import pino from 'pino';
import request from 'supertest';
import { ChargebeeEmulator } from '../../src/testing';
import { createChargebeeJsApp, PORTAL_SCRIPT } from '../../examples/chargebee-js';
import { listen } from '../helpers/listen';

const API_KEY = 'test_CBJSKEY_7';
let emulator: ChargebeeEmulator;
let served: Awaited<ReturnType<typeof listen>>;
let close: () => Promise<void>;

beforeAll(async () => {
  emulator = await ChargebeeEmulator.start({ sites: { 'acme-test': { apiKey: API_KEY } } });
  const { app, portalLogout } = createChargebeeJsApp({
    chargebee: { baseUrl: emulator.baseUrl(), apiKey: API_KEY, logger: pino({ level: 'silent' }) },
    chargebeeJsSite: 'acme-test',
    sessionSecret: 'chargebee-js-example-secret',
    chargebeeCustomerIdFor: (email) => `cus_${email.split('@')[0]}`,
  });
  close = () => portalLogout.close();
  served = await listen(app);
});
afterAll(async () => {
  await served.close();
  await close();
  await emulator.close();
});

describe('Chargebee.js in the browser (examples/chargebee-js.ts)', () => {
  it('serves a page that loads Chargebee.js and the script that calls the portal-session endpoint', async () => {
    const agent = request.agent(served.url);
    await agent.post('/login').type('form').send({ email: 'js.user@example.com' }).expect(303);
    const page = await agent.get('/').expect(200);
    expect(page.text).toContain('<script src="https://js.chargebee.com/v2/chargebee.js" defer></script>');
    expect(page.text).toContain('data-site="acme-test"');
    expect(page.headers['content-security-policy']).toContain("script-src 'self' https://js.chargebee.com");
    const script = await agent.get('/portal.js').expect(200);
    expect(script.text).toBe(PORTAL_SCRIPT);
    expect(script.text).toContain("fetch('/api/chargebee/portal-session', { method: 'POST' })");
  });

  it("returns Chargebee's portal-session object from the endpoint, remembers it, and logs it out at sign-out", async () => {
    const agent = request.agent(served.url);
    await agent.post('/login').type('form').send({ email: 'js.user@example.com' }).expect(303);
    const created = await agent.post('/api/chargebee/portal-session').expect(200);
    expect(created.headers['cache-control']).toBe('no-store');
    const portal = created.body;
    expect(portal).toMatchObject({
      object: 'portal_session',
      status: 'created',
      customer_id: 'cus_js.user',
      id: expect.stringMatching(/^portal_/),
      token: expect.any(String),
      access_url: expect.stringContaining(portal.token),
    });
    expect(emulator.getSession(portal.id)).toMatchObject({ token: portal.token, access_url: portal.access_url });
    emulator.openSession(portal.id); // what Chargebee.js does when it opens the portal

    await agent.post('/logout').expect(303);
    expect(emulator.getSession(portal.id)?.status).toBe('logged_out');
    expect(emulator.logoutRequests(portal.id)[0].headers['chargebee-request-origin-user']).toBe('js.user@example.com');
  });

  it('creates no portal session for a request without the session', async () => {
    const before = emulator.sessions().length;
    await request(served.url).post('/api/chargebee/portal-session').expect(401);
    expect(emulator.sessions()).toHaveLength(before);
  });
});
