/**
 * Chargebee, or a proxy in front of it, misbehaving over real HTTP (raw loopback servers): a body that
 * trickles in, a flood, a gzip bomb, absurd Retry-After values, answers that echo the secrets they were
 * sent, huge fields. The logout stays within its budget, memory stays bounded, and nothing leaks.
 */
import { inspect } from 'node:util';
import zlib from 'node:zlib';
import pino from 'pino';
import { ChargebeeApiError, ChargebeeClient, ChargebeeTimeoutError, type PortalLogoutMiddleware } from '../../src';
import { harness, waitFor } from '../helpers/harness';
import { captureLogs } from '../helpers/log-capture';
import {
  flood,
  gzipAnswer,
  gzipBomb,
  json,
  loggedOut,
  rawUpstream,
  trickle,
  type RawUpstream,
} from '../helpers/raw-upstream';
import { withOptions, type TestOptions } from '../helpers/tuned';

const API_KEY = 'live_HOSTILE_UPSTREAM_KEY_42ab';
const EMAIL = 'Hostile.Person@Example.com';
const ID = 'portal_HostileEchoId0001';
/** Scheduling slack on a loaded 2-core machine. */
const SLACK_MS = 600;

const upstreams: RawUpstream[] = [];
const middlewares: PortalLogoutMiddleware[] = [];
const clients: ChargebeeClient[] = [];

async function upstream(answer: Parameters<typeof rawUpstream>[0]): Promise<RawUpstream> {
  const u = await rawUpstream(answer);
  upstreams.push(u);
  return u;
}

function client(u: RawUpstream, extra: Partial<ConstructorParameters<typeof ChargebeeClient>[0]> = {}) {
  const c = new ChargebeeClient({ apiKey: API_KEY, baseUrl: u.baseUrl, timeoutMs: 2000, ...extra });
  clients.push(c);
  return c;
}

function app(u: RawUpstream, extra: Partial<TestOptions> = {}) {
  const h = harness({
    apiKey: API_KEY,
    baseUrl: u.baseUrl,
    ...withOptions(
      {
        budgetMs: 600,
        retry: { maxAttempts: 4 },
        circuitBreaker: false,
        tuning: {
          attemptTimeoutMs: 300,
          retryBaseDelayMs: 5,
          retryMaxDelayMs: 20,
          queueBaseDelayMs: 20,
          queueMaxDelayMs: 100,
        },
      },
      extra,
    ),
  });
  middlewares.push(h.portalLogout);
  return h;
}

/** Fails instead of hanging the suite when `promise` does not settle in time. */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, limit]);
  } finally {
    clearTimeout(timer);
  }
}

async function rejection(promise: Promise<unknown>, ms = 8000): Promise<Error> {
  try {
    await within(promise, ms, 'the call');
  } catch (error) {
    if ((error as Error).message.includes('did not settle')) throw error;
    return error as Error;
  }
  throw new Error('expected a rejection');
}

afterEach(async () => {
  await Promise.all(middlewares.splice(0).map((m) => m.close({ timeoutMs: 100 })));
  clients.splice(0).forEach((c) => c.close());
  await Promise.all(upstreams.splice(0).map((u) => u.close()));
});

describe('one deadline per attempt, body included', () => {
  it('a call whose body trickles in is abandoned at its timeout', async () => {
    const u = await upstream(trickle(200, 100));
    const started = performance.now();
    const error = await rejection(client(u).logout(ID, {}, { timeoutMs: 300 }));
    expect(error).toBeInstanceOf(ChargebeeTimeoutError);
    expect(performance.now() - started).toBeLessThan(300 + SLACK_MS);
    // The trickling connection is closed, not kept for the next call.
    await waitFor(() => u.connections().open === 0, 2000, 'the connection to close');
  });

  it('a logout against a trickling upstream reaches next() within the budget, and is deferred', async () => {
    const u = await upstream(trickle(200, 100));
    const h = app(u);
    h.remember([ID]);
    const { status, outcome, wallMs } = await within(h.logout(), 8000, 'the logout');
    expect(status).toBe(200);
    expect(h.handlerCalls()).toBe(1);
    expect(wallMs).toBeLessThan(600 + SLACK_MS);
    expect(outcome.portalSessions[0]).toMatchObject({ status: 'deferred', reason: 'budget_exhausted' });
  });

  it('background attempts that trickle free their slots: the queue keeps going and ends the logouts', async () => {
    // Inline attempts meet a 503 (deferred at once); background attempts meet a trickling body.
    const u = await upstream(json(503, { message: 'busy', api_error_code: 'site_not_ready' }));
    const h = app(u, {
      retry: false,
      // No drain rate: this test counts attempts, not the rate.
      deferred: { ratePerMinute: false },
      tuning: { attemptTimeoutMs: 200, concurrency: 2, queueBaseDelayMs: 10, queueMaxDelayMs: 20 },
    });
    const ids = ['portal_Trickle1', 'portal_Trickle2', 'portal_Trickle3', 'portal_Trickle4'];
    h.remember(ids);
    const { outcome } = await h.logout();
    expect(outcome.portalSessions.map((o) => o.status)).toEqual(['deferred', 'deferred', 'deferred', 'deferred']);
    u.answer = trickle(200, 50);
    const inline = u.calls.length;
    // With two slots and 200 ms per attempt, more than two background attempts mean slots were freed.
    await waitFor(() => u.calls.length - inline >= 6, 5000, 'background attempts after the first two');
    u.answer = loggedOut();
    await waitFor(() => h.finals.length === 4, 5000, 'the final results');
    expect(h.finals.map((o) => o.status)).toEqual(['logged_out', 'logged_out', 'logged_out', 'logged_out']);
  });

  it('a timeout larger than a timer holds is kept, not turned into 1 ms', async () => {
    const u = await upstream((req, res) => setTimeout(() => loggedOut()(req, res, u.calls[0]), 50));
    const session = await client(u, { timeoutMs: 1e10 }).logout(ID);
    expect(session.status).toBe('logged_out');
  });
});

