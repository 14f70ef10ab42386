import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import {
  ChargebeeEmulator,
  type ChargebeeErrorBody,
  type EmulatedPortalSession,
  type EmulatorOptions,
} from '../src/testing';

const KEY = 'test_key_one';
const SECOND_KEY = 'test_key_two';
const OTHER_SITE = 'other-test';
const OTHER_KEY = 'test_other_site_key';

let emulator: ChargebeeEmulator;

beforeAll(async () => {
  emulator = await ChargebeeEmulator.start({
    sites: { 'acme-test': { apiKey: [KEY, SECOND_KEY] }, [OTHER_SITE]: { apiKey: OTHER_KEY } },
  });
});

afterAll(() => emulator.close());

beforeEach(() => emulator.reset());

function basic(key: string): string {
  return `Basic ${Buffer.from(`${key}:`).toString('base64')}`;
}

interface ApiInit {
  method?: string;
  site?: string;
  /** `null`: no Authorization header. Default: the site's first key. */
  key?: string | null;
  headers?: Record<string, string>;
  body?: string;
  signal?: AbortSignal;
  emu?: ChargebeeEmulator;
}

function api(path: string, init: ApiInit = {}): Promise<Response> {
  const emu = init.emu ?? emulator;
  const headers: Record<string, string> = { accept: 'application/json', ...init.headers };
  const key = init.key === undefined ? emu.apiKey(init.site) : init.key;
  if (key !== null) headers.authorization = basic(key);
  if (init.body !== undefined) headers['content-type'] = 'application/x-www-form-urlencoded; charset=utf-8';
  return fetch(`${emu.baseUrl(init.site)}${path}`, {
    method: init.method ?? 'GET',
    headers,
    body: init.body,
    signal: init.signal,
  });
}

function logout(id: string, init: ApiInit = {}): Promise<Response> {
  return api(`/portal_sessions/${id}/logout`, { method: 'POST', ...init });
}

async function sessionOf(res: Response): Promise<EmulatedPortalSession> {
  return ((await res.json()) as { portal_session: EmulatedPortalSession }).portal_session;
}

async function errorOf(res: Response): Promise<ChargebeeErrorBody> {
  return (await res.json()) as ChargebeeErrorBody;
}

function control(path: string, method = 'GET', body?: unknown): Promise<Response> {
  return fetch(`${emulator.url}/_emulator${path}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

async function withEmulator<T>(options: EmulatorOptions, run: (emu: ChargebeeEmulator) => Promise<T>): Promise<T> {
  const emu = await ChargebeeEmulator.start(options);
  try {
    return await run(emu);
  } finally {
    await emu.close();
  }
}

describe('POST /portal_sessions', () => {
  it('creates a session in status created with a one-hour access URL', async () => {
    const res = await api('/portal_sessions', {
      method: 'POST',
      body: 'customer[id]=cust_1&redirect_url=https%3A%2F%2Fapp.example%2Faccount',
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json;charset=utf-8');
    const s = await sessionOf(res);
    expect(s.id).toMatch(/^portal_[A-Za-z0-9]{20}$/);
    expect(s.token).toMatch(/^[A-Za-z0-9]{20,}$/);
    expect(s.status).toBe('created');
    expect(s.object).toBe('portal_session');
    expect(s.customer_id).toBe('cust_1');
    expect(s.redirect_url).toBe('https://app.example/account');
    expect(s.expires_at - s.created_at).toBe(3600);
    expect(Math.abs(s.created_at - Date.now() / 1000)).toBeLessThan(5);
    expect(s.access_url).toBe(`${emulator.url}/portal/acme-test/${s.token}`);
    expect(s.linked_customers).toEqual([
      { customer_id: 'cust_1', has_billing_address: false, has_payment_method: false, has_active_subscription: false },
    ]);
    expect(emulator.getSession(s.id)).toEqual(s);
  });

  it('answers 400 param_wrong_value for a missing customer[id]', async () => {
    const res = await api('/portal_sessions', { method: 'POST', body: 'redirect_url=https%3A%2F%2Fapp.example' });
    expect(res.status).toBe(400);
    const body = await errorOf(res);
    expect(body).toMatchObject({
      api_error_code: 'param_wrong_value',
      type: 'invalid_request',
      param: 'customer[id]',
      http_status_code: 400,
    });
    expect(emulator.sessions()).toHaveLength(0);
  });

  it('builds access URLs on publicUrl when given', async () => {
    await withEmulator({ publicUrl: 'https://portal.example/' }, async (emu) => {
      const s = emu.createSession({ customerId: 'c' });
      expect(s.access_url).toBe(`https://portal.example/portal/acme-test/${s.token}`);
    });
  });
});

