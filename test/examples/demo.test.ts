import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import request from 'supertest';
import { ChargebeeEmulator } from '../../src/testing';
import { createDemoApp, customerIdFor, parseEmail, type DemoAppOptions } from '../../examples/demo/app';
import { DEV_SESSION_SECRET, parseTrustProxy, readConfig } from '../../examples/demo/config';
import { captureLogs } from '../helpers/log-capture';
import { listen } from '../helpers/listen';

const API_KEY = 'test_DEMOKEY_93';
const EMAIL = 'zoë@exämple.com';
const ENCODED_EMAIL = Buffer.from(EMAIL, 'utf8').toString('base64');
let emulator: ChargebeeEmulator;

beforeAll(async () => {
  emulator = await ChargebeeEmulator.start({ sites: { 'acme-test': { apiKey: API_KEY } } });
});
afterEach(() => emulator.clearFaults());
afterAll(() => emulator.close());

async function startDemo(extra: Partial<DemoAppOptions> = {}) {
  const logs = captureLogs();
  const demo = createDemoApp({
    chargebee: { baseUrl: emulator.baseUrl(), apiKey: API_KEY },
    emulatorUrl: emulator.url,
    logger: logs.logger,
    ...extra,
  });
  const served = await listen(demo.app);
  const agent = request.agent(served.url);
  return {
    agent,
    logs,
    url: served.url,
    close: async () => {
      await served.close();
      await demo.close();
    },
  };
}

type Agent = ReturnType<typeof request.agent>;

/** Signs in, opens the portal (the access URL marks it logged in) and returns the portal session's ID. */
async function signInAndOpenPortal(agent: Agent, email = EMAIL): Promise<string> {
  await agent.post('/login').type('form').send({ email }).expect(303).expect('Location', '/');
  const created = await agent.post('/billing/portal').expect(303);
  const accessUrl = created.headers.location as string;
  expect(accessUrl.startsWith(`${emulator.url}/portal/`)).toBe(true);
  expect((await fetch(accessUrl)).status).toBe(200);
  const portal = emulator.sessions().find((s) => s.access_url === accessUrl);
  expect(portal?.status).toBe('logged_in');
  return portal!.id;
}

