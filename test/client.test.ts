import net from 'node:net';
import { ChargebeeApiError, ChargebeeClient, ChargebeeNetworkError, ChargebeeTimeoutError } from '../src';
import { VERSION } from '../src/base/version';
import { parseRetryAfter } from '../src/chargebee/client';
import { ChargebeeEmulator } from '../src/testing';
import packageJson from '../package.json';

const API_KEY = 'test_CLIENTKEY_9f3a';
let emulator: ChargebeeEmulator;
let client: ChargebeeClient;

beforeAll(async () => {
  emulator = await ChargebeeEmulator.start({ sites: { 'acme-test': { apiKey: API_KEY } } });
  client = new ChargebeeClient({ apiKey: API_KEY, baseUrl: emulator.baseUrl('acme-test'), timeoutMs: 1000 });
});
afterEach(() => {
  emulator.clearFaults();
  emulator.clearRequests();
});
afterAll(async () => {
  client.close();
  await emulator.close();
});

async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a rejection');
}

describe('ChargebeeClient base URL', () => {
  it('builds https://{site}.chargebee.com/api/v2 from a site name', () => {
    expect(new ChargebeeClient({ site: 'acme-test', apiKey: 'k' }).baseUrl).toBe(
      'https://acme-test.chargebee.com/api/v2',
    );
  });

  it('prefers an explicit baseUrl and drops its trailing slash', () => {
    expect(
      new ChargebeeClient({ site: 'acme', apiKey: 'k', baseUrl: 'https://acme.eu.chargebee.com/api/v2/' }).baseUrl,
    ).toBe('https://acme.eu.chargebee.com/api/v2');
  });

  it('sends a User-Agent with the package version, kept equal to package.json', async () => {
    expect(VERSION).toBe(packageJson.version);
    const session = emulator.createSession({ customerId: 'cus_1' });
    await client.logout(session.id);
    expect(emulator.logoutRequests(session.id)[0].headers['user-agent']).toMatch(
      new RegExp(`^chargebee-portal-logout/${VERSION.replace(/\./g, '\\.')} node/`),
    );
  });
});