describe('GET /portal_sessions/{id}', () => {
  it('returns the session', async () => {
    const seeded = emulator.createSession({ customerId: 'cust_2', email: 'a@example.com' });
    const res = await api(`/portal_sessions/${seeded.id}`);
    expect(res.status).toBe(200);
    const s = await sessionOf(res);
    expect(s).toEqual(seeded);
    expect(s.linked_customers[0].email).toBe('a@example.com');
  });

  it('answers 404 resource_not_found for an unknown id', async () => {
    const res = await api('/portal_sessions/portal_unknown');
    expect(res.status).toBe(404);
    expect((await errorOf(res)).api_error_code).toBe('resource_not_found');
  });

  it('does not find a session of another site', async () => {
    const s = emulator.createSession({ site: OTHER_SITE, customerId: 'c' });
    expect((await api(`/portal_sessions/${s.id}`)).status).toBe(404);
    expect((await api(`/portal_sessions/${s.id}`, { site: OTHER_SITE })).status).toBe(200);
  });
});

describe('POST /portal_sessions/{id}/logout', () => {
  it('moves created to logged_out with logout time and origin IP', async () => {
    const seeded = emulator.createSession({ customerId: 'c' });
    const res = await logout(seeded.id, { headers: { 'chargebee-request-origin-ip': '203.0.113.9' } });
    expect(res.status).toBe(200);
    const s = await sessionOf(res);
    expect(s.status).toBe('logged_out');
    expect(s.logout_ipaddress).toBe('203.0.113.9');
    expect(Math.abs((s.logout_at ?? 0) - Date.now() / 1000)).toBeLessThan(5);
    expect(emulator.getSession(seeded.id)?.status).toBe('logged_out');
  });

  it('moves logged_in to logged_out', async () => {
    const seeded = emulator.createSession({ customerId: 'c' });
    expect(emulator.openSession(seeded.id, '198.51.100.7').status).toBe('logged_in');
    const s = await sessionOf(await logout(seeded.id));
    expect(s.status).toBe('logged_out');
    expect(s.login_ipaddress).toBe('198.51.100.7');
    expect(s.logout_ipaddress).toBeUndefined();
  });

  it('answers 200 and changes nothing when already logged_out', async () => {
    const seeded = emulator.createSession({ customerId: 'c' });
    const first = await sessionOf(
      await logout(seeded.id, { headers: { 'chargebee-request-origin-ip': '203.0.113.1' } }),
    );
    const res = await logout(seeded.id, { headers: { 'chargebee-request-origin-ip': '203.0.113.2' } });
    expect(res.status).toBe(200);
    expect(await sessionOf(res)).toEqual(first);
  });

  it('answers 404 resource_not_found for an unknown id', async () => {
    const res = await logout('portal_nope');
    expect(res.status).toBe(404);
    expect((await errorOf(res)).api_error_code).toBe('resource_not_found');
  });

  it('accepts a form body', async () => {
    const seeded = emulator.createSession({ customerId: 'c' });
    expect((await logout(seeded.id, { body: '' })).status).toBe(200);
  });
});

