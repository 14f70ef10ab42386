/**
 * Two demo processes (examples/demo/server.ts) sharing one REDIS_URL and one Chargebee emulator: a sign-in
 * made on one is known to the other, and logouts deferred during an outage end after both are killed, by a
 * third process started later.
 */
import { createClient } from 'redis';
import { ChargebeeEmulator } from '../../src/testing';
import { waitFor } from '../helpers/harness';
import { startInstance, type Instance } from '../helpers/instances';
import { startRedisServer, type RedisServer } from '../helpers/redis-server';
import { fileNeedsServer } from '../helpers/servers';

fileNeedsServer('redis-server');

jest.setTimeout(60_000);

const API_KEY = 'test_DEMO_REDIS';
let redis: RedisServer;
let emulator: ChargebeeEmulator;
const demos: Instance[] = [];

beforeAll(async () => {
  [redis, emulator] = await Promise.all([
    startRedisServer(),
    ChargebeeEmulator.start({ sites: { 'acme-test': { apiKey: API_KEY } } }),
  ]);
});
afterAll(async () => {
  await Promise.all(demos.map((d) => d.kill()));
  await Promise.all([redis.close(), emulator.close()]);
});

async function startDemo(): Promise<string> {
  const demo = startInstance('examples/demo/server.ts', {
    PORT: '0',
    REDIS_URL: redis.url,
    CHARGEBEE_BASE_URL: emulator.baseUrl('acme-test'),
    CHARGEBEE_API_KEY: API_KEY,
  });
  demos.push(demo);
  const line = await demo.waitForLine((l) => /Demo app: +http/.test(String(l.text)), 20_000);
  return /http:\/\/127\.0\.0\.1:\d+/.exec(String(line.text))![0];
}

/** A browser's cookie jar, reduced to the session cookie (cookies do not depend on the port). */
class Browser {
  cookie = '';
  async post(url: string, form: Record<string, string> = {}): Promise<Response> {
    const res = await fetch(url, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: this.cookie },
      body: new URLSearchParams(form).toString(),
    });
    for (const set of res.headers.getSetCookie()) {
      const pair = set.split(';')[0];
      if (pair.startsWith('demo.sid=')) this.cookie = pair;
    }
    return res;
  }
}

it('two demo processes share sign-ins and deferred logouts through Redis; a third ends them after both die', async () => {
  const [first, second] = await Promise.all([startDemo(), startDemo()]);
  const browser = new Browser();
  expect((await browser.post(`${first}/login`, { email: 'ann@example.com' })).status).toBe(303);

  // The portal opened on the other process: it knows the sign-in (session in Redis, same secret).
  const portals: string[] = [];
  for (const app of [second, first]) {
    const res = await browser.post(`${app}/billing/portal`);
    expect(res.status).toBe(303);
    const accessUrl = res.headers.get('location')!;
    expect((await fetch(accessUrl)).status).toBe(200);
    portals.push(emulator.sessions().find((s) => s.access_url === accessUrl)!.id);
  }
  expect(portals.map((id) => emulator.getSession(id)?.status)).toEqual(['logged_in', 'logged_in']);

  // Sign out on the first process during a Chargebee outage: both logouts are deferred to Redis.
  // (A deferral Redis did not take within the budget waits in memory and moves there when it answers: on a
  // busy machine, look until both are there.)
  const outage = emulator.injectFault({ match: { path: /\/logout$/ }, status: 503 });
  const client = createClient({ url: redis.url });
  try {
    expect((await browser.post(`${first}/logout`)).status).toBe(303);
    await client.connect();
    const until = Date.now() + 10_000;
    while ((await client.hLen('{chargebee-portal-logout}:deferred:jobs')) < 2 && Date.now() < until)
      await new Promise((resolve) => setTimeout(resolve, 100));
    expect(await client.hLen('{chargebee-portal-logout}:deferred:jobs')).toBe(2);
    await Promise.all(demos.map((d) => d.kill('SIGKILL')));
  } finally {
    if (client.isOpen) await client.close();
    outage();
  }
  await startDemo();
  // A job whose attempt was under way when its process was killed waits out its lease (30 s), then the next
  // look of the third process for other instances' jobs (every 5 s at most).
  await waitFor(
    () => portals.every((id) => emulator.getSession(id)?.status === 'logged_out'),
    30_000 + 5000 + 7000,
    'both portal sessions logged out by the third process',
  );
});

it('"Sign out of all devices" on one demo process ends the portal session another device opened through the other', async () => {
  const [first, second] = await Promise.all([startDemo(), startDemo()]);
  const laptop = new Browser();
  const phone = new Browser();
  const portals: string[] = [];
  for (const [browser, app] of [
    [laptop, first],
    [phone, second],
  ] as const) {
    expect((await browser.post(`${app}/login`, { email: 'bea@example.com' })).status).toBe(303);
    const res = await browser.post(`${app}/billing/portal`);
    const accessUrl = res.headers.get('location')!;
    expect((await fetch(accessUrl)).status).toBe(200);
    portals.push(emulator.sessions().find((s) => s.access_url === accessUrl)!.id);
  }
  // The phone's page, served by the second process, lists the laptop's portal session from the registry.
  const page = await (await fetch(`${second}/`, { headers: { cookie: phone.cookie } })).text();
  expect(page.match(/<td class="device">[a-z ]+<\/td>/g)).toEqual([
    '<td class="device">this device</td>',
    '<td class="device">another device</td>',
  ]);

  expect((await phone.post(`${second}/logout/everywhere`)).status).toBe(303);
  expect(portals.map((id) => emulator.getSession(id)?.status)).toEqual(['logged_out', 'logged_out']);
});
