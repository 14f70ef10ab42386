import pino from 'pino';
import request from 'supertest';
import { ChargebeeEmulator } from '../../src/testing';
import { createPassportApp, type AppUser } from '../../examples/passport';
import { listen } from '../helpers/listen';

const API_KEY = 'test_PASSPORTKEY_5';
const USER: AppUser = { email: 'jane@example.com', chargebeeCustomerId: 'cus_jane' };
let emulator: ChargebeeEmulator;
let served: Awaited<ReturnType<typeof listen>>;
let portalLogout: ReturnType<typeof createPassportApp>['portalLogout'];

beforeAll(async () => {
  emulator = await ChargebeeEmulator.start({ sites: { 'acme-test': { apiKey: API_KEY } } });
  const built = createPassportApp({
    chargebee: { baseUrl: emulator.baseUrl(), apiKey: API_KEY, logger: pino({ level: 'silent' }) },
    sessionSecret: 'passport-example-secret',
    findUser: (email, password) => (email === USER.email && password === 'right' ? USER : undefined),
  });
  portalLogout = built.portalLogout;
  served = await listen(built.app);
});
afterAll(async () => {
  await served.close();
  await Promise.resolve(portalLogout.close());
  await emulator.close();
});

async function signedInWithPortal() {
  const agent = request.agent(served.url);
  await agent
    .post('/login')
    .type('form')
    .send({ email: USER.email, password: 'right' })
    .expect(303)
    .expect('Location', '/');
  const created = await agent.post('/billing/portal').expect(303);
  const portal = emulator.sessions().find((s) => s.access_url === created.headers.location);
  emulator.openSession(portal!.id);
  return { agent, id: portal!.id };
}

describe('passport recipe (examples/passport.ts)', () => {
  it('logs the portal session out before req.logout() regenerates the session, with the email of req.user', async () => {
    const { agent, id } = await signedInWithPortal();
    await agent.post('/logout').expect(303).expect('Location', '/');
    expect(emulator.getSession(id)?.status).toBe('logged_out');
    expect(emulator.logoutRequests(id)).toHaveLength(1);
    expect(emulator.logoutRequests(id)[0].headers['chargebee-request-origin-user']).toBe(USER.email);
    await agent.get('/me').expect(401); // passport's own logout ran too
  });

  it('logs out every portal session opened during the sign-in', async () => {
    const { agent, id } = await signedInWithPortal();
    const location = (await agent.post('/billing/portal').expect(303)).headers.location;
    const second = emulator.sessions().find((s) => s.access_url === location)!;
    await agent.post('/logout').expect(303);
    expect([emulator.getSession(id)?.status, emulator.getSession(second.id)?.status]).toEqual([
      'logged_out',
      'logged_out',
    ]);
  });

  it('leaves the portal sessions of another signed-in user alone', async () => {
    const first = await signedInWithPortal();
    const other = await signedInWithPortal();
    await first.agent.post('/logout').expect(303);
    expect(emulator.getSession(other.id)?.status).toBe('logged_in');
    await other.agent.get('/me').expect(200);
  });

  it('refuses a logout without a signed-in user and calls nobody', async () => {
    emulator.clearRequests();
    await request(served.url).post('/logout').expect(401);
    expect(emulator.logoutRequests()).toEqual([]);
  });
});