describe('access URL page', () => {
  it('logs the session in once, then says the link was used', async () => {
    const seeded = emulator.createSession({ customerId: 'cust_page', redirectUrl: 'https://app.example/back' });
    const first = await fetch(seeded.access_url);
    expect(first.status).toBe(200);
    expect(first.headers.get('content-type')).toMatch(/^text\/html/);
    const html = await first.text();
    expect(html).toContain('Chargebee self-serve portal (emulator)');
    expect(html).toContain('cust_page');
    expect(html).toContain('logged in');
    expect(html).toContain('href="https://app.example/back"');
    const s = emulator.getSession(seeded.id);
    expect(s?.status).toBe('logged_in');
    expect(s?.login_ipaddress).toMatch(/127\.0\.0\.1/);
    expect(s?.login_at).toBeDefined();

    const second = await fetch(seeded.access_url);
    expect(second.status).toBe(410);
    expect(await second.text()).toContain('already been used');
    expect(emulator.getSession(seeded.id)?.status).toBe('logged_in');
  });

  it('says the session ended after a logout', async () => {
    const seeded = emulator.createSession({ customerId: 'c' });
    await logout(seeded.id);
    const res = await fetch(seeded.access_url);
    expect(res.status).toBe(410);
    expect(await res.text()).toContain('This portal session has ended (logged out)');
  });

  it('refuses a link opened more than an hour after creation', async () => {
    const seeded = emulator.createSession({ customerId: 'c', createdAt: Math.floor(Date.now() / 1000) - 3700 });
    const res = await fetch(seeded.access_url);
    expect(res.status).toBe(410);
    expect(await res.text()).toContain('expired');
    expect(emulator.getSession(seeded.id)?.status).toBe('created');
    expect(() => emulator.openSession(seeded.id)).toThrow(/expired/);
  });

  it('answers 404 for an unknown token', async () => {
    const res = await fetch(`${emulator.url}/portal/acme-test/no_such_token`);
    expect(res.status).toBe(404);
  });

  it('does not turn a javascript: redirect URL into a link', async () => {
    const seeded = emulator.createSession({ customerId: 'c', redirectUrl: 'javascript:alert(1)' });
    const html = await (await fetch(seeded.access_url)).text();
    expect(html).not.toContain('href="javascript:');
  });

  it('is not recorded as an API request', async () => {
    const seeded = emulator.createSession({ customerId: 'c' });
    await (await fetch(seeded.access_url)).text();
    await (await fetch(`${emulator.url}/`)).text();
    expect(emulator.requests).toHaveLength(0);
  });

  it('openSession throws for a link already used', () => {
    const seeded = emulator.createSession({ customerId: 'c' });
    emulator.openSession(seeded.id);
    expect(() => emulator.openSession(seeded.id)).toThrow(/already_used/);
    expect(() => emulator.openSession('portal_missing')).toThrow(/no portal session/);
  });
});

describe('authentication', () => {
  const expected401: ChargebeeErrorBody = {
    message: 'Sorry, authentication failed. Invalid api key',
    api_error_code: 'api_authentication_failed',
    http_status_code: 401,
    error_code: 'api_authentication_failed',
    error_msg: 'Sorry, authentication failed. Invalid api key',
  };

  it('answers 401 for a wrong key', async () => {
    const res = await api('/portal_sessions/portal_x', { key: 'test_wrong' });
    expect(res.status).toBe(401);
    expect(await errorOf(res)).toEqual(expected401);
  });

  it('answers 401 without an Authorization header', async () => {
    const res = await logout('portal_x', { key: null });
    expect(res.status).toBe(401);
    expect(await errorOf(res)).toEqual(expected401);
  });

  it('answers 401 for the key of another site', async () => {
    const res = await api('/portal_sessions/portal_x', { key: OTHER_KEY });
    expect(res.status).toBe(401);
  });

  it('answers 401 when a password is given', async () => {
    const res = await fetch(`${emulator.baseUrl()}/portal_sessions/portal_x`, {
      headers: { authorization: `Basic ${Buffer.from(`${KEY}:secret`).toString('base64')}` },
    });
    expect(res.status).toBe(401);
  });

  it('accepts every key of the site, with or without the trailing colon', async () => {
    expect((await api('/portal_sessions/portal_x', { key: SECOND_KEY })).status).toBe(404);
    const res = await fetch(`${emulator.baseUrl()}/portal_sessions/portal_x`, {
      headers: { authorization: `basic ${Buffer.from(KEY).toString('base64')}` },
    });
    expect(res.status).toBe(404);
  });
});

