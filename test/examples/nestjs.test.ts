/**
 * examples/nestjs/: the middleware on POST /logout through MiddlewareConsumer, the Chargebee client through
 * dependency injection, remember() in the controller that creates portal sessions; over HTTP against the
 * emulator, with the app in a process of its own (see the fixture for why).
 */
import { join } from 'node:path';
import request from 'supertest';
import { ChargebeeEmulator } from '../../src/testing';
import { startChildApp } from '../helpers/child-app';

const API_KEY = 'test_NESTKEY_5';
let emulator: ChargebeeEmulator;
let child: Awaited<ReturnType<typeof startChildApp>>;

beforeAll(async () => {
  emulator = await ChargebeeEmulator.start({ sites: { 'acme-test': { apiKey: API_KEY } } });
  child = await startChildApp(
    join(__dirname, 'fixtures/nestjs-app.ts'),
    'NEST_APP_CONFIG',
    { baseUrl: emulator.baseUrl('acme-test'), apiKey: API_KEY },
    // Decorators compile with the example's own tsconfig (experimentalDecorators).
    { TSX_TSCONFIG_PATH: join(__dirname, '../../examples/nestjs/tsconfig.json') },
  );
}, 20_000);
afterAll(async () => {
  await child?.stop();
  await emulator.close();
});

async function signedInWithPortals(email: string, count: number) {
  const agent = request.agent(child.url);
  await agent.post('/login').send({ email }).expect(200);
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    const { body } = await agent.post('/billing/portal').expect(201);
    const portal = emulator.sessions().find((s) => s.access_url === body.accessUrl)!;
    expect(portal.customer_id).toBe(`cus_${email.split('@')[0]}`);
    emulator.openSession(portal.id);
    ids.push(portal.id);
  }
  return { agent, ids };
}

describe('NestJS on Express (examples/nestjs/)', () => {
  it('logs out every portal session the controller remembered, with the email from the session', async () => {
    const { agent, ids } = await signedInWithPortals('nest.user@example.com', 2);
    const res = await agent.post('/logout').expect(200);
    expect(res.body).toEqual({ signedOut: true, portalSessions: 'ended' });
    for (const id of ids) {
      expect(emulator.getSession(id)?.status).toBe('logged_out');
      expect(emulator.logoutRequests(id)[0].headers['chargebee-request-origin-user']).toBe('nest.user@example.com');
    }
    await agent.post('/billing/portal').expect(401); // the session is gone
  });

  it('applies the middleware to POST /logout only, after the session check', async () => {
    emulator.clearRequests();
    await request(child.url).post('/logout').expect(401);
    await request(child.url).get('/logout').expect(404);
    expect(emulator.logoutRequests()).toEqual([]);
  });

  it('says nothing_remembered for a user who never opened the portal', async () => {
    const { agent } = await signedInWithPortals('quiet@example.com', 0);
    expect((await agent.post('/logout').expect(200)).body.portalSessions).toBe('nothing_remembered');
  });

  it('serves the health check through the injected middleware object', async () => {
    const res = await request(child.url).get('/healthz/chargebee').expect(200);
    expect(res.body).toMatchObject({ status: 'ok', stats: { logouts: { ended: 1, nothing_remembered: 1 } } });
  });
});