describe('ChargebeeClient.logout', () => {
  it('logs out a created session with Basic auth, a form content type and an empty body', async () => {
    const session = emulator.createSession({ customerId: 'cus_1' });
    const result = await client.logout(session.id);
    expect(result.status).toBe('logged_out');
    expect(emulator.getSession(session.id)?.status).toBe('logged_out');
    const [request] = emulator.logoutRequests(session.id);
    expect(request.method).toBe('POST');
    expect(request.headers.authorization).toBe(`Basic ${Buffer.from(`${API_KEY}:`).toString('base64')}`);
    expect(request.headers['content-type']).toBe('application/x-www-form-urlencoded; charset=utf-8');
    expect(request.headers.accept).toBe('application/json');
    expect(request.body).toBe('');
  });

  it('sends the chargebee-* headers it is given (unlike the SDK, which drops them)', async () => {
    const session = emulator.createSession({ customerId: 'cus_1' });
    await client.logout(session.id, {
      'chargebee-request-origin-ip': '203.0.113.9',
      'Chargebee-Business-Entity-Id': 'acme-eu',
      'chargebee-event-email': undefined,
    });
    const { headers } = emulator.logoutRequests(session.id)[0];
    expect(headers['chargebee-request-origin-ip']).toBe('203.0.113.9');
    expect(headers['chargebee-business-entity-id']).toBe('acme-eu');
    expect(headers['chargebee-event-email']).toBeUndefined();
  });

  it('refuses a header that is not chargebee-* or carries CR/LF, before any request', async () => {
    const session = emulator.createSession({ customerId: 'cus_1' });
    await expect(client.logout(session.id, { host: 'evil' })).rejects.toThrow(TypeError);
    await expect(client.logout(session.id, { 'chargebee-request-origin-device': 'a\r\nx: y' })).rejects.toThrow(
      TypeError,
    );
    expect(emulator.requests).toHaveLength(0);
  });

  it('refuses an invalid portal-session ID before any request', async () => {
    for (const id of ['../customers', 'a/b', 'portal%2F', '', 'x'.repeat(71)]) {
      await expect(client.logout(id)).rejects.toThrow(TypeError);
    }
    expect(emulator.requests).toHaveLength(0);
  });

  it('rejects with a typed ChargebeeApiError for an unknown session', async () => {
    const error = await rejection(client.logout('portal_unknown'));
    expect(error).toBeInstanceOf(ChargebeeApiError);
    expect(error).toMatchObject({ status: 404, apiErrorCode: 'resource_not_found', retryable: false });
    expect((error as ChargebeeApiError).isConfigurationFault).toBe(false);
  });

  it('treats site_not_found as a configuration fault, unlike resource_not_found', async () => {
    const other = new ChargebeeClient({ apiKey: API_KEY, baseUrl: emulator.baseUrl('no-such-site') });
    const error = (await rejection(other.logout('portal_x'))) as ChargebeeApiError;
    other.close();
    expect(error).toMatchObject({ status: 404, apiErrorCode: 'site_not_found' });
    expect(error.isConfigurationFault).toBe(true);
  });

  it('rejects a wrong key with 401 api_authentication_failed, and no key in the error', async () => {
    const wrong = new ChargebeeClient({ apiKey: 'live_WRONGKEY_77', baseUrl: emulator.baseUrl('acme-test') });
    const error = (await rejection(wrong.logout('portal_x'))) as ChargebeeApiError;
    wrong.close();
    expect(error).toMatchObject({ status: 401, apiErrorCode: 'api_authentication_failed', isConfigurationFault: true });
    const everything = JSON.stringify({ ...error, message: error.message, stack: error.stack });
    expect(everything).not.toContain('live_WRONGKEY_77');
    expect(everything).not.toContain(Buffer.from('live_WRONGKEY_77:').toString('base64'));
    expect(Object.keys(error)).not.toEqual(expect.arrayContaining(['config']));
  });

  it('carries type, param and Retry-After of a Chargebee error', async () => {
    emulator.injectFault({
      status: 429,
      apiErrorCode: 'api_request_limit_exceeded',
      type: 'operation_failed',
      retryAfter: 7,
      times: 1,
    });
    const error = (await rejection(client.logout('portal_any'))) as ChargebeeApiError;
    expect(error).toMatchObject({
      status: 429,
      apiErrorCode: 'api_request_limit_exceeded',
      type: 'operation_failed',
      retryAfterSeconds: 7,
      retryable: true,
    });
  });

  it('does not crash on an HTML 502 from a proxy', async () => {
    emulator.injectFault({
      status: 502,
      rawBody: '<html><body>Bad gateway</body></html>',
      contentType: 'text/html',
      times: 1,
    });
    const error = (await rejection(client.logout('portal_any'))) as ChargebeeApiError;
    expect(error).toBeInstanceOf(ChargebeeApiError);
    expect(error).toMatchObject({ status: 502, apiErrorCode: undefined, retryable: true });
    expect(error.message).toMatch(/not a Chargebee error/);
  });

  it('rejects a 200 whose body is not JSON with an API error, not a crash', async () => {
    emulator.injectFault({ status: 200, rawBody: '{"portal_session":', contentType: 'application/json', times: 1 });
    const error = await rejection(client.logout('portal_any'));
    expect(error).toBeInstanceOf(ChargebeeApiError);
    expect(error.message).toMatch(/without a portal_session/);
  });

  it('rejects with ChargebeeTimeoutError when no answer comes in time', async () => {
    emulator.injectFault({ hang: true, times: 1 });
    const started = Date.now();
    const error = await rejection(client.logout('portal_any', {}, { timeoutMs: 150 }));
    expect(error).toBeInstanceOf(ChargebeeTimeoutError);
    expect((error as ChargebeeTimeoutError).timeoutMs).toBe(150);
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it('rejects with ChargebeeNetworkError when the connection drops', async () => {
    emulator.injectFault({ drop: 'before-response', times: 1 });
    const error = await rejection(client.logout('portal_any'));
    expect(error).toBeInstanceOf(ChargebeeNetworkError);
    expect(error).toMatchObject({ retryable: true });
  });

  it('rejects with ChargebeeNetworkError ECONNREFUSED when nothing listens', async () => {
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as net.AddressInfo;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    const closed = new ChargebeeClient({ apiKey: API_KEY, baseUrl: `http://127.0.0.1:${port}/acme-test/api/v2` });
    const error = await rejection(closed.logout('portal_any'));
    expect(error).toBeInstanceOf(ChargebeeNetworkError);
    expect((error as ChargebeeNetworkError).code).toBe('ECONNREFUSED');
  });

  it('asks to keep the connection alive (one shared keep-alive agent)', async () => {
    const a = emulator.createSession({ customerId: 'cus_1' });
    const b = emulator.createSession({ customerId: 'cus_1' });
    await client.logout(a.id);
    await client.logout(b.id);
    expect(emulator.logoutRequests(a.id)[0].headers.connection).toBe('keep-alive');
  });
});

describe('ChargebeeClient.create and retrieve', () => {
  it('creates a portal session with a form body and reads it back', async () => {
    const created = await client.create({ customerId: 'cus_42', redirectUrl: 'http://localhost:3000/' });
    expect(created).toMatchObject({ customer_id: 'cus_42', status: 'created' });
    const request = emulator.requests.find((r) => r.path.endsWith('/portal_sessions'));
    expect(new URLSearchParams(request?.body).get('customer[id]')).toBe('cus_42');
    expect(new URLSearchParams(request?.body).get('redirect_url')).toBe('http://localhost:3000/');
    const read = await client.retrieve(created.id);
    expect(read.id).toBe(created.id);
  });

  it('refuses create without a customer ID', async () => {
    await expect(client.create({ customerId: '' })).rejects.toThrow(/customerId/);
  });
});

describe('parseRetryAfter', () => {
  it('reads whole seconds and HTTP dates; ignores anything else and waits over a year', () => {
    expect(parseRetryAfter('120')).toBe(120);
    expect(parseRetryAfter(' 0 ')).toBe(0);
    expect(parseRetryAfter(new Date(Date.now() - 60_000).toUTCString())).toBe(0);
    for (const bad of ['-1', '1.5', '1e3', 'soon', '', '9'.repeat(400), String(400 * 24 * 3600), undefined, 5])
      expect(parseRetryAfter(bad)).toBeUndefined();
  });
});