describe('routing errors', () => {
  it('answers 404 site_not_found for an unknown site', async () => {
    const res = await fetch(`${emulator.baseUrl('no-such-site')}/portal_sessions/portal_x/logout`, {
      method: 'POST',
      headers: { authorization: basic(KEY) },
    });
    expect(res.status).toBe(404);
    expect((await errorOf(res)).api_error_code).toBe('site_not_found');
    expect(emulator.requests[0].site).toBe('no-such-site');
  });

  it('answers 404 site_not_found when the path has no site', async () => {
    const res = await fetch(`${emulator.url}/api/v2/portal_sessions/portal_x/logout`, {
      method: 'POST',
      headers: { authorization: basic(KEY) },
    });
    expect(res.status).toBe(404);
    expect((await errorOf(res)).api_error_code).toBe('site_not_found');
    expect(emulator.requests[0].site).toBeUndefined();
  });

  it('answers 404 resource_not_found for an unknown endpoint', async () => {
    const res = await api('/customers/cust_1', { method: 'POST' });
    expect(res.status).toBe(404);
    expect((await errorOf(res)).api_error_code).toBe('resource_not_found');
  });

  it('answers 405 for a known endpoint with another method', async () => {
    const res = await api('/portal_sessions/portal_x/logout');
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe('POST');
    expect((await errorOf(res)).http_status_code).toBe(405);
  });

  it('error bodies carry Chargebee fields and the legacy ones', async () => {
    const res = await api('/portal_sessions', { method: 'POST', body: '' });
    expect(res.headers.get('content-type')).toBe('application/json;charset=utf-8');
    expect(await errorOf(res)).toEqual({
      message: expect.any(String),
      type: 'invalid_request',
      api_error_code: 'param_wrong_value',
      param: 'customer[id]',
      http_status_code: 400,
      error_code: 'param_wrong_value',
      error_msg: expect.any(String),
      error_param: 'customer[id]',
    });
  });

  it('answers a body larger than 1 MiB with 413 and keeps serving', async () => {
    const res = await api('/portal_sessions', { method: 'POST', body: `customer[id]=${'x'.repeat(1024 * 1024 + 1)}` });
    expect(res.status).toBe(413);
    expect((await api('/portal_sessions/portal_x')).status).toBe(404);
  });
});

describe('request record', () => {
  it('records method, path, site, headers as received and body', async () => {
    const seeded = emulator.createSession({ customerId: 'c' });
    const before = Date.now();
    await logout(seeded.id, {
      headers: { 'chargebee-request-origin-user': 'a@example.com', 'chargebee-business-entity-id': 'be_1' },
      body: 'x=1',
    });
    const [r] = emulator.requests;
    expect(r.method).toBe('POST');
    expect(r.path).toBe(`/acme-test/api/v2/portal_sessions/${seeded.id}/logout`);
    expect(r.site).toBe('acme-test');
    expect(r.headers.authorization).toBe(basic(KEY));
    expect(r.headers['chargebee-request-origin-user']).toBe('a@example.com');
    expect(r.headers['chargebee-business-entity-id']).toBe('be_1');
    expect(r.headers['content-type']).toBe('application/x-www-form-urlencoded; charset=utf-8');
    expect(r.body).toBe('x=1');
    expect(r.at).toBeGreaterThanOrEqual(before);
    expect(r.at).toBeLessThanOrEqual(Date.now());
  });

  it('logoutRequests filters logout calls, optionally by portal session', async () => {
    const a = emulator.createSession({ customerId: 'a' });
    const b = emulator.createSession({ customerId: 'b' });
    await logout(a.id);
    await logout(b.id);
    await logout(a.id);
    await api(`/portal_sessions/${a.id}`);
    expect(emulator.requests).toHaveLength(4);
    expect(emulator.logoutRequests()).toHaveLength(3);
    expect(emulator.logoutRequests(a.id)).toHaveLength(2);
    expect(emulator.logoutRequests(b.id)).toHaveLength(1);
  });

  it('requests returns a copy and clearRequests empties the record', async () => {
    await api('/portal_sessions/portal_x');
    const copy = emulator.requests;
    copy.pop();
    expect(emulator.requests).toHaveLength(1);
    emulator.clearRequests();
    expect(emulator.requests).toHaveLength(0);
  });

  it('keeps at most recordLimit requests, dropping the oldest', async () => {
    await withEmulator({ recordLimit: 3 }, async (emu) => {
      for (let i = 1; i <= 5; i++) await (await api(`/portal_sessions/portal_${i}`, { emu })).text();
      expect(emu.requests.map((r) => r.path.split('/').pop())).toEqual(['portal_3', 'portal_4', 'portal_5']);
      await (await api('/portal_sessions/portal_6', { emu })).text();
      expect(emu.requests.map((r) => r.path.split('/').pop())).toEqual(['portal_4', 'portal_5', 'portal_6']);
    });
  });

  it('records nothing with recordLimit 0', async () => {
    await withEmulator({ recordLimit: 0 }, async (emu) => {
      await (await api('/portal_sessions/portal_1', { emu })).text();
      expect(emu.requests).toEqual([]);
    });
  });
});