describe('demo app (examples/demo/app.ts)', () => {
  it('signs in with a non-ASCII email, opens the portal, and shows it remembered and logged in', async () => {
    const demo = await startDemo();
    try {
      const id = await signInAndOpenPortal(demo.agent);
      expect(emulator.getSession(id)?.customer_id).toBe(customerIdFor(EMAIL));
      const page = (await demo.agent.get('/').expect(200)).text;
      expect(page).toContain(`Signed in as <strong>${EMAIL}</strong>`);
      expect(page).toMatch(/<code>[0-9a-f]{12}<\/code><\/td><td><\/td><td><strong>logged_in<\/strong>/);
      expect(page).not.toContain(id);
    } finally {
      await demo.close();
    }
  });

  it('signs out: logs the portal session out with the origin headers, destroys the session, shows the outcome', async () => {
    const demo = await startDemo({ businessEntityId: 'acme-us' });
    try {
      const id = await signInAndOpenPortal(demo.agent);
      await demo.agent.post('/logout').set('User-Agent', 'DemoTest/1.0 (X11)').expect(303).expect('Location', '/');
      expect(emulator.getSession(id)?.status).toBe('logged_out');
      const headers = emulator.logoutRequests(id)[0].headers;
      expect(headers['chargebee-request-origin-ip']).toBe('127.0.0.1');
      expect(headers['chargebee-request-origin-device']).toBe('DemoTest/1.0 (X11)');
      expect(headers['chargebee-request-origin-user-encoded']).toBe(ENCODED_EMAIL);
      expect(headers['chargebee-request-origin-user']).toBeUndefined();
      expect(headers['chargebee-business-entity-id']).toBe('acme-us');

      const page = (await demo.agent.get('/').expect(200)).text;
      expect(page).toContain('Nobody is signed in.');
      expect(page).toContain('every portal session of that sign-in is over.');
      const hash = /<code>([0-9a-f]{12})<\/code><\/td><td>acme-us<\/td><td class="ok">logged out<\/td>/.exec(page)?.[1];
      expect(hash).toBeDefined();
      expect(page).not.toContain(id);
      // The emulator's page shows the same hash beside the raw ID, so a person can match the rows.
      expect(await (await fetch(`${emulator.url}/`)).text()).toContain(
        `<code>${id}</code><br><span class="muted">hash ${hash}</span>`,
      );
    } finally {
      await demo.close();
    }
  });

  it("shows the middleware's stats on the page and serves them as JSON at /healthz/chargebee", async () => {
    const demo = await startDemo();
    try {
      const before = (await demo.agent.get('/').expect(200)).text;
      expect(before).toMatch(/<td id="stats-logouts">none<\/td>/);
      await signInAndOpenPortal(demo.agent);
      await demo.agent.post('/logout').expect(303);
      const page = (await demo.agent.get('/').expect(200)).text;
      expect(page).toMatch(/<td id="stats-logouts">ended <strong>1<\/strong><\/td>/);
      expect(page).toMatch(/<td id="stats-portal-sessions">logged_out <strong>1<\/strong><\/td>/);
      expect(page).toMatch(/<td id="stats-queue">0 waiting, 0 under way, oldest -; since start: 0 queued/);
      expect(page).toMatch(/<td id="stats-circuits">127\.0\.0\.1:\d+\/acme-test: <strong>closed<\/strong><\/td>/);
      const health = await demo.agent.get('/healthz/chargebee').expect(200);
      expect(health.body).toMatchObject({ status: 'ok', stats: { logouts: { ended: 1 } } });
    } finally {
      await demo.close();
    }
  });

  it('shows a portal session that could not be logged out as failed, with the status Chargebee answered', async () => {
    const demo = await startDemo();
    try {
      const id = await signInAndOpenPortal(demo.agent);
      emulator.injectFault({
        match: { path: `/portal_sessions/${id}/logout` },
        status: 403,
        apiErrorCode: 'api_authorization_failed',
      });
      await demo.agent.post('/logout').expect(303);
      expect(emulator.getSession(id)?.status).toBe('logged_in');
      const page = (await demo.agent.get('/').expect(200)).text;
      expect(page).toContain('at least one portal session could not be logged out.');
      expect(page).toContain('failed: may still be open <span class="muted">(403 api_authorization_failed)</span>');
      expect(page).toContain('Nobody is signed in.'); // the app's own logout still ran
    } finally {
      await demo.close();
    }
  });

  it('shows the outcome only to the browser that signed out', async () => {
    const demo = await startDemo();
    try {
      await signInAndOpenPortal(demo.agent);
      await demo.agent.post('/logout').expect(303);
      const other = request.agent(demo.url);
      expect((await other.get('/').expect(200)).text).not.toContain('Last sign-out');
      expect((await demo.agent.get('/').expect(200)).text).toContain('Last sign-out');
    } finally {
      await demo.close();
    }
  });

  it('lists the portal sessions of both devices, and "Sign out of all devices" ends both', async () => {
    const demo = await startDemo();
    const phone = request.agent(demo.url);
    try {
      const laptopId = await signInAndOpenPortal(demo.agent);
      const phoneId = await signInAndOpenPortal(phone);
      const hashes = (await demo.agent.get('/').expect(200)).text.match(/<code>[0-9a-f]{12}<\/code>/g);
      expect(hashes).toHaveLength(2);
      const laptopPage = (await demo.agent.get('/')).text;
      expect(laptopPage).toMatch(/<strong>logged_in<\/strong>.*<td class="device">this device<\/td>/);
      expect(laptopPage).toMatch(/<td class="device">another device<\/td>/);
      expect(laptopPage).toContain(
        '<form method="post" action="/logout/everywhere"><button>Sign out of all devices</button>',
      );

      await phone.post('/logout/everywhere').expect(303).expect('Location', '/');
      expect(emulator.getSession(laptopId)?.status).toBe('logged_out');
      expect(emulator.getSession(phoneId)?.status).toBe('logged_out');
      const phonePage = (await phone.get('/')).text;
      expect(phonePage).toContain('Nobody is signed in.');
      expect(phonePage).toContain('every portal session of yours, on every device, is over.');
      expect(phonePage).toMatch(/<td class="ok">logged out<\/td><td>this device<\/td>/);
      expect(phonePage).toMatch(/<td class="ok">logged out<\/td><td>another device<\/td>/);
      // The laptop's sign-in goes on (this demo does not end app sessions elsewhere); its portal session is over.
      const after = (await demo.agent.get('/')).text;
      expect(after).toMatch(/<strong>logged_out<\/strong><\/td><td>[^<]*<\/td><td class="device">this device<\/td>/);
      expect(after).not.toContain('<td class="device">another device');
    } finally {
      await demo.close();
    }
  });

  it('with a short idle time, shows when a portal session ends by itself, and it ends without a sign-out', async () => {
    const demo = await startDemo({ expiry: { idleMs: 1500, maxAgeMs: 60_000 } });
    try {
      const id = await signInAndOpenPortal(demo.agent);
      const page = (await demo.agent.get('/').expect(200)).text;
      expect(page).toContain('<th>Ends by itself (UTC)</th>');
      expect(page).toMatch(/<td class="ends">\d\d:\d\d:\d\d <span class="muted">\(idle\)<\/span><\/td>/);
      expect(page).toContain('A portal session ends by itself 60 s after it was opened (maximum age), or after about');
      const loadedAt = Date.now();
      // No request of this sign-in from now on: 1.5 s idle and one activity interval (0.15 s) later it ends.
      const deadline = loadedAt + 10_000;
      // The emulator ends it first; the app's line follows once the answer is read.
      const logged = () =>
        demo.logs.lines.some((l) => l.msg === 'chargebee portal logout (deferred): logged_out (idle)');
      while ((emulator.getSession(id)?.status !== 'logged_out' || !logged()) && Date.now() < deadline)
        await new Promise((resolve) => setTimeout(resolve, 50));
      expect(emulator.getSession(id)?.status).toBe('logged_out');
      expect(Date.now() - loadedAt).toBeGreaterThanOrEqual(1500);
      expect(demo.logs.lines).toContainEqual(
        expect.objectContaining({ msg: 'chargebee portal logout (deferred): logged_out (idle)' }),
      );
      // Still signed in to the app: only the portal session ended.
      expect((await demo.agent.get('/').expect(200)).text).toContain('<strong>logged_out</strong>');
    } finally {
      await demo.close();
    }
  });

  it('keeps the API key, the email and raw portal-session IDs out of its logs', async () => {
    const demo = await startDemo();
    try {
      const id = await signInAndOpenPortal(demo.agent);
      await demo.agent.get('/').expect(200);
      await demo.agent.post('/logout').expect(303);
      const text = demo.logs.text();
      expect(demo.logs.lines.some((line) => line.msg === 'chargebee portal logout: ended')).toBe(true);
      for (const secret of [API_KEY, EMAIL, ENCODED_EMAIL, 'zo\\u00eb', id, emulator.getSession(id)!.token]) {
        expect(text).not.toContain(secret);
      }
    } finally {
      await demo.close();
    }
  });

  it('escapes what the user typed', async () => {
    const demo = await startDemo();
    try {
      await demo.agent.post('/login').type('form').send({ email: '<b>x</b>"@example.com' }).expect(303);
      const page = (await demo.agent.get('/').expect(200)).text;
      expect(page).toContain('&lt;b&gt;x&lt;/b&gt;&quot;@example.com');
      expect(page).not.toContain('<b>x</b>');
    } finally {
      await demo.close();
    }
  });

  it('refuses the portal and logout routes to a visitor who is not signed in, without calling Chargebee', async () => {
    const demo = await startDemo();
    try {
      emulator.clearRequests();
      await demo.agent.post('/billing/portal').expect(303).expect('Location', '/');
      await demo.agent.post('/logout').expect(303).expect('Location', '/');
      expect(emulator.requests).toEqual([]);
      expect((await demo.agent.get('/')).text).toContain('Sign in first.');
    } finally {
      await demo.close();
    }
  });

  it('refuses a sign-in without a usable email', async () => {
    const demo = await startDemo();
    try {
      await demo.agent.post('/login').type('form').send({ email: 'not an email' }).expect(303);
      const page = (await demo.agent.get('/')).text;
      expect(page).toContain('Enter an email address');
      expect(page).toContain('Nobody is signed in.');
    } finally {
      await demo.close();
    }
  });

  it('says why the portal could not be opened when Chargebee refuses the key', async () => {
    const demo = await startDemo({ chargebee: { baseUrl: emulator.baseUrl(), apiKey: 'test_WRONGKEY' } });
    try {
      await demo.agent.post('/login').type('form').send({ email: EMAIL }).expect(303);
      await demo.agent.post('/billing/portal').expect(303).expect('Location', '/');
      const page = (await demo.agent.get('/')).text;
      expect(page).toContain('Could not open the billing portal. Chargebee answered 401');
      expect(page).not.toContain('test_WRONGKEY');
      expect(demo.logs.text()).not.toContain('test_WRONGKEY');
    } finally {
      await demo.close();
    }
  });

  it('sends the client IP from X-Forwarded-For only when TRUST_PROXY trusts the proxy', async () => {
    for (const [trustProxy, expected] of [
      [false, '127.0.0.1'],
      ['loopback', '203.0.113.9'],
    ] as const) {
      const demo = await startDemo({ trustProxy });
      try {
        const id = await signInAndOpenPortal(demo.agent);
        await demo.agent.post('/logout').set('X-Forwarded-For', '203.0.113.9').expect(303);
        expect(emulator.logoutRequests(id)[0].headers['chargebee-request-origin-ip']).toBe(expected);
      } finally {
        await demo.close();
      }
    }
  });

  it('normalises emails to NFC and refuses ones with spaces or two @', () => {
    expect(parseEmail('zoe\u0308@example.com')).toBe('zoë@example.com');
    expect(parseEmail(' a@b.c ')).toBe('a@b.c');
    expect(parseEmail('a b@c.d')).toBeUndefined();
    expect(parseEmail('a@b@c')).toBeUndefined();
    expect(parseEmail(undefined)).toBeUndefined();
  });
});