describe('bounded answers', () => {
  it('stops reading a 200 MB body early, with a typed error', async () => {
    const u = await upstream(flood(500, 200 * 1024 * 1024));
    const error = await rejection(client(u).logout(ID));
    expect(error.name).toBe('ChargebeeResponseTooLargeError');
    expect(error).toMatchObject({ status: 500, limitBytes: 64 * 1024, retryable: true });
    await waitFor(() => u.connections().open === 0, 5000, 'the connection to close');
    // What the kernel buffered on loopback at most, not 200 MB.
    expect(u.bytesSent()).toBeLessThan(32 * 1024 * 1024);
  });

  it('a logout with retries against a flood reads a bounded amount, and logs the error once', async () => {
    const u = await upstream(flood(500, 200 * 1024 * 1024));
    const h = app(u, { deferred: false, budgetMs: 3000, tuning: { attemptTimeoutMs: 1000 } });
    h.remember([ID]);
    const { outcome } = await h.logout();
    expect(outcome.portalSessions[0]).toMatchObject({ status: 'failed', httpStatus: 500 });
    expect(outcome.portalSessions[0].attempts).toBeGreaterThanOrEqual(2);
    expect(u.bytesSent()).toBeLessThan(outcome.portalSessions[0].attempts! * 32 * 1024 * 1024);
    const mentions = h.logs.lines.filter((l) => JSON.stringify(l).includes('over 65536 bytes'));
    expect(mentions).toHaveLength(1);
  });

  it('stops inflating a gzip bomb at the limit, before the rest of it even arrives', async () => {
    const bomb = gzipBomb(390);
    expect(bomb.length).toBeLessThan(500 * 1024);
    // 64 KB of the bomb (about 60 MB inflated) at once; the rest only after 4 s.
    const u = await upstream(gzipAnswer(200, bomb, 64 * 1024, 4000));
    const started = performance.now();
    const error = await rejection(client(u, { timeoutMs: 8000 }).logout(ID));
    expect(error.name).toBe('ChargebeeResponseTooLargeError');
    expect(performance.now() - started).toBeLessThan(3000);
  });

  it('bounds the compressed bytes too: gzip that inflates to nothing', async () => {
    const empty = zlib.gzipSync(Buffer.alloc(0));
    const members = Buffer.concat(new Array<Buffer>(Math.ceil((200 * 1024) / empty.length)).fill(empty));
    const u = await upstream(gzipAnswer(200, members, members.length, 0));
    const error = await rejection(client(u).logout(ID));
    expect(error.name).toBe('ChargebeeResponseTooLargeError');
  });

  it('reads an ordinary gzip answer', async () => {
    const u = await upstream((_req, res) => {
      const body = JSON.stringify({
        portal_session: { id: ID, status: 'logged_out', token: 't', access_url: 'u', created_at: 1, customer_id: 'c' },
      });
      res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Encoding': 'gzip' });
      res.end(zlib.gzipSync(body));
    });
    expect((await client(u).logout(ID)).status).toBe('logged_out');
    expect(u.calls[0].headers['accept-encoding']).toBe('gzip, deflate');
  });

  it('gives a typed error for a Content-Length over the limit without reading the body', async () => {
    const u = await upstream((_req, res) => {
      res.writeHead(200, { 'Content-Length': String(10 * 1024 * 1024) });
      res.write('{');
    });
    expect((await rejection(client(u).logout(ID))).name).toBe('ChargebeeResponseTooLargeError');
  });
});