describe('idempotency', () => {
  it('replays the first answer for a repeated key with chargebee-idempotency-replayed', async () => {
    const seeded = emulator.createSession({ customerId: 'c' });
    const headers = { 'chargebee-idempotency-key': 'key-1' };
    const first = await logout(seeded.id, { headers });
    const firstBody = await first.text();
    expect(first.headers.get('chargebee-idempotency-replayed')).toBeNull();

    const replay = await logout(seeded.id, { headers });
    expect(replay.status).toBe(200);
    expect(replay.headers.get('chargebee-idempotency-replayed')).toBe('true');
    expect(await replay.text()).toBe(firstBody);

    const fresh = await logout(seeded.id, { headers: { 'chargebee-idempotency-key': 'key-2' } });
    expect(fresh.headers.get('chargebee-idempotency-replayed')).toBeNull();
  });

  it('replays a 404 as well', async () => {
    const headers = { 'chargebee-idempotency-key': 'key-404' };
    expect((await logout('portal_gone', { headers })).status).toBe(404);
    const replay = await logout('portal_gone', { headers });
    expect(replay.status).toBe(404);
    expect(replay.headers.get('chargebee-idempotency-replayed')).toBe('true');
  });

  it('keeps keys per site', async () => {
    const a = emulator.createSession({ customerId: 'a' });
    const headers = { 'chargebee-idempotency-key': 'shared' };
    await logout(a.id, { headers });
    const other = await logout(a.id, { site: OTHER_SITE, headers });
    expect(other.status).toBe(404);
    expect(other.headers.get('chargebee-idempotency-replayed')).toBeNull();
  });

  it('answers 422 when a key is reused for another request', async () => {
    const a = emulator.createSession({ customerId: 'a' });
    const b = emulator.createSession({ customerId: 'b' });
    const headers = { 'chargebee-idempotency-key': 'reused' };
    await logout(a.id, { headers });
    const res = await logout(b.id, { headers });
    expect(res.status).toBe(422);
    expect((await errorOf(res)).api_error_code).toBe('unable_to_process_request');
    expect(emulator.getSession(b.id)?.status).toBe('created');
  });

  it('refuses a key longer than 100 characters', async () => {
    const res = await logout('portal_x', { headers: { 'chargebee-idempotency-key': 'k'.repeat(101) } });
    expect(res.status).toBe(400);
  });

  it('forgets keys after the window and beyond the cache limit', async () => {
    await withEmulator({ idempotencyWindowMs: 150, idempotencyCacheLimit: 2 }, async (emu) => {
      const s = emu.createSession({ customerId: 'c' });
      const send = async (key: string): Promise<string | null> => {
        const res = await logout(s.id, { emu, headers: { 'chargebee-idempotency-key': key } });
        await res.text();
        return res.headers.get('chargebee-idempotency-replayed');
      };
      expect(await send('a')).toBeNull();
      expect(await send('a')).toBe('true');
      await send('b');
      await send('c');
      expect(await send('a')).toBeNull(); // dropped: only two keys are kept
      await new Promise((r) => setTimeout(r, 200));
      expect(await send('c')).toBeNull(); // expired
    });
  });
});

