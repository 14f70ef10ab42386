import pino from 'pino';
import request from 'supertest';
import { ChargebeeEmulator } from '../../src/testing';
import { createBusinessEntitiesApp, type Account } from '../../examples/business-entities';
import { listen } from '../helpers/listen';

const MAIN_KEY = 'test_MAINSITEKEY_1';
const EU_KEY = 'test_EUSITEKEY_2';
const ACCOUNTS: Account[] = [
  { email: 'us@example.com', chargebeeCustomerId: 'cus_us', businessEntityId: 'acme-us' },
  { email: 'uk@example.com', chargebeeCustomerId: 'cus_uk', businessEntityId: 'acme-uk' },
  { email: 'eu@example.com', chargebeeCustomerId: 'cus_eu', businessEntityId: 'acme-eu' },
  { email: 'old@example.com', chargebeeCustomerId: 'cus_old' },
];
let emulator: ChargebeeEmulator;
let served: Awaited<ReturnType<typeof listen>>;
let close: () => unknown;

beforeAll(async () => {
  emulator = await ChargebeeEmulator.start({
    sites: { 'acme-test': { apiKey: MAIN_KEY }, 'acme-eu-test': { apiKey: EU_KEY } },
  });
  const { app, portalLogout } = createBusinessEntitiesApp({
    chargebee: { baseUrl: emulator.baseUrl('acme-test'), apiKey: MAIN_KEY, logger: pino({ level: 'silent' }) },
    defaultBusinessEntityId: 'acme-us',
    otherSites: { 'acme-eu': { baseUrl: emulator.baseUrl('acme-eu-test'), apiKey: EU_KEY } },
    sessionSecret: 'entities-example-secret',
    findAccount: (email) => ACCOUNTS.find((a) => a.email === email),
  });
  close = () => portalLogout.close();
  served = await listen(app);
});
afterAll(async () => {
  await served.close();
  await Promise.resolve(close());
  await emulator.close();
});

/** Signs in, opens the portal, signs out; returns the portal session and its logout request. */
async function portalThenLogout(email: string) {
  const agent = request.agent(served.url);
  await agent.post('/login').type('form').send({ email }).expect(303);
  const location = (await agent.post('/billing/portal').expect(303)).headers.location;
  const portal = emulator.sessions().find((s) => s.access_url === location)!;
  emulator.openSession(portal.id);
  await agent.post('/logout').expect(303);
  const [logout] = emulator.logoutRequests(portal.id);
  return {
    portal: emulator.getSession(portal.id)!,
    site: logout.site,
    entity: logout.headers['chargebee-business-entity-id'],
    logouts: emulator.logoutRequests(portal.id).length,
  };
}

describe('several business entities (examples/business-entities.ts)', () => {
  it.each([
    ['us@example.com', 'acme-test', 'acme-us'],
    ['uk@example.com', 'acme-test', 'acme-uk'],
    ['eu@example.com', 'acme-eu-test', 'acme-eu'],
  ])('logs out the portal session of %s at site %s with entity %s', async (email, site, entity) => {
    const result = await portalThenLogout(email);
    expect(result.portal.status).toBe('logged_out');
    expect(result.logouts).toBe(1);
    expect(result.site).toBe(site);
    expect(result.entity).toBe(entity);
  });

  it("creates the portal session for the customer's entity", async () => {
    const before = emulator.requests.length;
    await portalThenLogout('uk@example.com');
    const create = emulator.requests
      .slice(before)
      .find((r) => r.method === 'POST' && r.path.endsWith('/portal_sessions'))!;
    expect(create.headers['chargebee-business-entity-id']).toBe('acme-uk');
  });

  it('sends the default entity for a customer created without one', async () => {
    const result = await portalThenLogout('old@example.com');
    expect(result.site).toBe('acme-test');
    expect(result.entity).toBe('acme-us');
  });
});