describe('Retry-After', () => {
  it('a Retry-After of 3,000,000 s falls back to the backoff: no timer past 2^31-1 ms, and the queue ends the logout', async () => {
    const timers = jest.spyOn(global, 'setTimeout');
    try {
      let calls = 0;
      const u = await upstream((req, res, call) =>
        ++calls === 1
          ? json(429, { message: 'slow down' }, { 'Retry-After': '3000000' })(req, res, call)
          : loggedOut()(req, res, call),
      );
      const h = app(u, { retry: false });
      h.remember([ID]);
      const { outcome } = await h.logout();
      expect(outcome.portalSessions[0]).toMatchObject({ status: 'deferred', httpStatus: 429 });
      await waitFor(() => h.finals.length === 1, 5000, 'the final result');
      expect(h.finals[0].status).toBe('logged_out');
      const delays = timers.mock.calls.map(([, ms]) => Number(ms ?? 0));
      expect(delays.filter((ms) => !(ms <= 2 ** 31 - 1))).toEqual([]);
    } finally {
      timers.mockRestore();
    }
  });

  it('a 400-digit Retry-After (Infinity once parsed) falls back to the backoff', async () => {
    let calls = 0;
    const u = await upstream((req, res, call) =>
      ++calls === 1
        ? json(429, { message: 'slow down' }, { 'Retry-After': '9'.repeat(400) })(req, res, call)
        : loggedOut()(req, res, call),
    );
    const h = app(u, { retry: false });
    h.remember([ID]);
    await h.logout();
    await waitFor(() => h.finals.length === 1, 5000, 'the final result');
    expect(h.finals[0].status).toBe('logged_out');
  });

  it('a Retry-After longer than the largest background backoff, within a minute, is honoured', async () => {
    const calls: number[] = [];
    const u = await upstream((req, res, call) => {
      calls.push(Date.now());
      if (calls.length === 1) json(429, { message: 'later' }, { 'Retry-After': '2' })(req, res, call);
      else loggedOut()(req, res, call);
    });
    const h = app(u, { retry: false, tuning: { queueBaseDelayMs: 10, queueMaxDelayMs: 300 } });
    h.remember([ID]);
    await h.logout();
    await waitFor(() => h.finals.length === 1, 6000, 'the final result');
    expect(calls[1] - calls[0]).toBeGreaterThanOrEqual(1900);
  });

  it.each(['soon', '-5', '1.5', '1e3', ''])('an unreadable Retry-After (%j) is ignored', async (value) => {
    const u = await upstream(json(429, { message: 'x' }, value === '' ? {} : { 'Retry-After': value }));
    const error = (await rejection(client(u).logout(ID))) as ChargebeeApiError;
    expect(error.retryAfterSeconds).toBeUndefined();
  });

  it('an HTTP-date Retry-After is read as seconds from now', async () => {
    const at = new Date(Date.now() + 30_000).toUTCString();
    const u = await upstream(json(429, { message: 'x' }, { 'Retry-After': at }));
    const error = (await rejection(client(u).logout(ID))) as ChargebeeApiError;
    expect(error.retryAfterSeconds).toBeGreaterThanOrEqual(28);
    expect(error.retryAfterSeconds).toBeLessThanOrEqual(31);
  });
});