describe('faults', () => {
  it('latencyMs delays the answer, then processes normally', async () => {
    const seeded = emulator.createSession({ customerId: 'c' });
    emulator.injectFault({ latencyMs: 250 });
    const started = Date.now();
    const res = await logout(seeded.id);
    const elapsed = Date.now() - started;
    expect(res.status).toBe(200);
    expect(elapsed).toBeGreaterThanOrEqual(230);
    expect(elapsed).toBeLessThan(2000);
    expect(emulator.getSession(seeded.id)?.status).toBe('logged_out');
  });

  it('status answers a Chargebee error with the given code and does not process', async () => {
    const seeded = emulator.createSession({ customerId: 'c' });
    emulator.injectFault({
      status: 503,
      apiErrorCode: 'site_not_ready',
      message: 'Maintenance',
      type: 'operation_failed',
    });
    const res = await logout(seeded.id);
    expect(res.status).toBe(503);
    expect(await errorOf(res)).toEqual({
      message: 'Maintenance',
      type: 'operation_failed',
      api_error_code: 'site_not_ready',
      http_status_code: 503,
      error_code: 'site_not_ready',
      error_msg: 'Maintenance',
    });
    expect(emulator.getSession(seeded.id)?.status).toBe('created');
    expect(emulator.logoutRequests(seeded.id)).toHaveLength(1);
  });

  it('429 with retryAfter adds Retry-After and a default code', async () => {
    emulator.injectFault({ status: 429, retryAfter: 3 });
    const res = await logout('portal_x');
    expect(res.status).toBe(429);
    expect(res.headers.get('retry-after')).toBe('3');
    expect((await errorOf(res)).api_error_code).toBe('api_request_limit_exceeded');
  });

  it('rawBody answers a 502 HTML page', async () => {
    emulator.injectFault({ rawBody: '<html><body>Bad gateway</body></html>' });
    const res = await logout('portal_x');
    expect(res.status).toBe(502);
    expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(await res.text()).toBe('<html><body>Bad gateway</body></html>');
  });

  it("drop 'before-response' makes fetch reject and leaves the session unchanged", async () => {
    const seeded = emulator.createSession({ customerId: 'c' });
    emulator.injectFault({ drop: 'before-response', times: 1 });
    await expect(logout(seeded.id)).rejects.toThrow();
    expect(emulator.getSession(seeded.id)?.status).toBe('created');
    expect(emulator.logoutRequests(seeded.id)).toHaveLength(1);
    expect((await logout(seeded.id)).status).toBe(200);
  });

  it("drop 'mid-response' truncates the body after processing the request", async () => {
    const seeded = emulator.createSession({ customerId: 'c' });
    emulator.injectFault({ drop: 'mid-response', times: 1 });
    await expect(logout(seeded.id).then((res) => res.text())).rejects.toThrow();
    expect(emulator.getSession(seeded.id)?.status).toBe('logged_out');
  });

  it('hang never answers: the client times out and close() still resolves quickly', async () => {
    const emu = await ChargebeeEmulator.start();
    let pending: Promise<unknown> | undefined;
    try {
      emu.injectFault({ hang: true });
      const started = Date.now();
      await expect(logout('portal_x', { emu, signal: AbortSignal.timeout(200) })).rejects.toMatchObject({
        name: 'TimeoutError',
      });
      expect(Date.now() - started).toBeLessThan(2000);
      expect(emu.logoutRequests('portal_x')).toHaveLength(1);
      // One more request left hanging while the emulator closes.
      pending = logout('portal_y', { emu }).then(
        () => 'answered',
        () => 'rejected',
      );
      await new Promise((r) => setTimeout(r, 50));
    } finally {
      const closing = Date.now();
      await emu.close();
      expect(Date.now() - closing).toBeLessThan(1000);
    }
    expect(await pending).toBe('rejected');
  });

  it('times limits how many requests a fault applies to', async () => {
    const seeded = emulator.createSession({ customerId: 'c' });
    emulator.injectFault({ status: 500, times: 2 });
    expect((await logout(seeded.id)).status).toBe(500);
    expect((await logout(seeded.id)).status).toBe(500);
    expect((await logout(seeded.id)).status).toBe(200);
  });

  it('match selects by exact path, RegExp, method and site', async () => {
    const a = emulator.createSession({ customerId: 'a' });
    const b = emulator.createSession({ customerId: 'b' });
    emulator.injectFault({ match: { path: `/portal_sessions/${a.id}/logout` }, status: 500 });
    expect((await logout(a.id)).status).toBe(500);
    expect((await logout(b.id)).status).toBe(200);
    expect((await api(`/portal_sessions/${a.id}`)).status).toBe(200);
    emulator.clearFaults();

    emulator.injectFault({ match: { path: /\/logout$/, method: 'post' }, status: 503 });
    expect((await logout(a.id)).status).toBe(503);
    expect((await api(`/portal_sessions/${a.id}`)).status).toBe(200);
    emulator.clearFaults();

    emulator.injectFault({ match: { site: OTHER_SITE }, status: 500 });
    expect((await logout(a.id)).status).toBe(200);
    expect((await logout(a.id, { site: OTHER_SITE })).status).toBe(500);
  });

  it('the remover removes only its own fault', async () => {
    const removeFirst = emulator.injectFault({ status: 500 });
    emulator.injectFault({ status: 503 });
    expect((await logout('portal_x')).status).toBe(500);
    removeFirst();
    expect((await logout('portal_x')).status).toBe(503);
    emulator.clearFaults();
    expect((await logout('portal_x')).status).toBe(404);
  });

  it('refuses a malformed fault with a TypeError naming the field', () => {
    expect(() => emulator.injectFault({ times: 0 })).toThrow(/fault\.times/);
    expect(() => emulator.injectFault({ status: 42 })).toThrow(/fault\.status/);
    expect(() => emulator.injectFault({ apiErrorCode: 'x' })).toThrow(/fault\.status is required/);
    expect(() => emulator.injectFault({ drop: 'sideways' as 'mid-response' })).toThrow(TypeError);
    expect(() => emulator.injectFault({ hang: true, drop: 'mid-response' })).toThrow(/together/);
  });
});