describe('demo configuration (examples/demo/config.ts)', () => {
  it('defaults to the embedded emulator on port 3000, trusting no proxy', () => {
    expect(readConfig({})).toEqual({
      port: 3000,
      trustProxy: false,
      chargebee: { kind: 'emulator' },
      businessEntityId: undefined,
    });
  });

  it('uses a site, or a base URL, with an API key', () => {
    expect(readConfig({ CHARGEBEE_SITE: 'acme-test', CHARGEBEE_API_KEY: 'test_x' }).chargebee).toEqual({
      kind: 'remote',
      site: 'acme-test',
      apiKey: 'test_x',
    });
    expect(
      readConfig({
        CHARGEBEE_BASE_URL: 'http://127.0.0.1:9/acme-test/api/v2',
        CHARGEBEE_API_KEY: 'k',
        CHARGEBEE_BUSINESS_ENTITY_ID: 'acme-us',
        PORT: '0',
      }),
    ).toEqual({
      port: 0,
      trustProxy: false,
      chargebee: { kind: 'remote', baseUrl: 'http://127.0.0.1:9/acme-test/api/v2', apiKey: 'k' },
      businessEntityId: 'acme-us',
    });
  });

  it('with REDIS_URL, signs sessions with SESSION_SECRET or the development default, so processes share them', () => {
    expect(readConfig({ REDIS_URL: 'redis://127.0.0.1:6379' })).toMatchObject({
      redisUrl: 'redis://127.0.0.1:6379',
      sessionSecret: DEV_SESSION_SECRET,
    });
    expect(readConfig({ REDIS_URL: 'rediss://cache:6380', SESSION_SECRET: 's3cret' }).sessionSecret).toBe('s3cret');
    expect(readConfig({}).sessionSecret).toBeUndefined(); // random at each start, as without Redis before
  });

  it('reads a short maximum age and idle time for portal sessions that end by themselves', () => {
    expect(readConfig({ PORTAL_MAX_AGE_MS: '60000', PORTAL_IDLE_MS: '30000' }).expiry).toEqual({
      maxAgeMs: 60_000,
      idleMs: 30_000,
    });
    expect(readConfig({ PORTAL_IDLE_MS: '30000' }).expiry).toEqual({ idleMs: 30_000 });
    expect(readConfig({}).expiry).toBeUndefined();
  });

  it('parses TRUST_PROXY as Express reads it', () => {
    expect(parseTrustProxy('true')).toBe(true);
    expect(parseTrustProxy('FALSE')).toBe(false);
    expect(parseTrustProxy('2')).toBe(2);
    expect(parseTrustProxy('loopback, 10.0.0.0/8')).toBe('loopback, 10.0.0.0/8');
  });

  it.each([
    [{ PORT: 'abc' }, /^PORT: /],
    [{ PORT: '70000' }, /^PORT: /],
    [{ TRUST_PROXY: 'proxy.example' }, /^TRUST_PROXY: invalid IP address: proxy\.example/],
    [{ CHARGEBEE_SITE: 'acme-test' }, /^CHARGEBEE_API_KEY: required with CHARGEBEE_SITE$/],
    [{ CHARGEBEE_API_KEY: 'k' }, /^CHARGEBEE_SITE: required/],
    [{ CHARGEBEE_SITE: 'acme test', CHARGEBEE_API_KEY: 'k' }, /^CHARGEBEE_SITE: must be a Chargebee site name/],
    [{ CHARGEBEE_BASE_URL: 'ftp://x/api/v2', CHARGEBEE_API_KEY: 'k' }, /^CHARGEBEE_BASE_URL: must use http or https/],
    [{ CHARGEBEE_SITE: 'acme-test', CHARGEBEE_API_KEY: 'has space' }, /^CHARGEBEE_API_KEY: /],
    [{ CHARGEBEE_BUSINESS_ENTITY_ID: 'a b' }, /^CHARGEBEE_BUSINESS_ENTITY_ID: /],
    [{ REDIS_URL: 'http://127.0.0.1:6379' }, /^REDIS_URL: use a redis:\/\/ or rediss:\/\/ URL/],
    [{ PORTAL_MAX_AGE_MS: '30s' }, /^PORTAL_MAX_AGE_MS: "30s" is not a number of milliseconds from 1000/],
    [{ PORTAL_IDLE_MS: '500' }, /^PORTAL_IDLE_MS: "500" is not a number of milliseconds from 1000/],
  ])('refuses %j with a message naming the variable', (env, message) => {
    expect(() => readConfig(env)).toThrow(message);
  });
});