describe('answers that echo secrets', () => {
  const basic = Buffer.from(`${API_KEY}:`).toString('base64');
  const forbidden = [
    API_KEY,
    basic,
    basic.replace(/=+$/, ''),
    ID,
    EMAIL,
    EMAIL.toLowerCase(),
    encodeURIComponent(EMAIL),
    Buffer.from(EMAIL).toString('base64').replace(/=+$/, ''),
  ];
  const leaks = (text: string) => forbidden.filter((secret) => text.toLowerCase().includes(secret.toLowerCase()));

  /** Answers 401 with every field quoting, in some form, what the request carried. */
  function echo(status = 401) {
    return upstream((req, res, call) => {
      const auth = String(req.headers.authorization);
      const email = String(req.headers['chargebee-request-origin-user']);
      json(status, {
        message: `Bad key ${API_KEY.toUpperCase()} (${auth}) for ${ID.toLowerCase()} of ${email.toUpperCase()} / ${encodeURIComponent(email)} / ${Buffer.from(email).toString('base64')}`,
        api_error_code: `api_authentication_failed:${API_KEY}`,
        type: `invalid_request ${email}`,
        param: `id=${ID} key=${basic}`,
      })(req, res, call);
    });
  }

  it('the client removes them from the message, code, type, param and stack', async () => {
    const u = await echo();
    const error = (await rejection(
      client(u).logout(ID, { 'chargebee-request-origin-user': EMAIL }),
    )) as ChargebeeApiError;
    expect(error).toBeInstanceOf(ChargebeeApiError);
    expect(error.message).toMatch(/^Chargebee answered 401: Bad key \[redacted\]/);
    const logged = captureLogs();
    logged.logger.error({ err: error }, 'app logs the error');
    for (const text of [
      error.message,
      String(error.stack),
      String(error.apiErrorCode),
      String(error.type),
      String(error.param),
      inspect(error),
      JSON.stringify(error),
      logged.text(),
    ])
      expect(leaks(text)).toEqual([]);
    expect(error.apiErrorCode).toBe('api_authentication_failed:[redacted]');
  });

  it("the package's log lines and the outcome carry none of them", async () => {
    const u = await echo(500);
    const h = app(u, { deferred: false, originHeaders: { email: () => EMAIL } });
    h.remember([ID]);
    const { outcome } = await h.logout();
    expect(outcome.portalSessions[0].status).toBe('failed');
    expect(leaks(h.logs.text())).toEqual([]);
    expect(leaks(JSON.stringify(outcome.portalSessions[0].apiErrorCode))).toEqual([]);
    expect(leaks(String(h.inline[0].error?.message))).toEqual([]);
  });

  it('a non-ASCII email sent Base64-encoded is removed in its plain and encoded forms', async () => {
    const unicode = 'Zoë.Hostile@Exämple.com';
    const u = await upstream((req, res, call) => {
      const encoded = String(req.headers['chargebee-request-origin-user-encoded']);
      json(400, {
        message: `user ${Buffer.from(encoded, 'base64').toString('utf8').toUpperCase()} (${encoded})`,
      })(req, res, call);
    });
    const error = await rejection(
      client(u).logout(ID, {
        'chargebee-request-origin-user-encoded': Buffer.from(unicode).toString('base64'),
      }),
    );
    expect(error.message).toBe('Chargebee answered 400: user [redacted] ([redacted])');
  });

  it.each([
    ['1 MB (over the body limit)', 1024 * 1024],
    ['60 KB (within it)', 60 * 1024],
  ])('an api_error_code of %s makes a log line of a few hundred bytes', async (_name, size) => {
    const u = await upstream(json(400, { message: 'too long', api_error_code: 'x'.repeat(size) }));
    const h = app(u, { deferred: false });
    h.remember([ID]);
    const { outcome } = await h.logout();
    expect(outcome.portalSessions[0]).toMatchObject({ status: 'failed', httpStatus: 400 });
    const code = outcome.portalSessions[0].apiErrorCode;
    if (size < 64 * 1024) expect(code).toMatch(/^x{100}\.\.\.$/);
    else expect(outcome.portalSessions[0].error?.name).toBe('ChargebeeResponseTooLargeError');
    const longest = Math.max(
      ...h.logs
        .text()
        .split('\n')
        .map((line) => line.length),
    );
    expect(longest).toBeLessThan(2048);
  });

  it('a huge status in a 200 answer is not quoted', async () => {
    const u = await upstream(
      json(200, { portal_session: { id: ID, status: `weird ${API_KEY} ${'s'.repeat(30_000)}`, customer_id: 'c' } }),
    );
    const h = app(u, { deferred: false });
    h.remember([ID]);
    const { outcome } = await h.logout();
    expect(outcome.portalSessions[0].status).toBe('failed');
    expect(leaks(h.logs.text())).toEqual([]);
    expect(h.logs.text().length).toBeLessThan(4096);
  });
});

describe('socket cap', () => {
  it('a client opens at most maxSockets connections; the other calls wait within their timeout', async () => {
    const u = await upstream(() => undefined); // never answers
    const c = client(u, { maxSockets: 3, timeoutMs: 400 });
    const calls = Array.from({ length: 20 }, (_, i) => c.logout(`portal_Cap${i}`).catch((e: Error) => e));
    const errors = await within(Promise.all(calls), 5000, 'the capped calls');
    expect(errors.every((e) => e instanceof ChargebeeTimeoutError)).toBe(true);
    expect(u.connections().maxOpen).toBeLessThanOrEqual(3);
  });

  it('the middleware caps its clients at 50 sockets (2 here, scaled down)', async () => {
    const u = await upstream(() => undefined);
    const h = app(u, { retry: false, deferred: false, tuning: { maxSockets: 2 } });
    h.remember(Array.from({ length: 8 }, (_, i) => `portal_MwCap${i}`));
    await h.logout();
    expect(u.connections().maxOpen).toBeLessThanOrEqual(2);
    const defaults = app(u, { retry: false, deferred: false, logger: pino({ level: 'silent' }) });
    const agent = (defaults.portalLogout.clientFor() as unknown as { agent: { maxSockets: number } }).agent;
    expect(agent.maxSockets).toBe(50);
  });
});