describe('overview page', () => {
  it('lists sessions with their logout origin headers and escapes every value', async () => {
    const hostile = '<script>alert(1)</script>';
    const created = await sessionOf(
      await api('/portal_sessions', { method: 'POST', body: `customer[id]=${encodeURIComponent(hostile)}` }),
    );
    await logout(created.id, {
      headers: {
        'chargebee-request-origin-ip': '203.0.113.5',
        'chargebee-request-origin-device': 'Firefox "<b>"',
        'chargebee-request-origin-user-encoded': Buffer.from('zoë@example.com').toString('base64'),
        'chargebee-business-entity-id': 'be_eu',
        'chargebee-event-email': 'all-disabled',
        'chargebee-idempotency-key': 'idem-123',
      },
    });
    const res = await fetch(`${emulator.url}/`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-security-policy')).toContain("default-src 'none'");
    const html = await res.text();
    expect(html).not.toContain('<script>');
    expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(html).toContain(created.id);
    expect(html).toContain('logged_out');
    expect(html).toContain('203.0.113.5');
    expect(html).toContain('Firefox &quot;&lt;b&gt;&quot;');
    expect(html).toContain('zoë@example.com');
    expect(html).toContain('be_eu');
    expect(html).toContain('all-disabled');
    expect(html).toContain('idem-123');
    expect(html).toContain(OTHER_SITE);
    expect(html).not.toContain(basic(KEY).slice(6));
    expect(html).not.toContain(KEY);
    expect(html.toLowerCase()).not.toContain('authorization');
  });
});

describe('control API', () => {
  it('seeds and lists sessions', async () => {
    const res = await control('/sessions', 'POST', { customerId: 'remote', email: 'r@example.com' });
    expect(res.status).toBe(200);
    const s = await sessionOf(res);
    expect(s.customer_id).toBe('remote');
    expect(emulator.getSession(s.id)).toEqual(s);
    const list = (await (await control('/sessions')).json()) as { sessions: EmulatedPortalSession[] };
    expect(list.sessions.map((x) => x.id)).toEqual([s.id]);
    expect(await sessionOf(await control(`/sessions/${s.id}`))).toEqual(s);
    const opened = await sessionOf(await control(`/sessions/${s.id}/open`, 'POST', {}));
    expect(opened.status).toBe('logged_in');
  });

  it('lists requests with Authorization redacted, the in-process record keeps it', async () => {
    await logout('portal_x');
    const body = (await (await control('/requests')).json()) as {
      requests: Array<{ headers: Record<string, string> }>;
    };
    expect(body.requests).toHaveLength(1);
    expect(body.requests[0].headers.authorization).toBe('[redacted]');
    expect(emulator.requests[0].headers.authorization).toBe(basic(KEY));
    const logouts = (await (await control('/logout-requests?id=portal_x')).json()) as { requests: unknown[] };
    expect(logouts.requests).toHaveLength(1);
  });

  it('injects faults with pathRegex and clears them', async () => {
    const added = await control('/faults', 'POST', { match: { pathRegex: 'logout$' }, status: 503, times: 5 });
    expect(added.status).toBe(201);
    expect((await logout('portal_x')).status).toBe(503);
    expect((await api('/portal_sessions/portal_x')).status).toBe(404);
    const listed = (await (await control('/faults')).json()) as {
      faults: Array<{ remaining: number; match: { pathRegex: string } }>;
    };
    expect(listed.faults[0]).toMatchObject({ remaining: 4, match: { pathRegex: 'logout$' } });
    expect((await control('/faults', 'DELETE')).status).toBe(200);
    expect((await logout('portal_x')).status).toBe(404);
  });

  it('refuses a session for an unknown site or without customerId with 400', async () => {
    expect((await control('/sessions', 'POST', { site: 'nope', customerId: 'c' })).status).toBe(400);
    expect((await control('/sessions', 'POST', {})).status).toBe(400);
    expect(emulator.sessions()).toEqual([]);
  });

  it('refuses a bad fault with 400', async () => {
    expect((await control('/faults', 'POST', { times: -1 })).status).toBe(400);
    expect((await control('/faults', 'POST', { match: { pathRegex: '(' } })).status).toBe(400);
  });

  it('resets everything', async () => {
    emulator.createSession({ customerId: 'c' });
    emulator.injectFault({ status: 500, match: { path: '/nothing' } });
    await logout('portal_x');
    expect((await control('/reset', 'POST', {})).status).toBe(200);
    expect(emulator.sessions()).toEqual([]);
    expect(emulator.requests).toEqual([]);
    expect(((await (await control('/faults')).json()) as { faults: unknown[] }).faults).toEqual([]);
  });

  it('needs a JSON content type for POST, so that a web page cannot drive it', async () => {
    const res = await fetch(`${emulator.url}/_emulator/reset`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain' },
      body: '{}',
    });
    expect(res.status).toBe(415);
  });

  it('answers 404 for an unknown control route', async () => {
    expect((await control('/nothing')).status).toBe(404);
  });
});