describe('demo server (examples/demo/server.ts)', () => {
  const tsx = join(__dirname, '../../node_modules/.bin/tsx');
  const server = join(__dirname, '../../examples/demo/server.ts');
  // Only what the process needs: no CHARGEBEE_* from the developer's shell can send it to a real site.
  const baseEnv = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '' };

  it('prints a one-line error naming the variable and exits 1 on a bad value', async () => {
    const child = spawn(tsx, [server], { env: { ...baseEnv, PORT: 'eighty' } });
    let stderr = '';
    child.stderr.on('data', (chunk) => (stderr += chunk));
    const [code] = await once(child, 'exit');
    expect(code).toBe(1);
    expect(stderr).toBe('demo: PORT: "eighty" is not a port number (0 to 65535)\n');
  });

  it('prints the URLs to open, serves the page, and exits 0 on SIGTERM', async () => {
    const child = spawn(tsx, [server], { env: { ...baseEnv, PORT: '0' } });
    let stdout = '';
    const url = await new Promise<string>((resolve, reject) => {
      child.stdout.on('data', (chunk) => {
        stdout += chunk;
        const m = /Demo app: +(http:\/\/127\.0\.0\.1:\d+)\//.exec(stdout);
        if (m && stdout.includes('Chargebee emulator: http://127.0.0.1:')) resolve(m[1]);
      });
      child.once('exit', () => reject(new Error(`exited early: ${stdout}`)));
    });
    const page = await fetch(`${url}/`, { headers: { connection: 'keep-alive' } });
    expect(await page.text()).toContain('Nobody is signed in.');
    child.kill('SIGTERM');
    const [code] = await once(child, 'exit');
    expect(code).toBe(0);
  }, 20000);
});