describe('reset and options', () => {
  it('reset forgets sessions, requests, faults and idempotency keys', async () => {
    const s = emulator.createSession({ customerId: 'c' });
    const headers = { 'chargebee-idempotency-key': 'k' };
    await logout(s.id, { headers });
    emulator.injectFault({ status: 500, match: { path: '/nothing' } });
    emulator.reset();
    expect(emulator.sessions()).toEqual([]);
    expect(emulator.requests).toEqual([]);
    const again = await logout(s.id, { headers });
    expect(again.status).toBe(404);
    expect(again.headers.get('chargebee-idempotency-replayed')).toBeNull();
  });

  it('sessions(site) lists one site, sessions() all', () => {
    emulator.createSession({ customerId: 'a' });
    emulator.createSession({ site: OTHER_SITE, customerId: 'b' });
    expect(emulator.sessions('acme-test').map((s) => s.customer_id)).toEqual(['a']);
    expect(emulator.sessions(OTHER_SITE).map((s) => s.customer_id)).toEqual(['b']);
    expect(emulator.sessions()).toHaveLength(2);
  });

  it('baseUrl and apiKey default to the first site', async () => {
    expect(emulator.baseUrl()).toBe(`${emulator.url}/acme-test/api/v2`);
    expect(emulator.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(emulator.apiKey()).toBe(KEY);
    expect(emulator.apiKey(OTHER_SITE)).toBe(OTHER_KEY);
    expect(() => emulator.apiKey('nope')).toThrow(/no site "nope"/);
    await withEmulator({}, async (emu) => {
      expect(emu.baseUrl()).toBe(`${emu.url}/acme-test/api/v2`);
      expect(emu.apiKey()).toBe('test_emulator_key');
    });
  });

  it('refuses bad options with a TypeError naming the option', async () => {
    await expect(ChargebeeEmulator.start({ sites: {} })).rejects.toThrow(/options\.sites/);
    await expect(ChargebeeEmulator.start({ sites: { portal: { apiKey: 'k' } } })).rejects.toThrow(TypeError);
    await expect(ChargebeeEmulator.start({ sites: { s: { apiKey: [] } } })).rejects.toThrow(/apiKey/);
    await expect(ChargebeeEmulator.start({ recordLimit: -1 })).rejects.toThrow(/options\.recordLimit/);
    await expect(ChargebeeEmulator.start({ publicUrl: 'not a url' })).rejects.toThrow(/options\.publicUrl/);
  });
});

describe('CLI', () => {
  it('prints its URLs as one JSON line and exits on SIGTERM', async () => {
    const root = join(__dirname, '..');
    const child = spawn(
      join(root, 'node_modules', '.bin', 'tsx'),
      [join(root, 'src', 'testing', 'cli.ts'), '--port', '0', '--site', 'cli-test', '--key', 'cli_key'],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    try {
      const [line] = (await once(createInterface({ input: child.stdout }), 'line')) as [string];
      const info = JSON.parse(line) as { url: string; baseUrl: string; apiKey: string };
      expect(info.baseUrl).toBe(`${info.url}/cli-test/api/v2`);
      expect(info.apiKey).toBe('cli_key');
      const res = await fetch(`${info.baseUrl}/portal_sessions`, {
        method: 'POST',
        headers: { authorization: basic('cli_key'), 'content-type': 'application/x-www-form-urlencoded' },
        body: 'customer[id]=c1',
      });
      expect(res.status).toBe(200);
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      const [code] = (await exited) as [number | null];
      expect(code).toBe(0);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  }, 30_000);
});
