// The emulator's faults for hostile upstreams (trickle, oversized body, gzip bomb, raw Retry-After, echo),
// over real HTTP with node:http clients that own their sockets (no keep-alive pool, no timers of their own).
import { request, type IncomingMessage } from 'node:http';
import { gunzipSync, createGunzip } from 'node:zlib';
import { ChargebeeEmulator, type ChargebeeErrorBody, type EmulatedPortalSession } from '../src/testing';

let emulator: ChargebeeEmulator;

beforeAll(async () => {
  emulator = await ChargebeeEmulator.start();
});

afterAll(() => emulator.close());

beforeEach(() => emulator.reset());

function basic(key: string): string {
  return `Basic ${Buffer.from(`${key}:`).toString('base64')}`;
}

interface Sent {
  res: IncomingMessage;
  /** `Date.now()` when the status line and headers had arrived. */
  headersAt: number;
  abort: () => void;
}

/** Sends an API request on a socket of its own and resolves with the response once its headers arrive. */
function send(path: string, init: { method?: string; headers?: Record<string, string>; emu?: ChargebeeEmulator } = {}) {
  const emu = init.emu ?? emulator;
  return new Promise<Sent>((resolve, reject) => {
    const req = request(
      `${emu.baseUrl()}${path}`,
      {
        method: init.method ?? 'GET',
        agent: false,
        headers: { authorization: basic(emu.apiKey()), ...init.headers },
      },
      (res) => resolve({ res, headersAt: Date.now(), abort: () => req.destroy() }),
    );
    req.on('error', reject);
    req.end();
  });
}

interface Received {
  body: Buffer;
  chunks: number;
  endedAt: number;
}

function receive(res: IncomingMessage): Promise<Received> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    res.on('data', (c: Buffer) => parts.push(c));
    res.on('end', () => resolve({ body: Buffer.concat(parts), chunks: parts.length, endedAt: Date.now() }));
    res.on('error', reject);
    res.on('aborted', () => reject(new Error('aborted')));
  });
}

/** Resolves once the response ends or fails; tells which. */
function settle(res: IncomingMessage): Promise<'ended' | 'failed'> {
  return new Promise((resolve) => {
    res.on('end', () => resolve('ended'));
    res.on('error', () => resolve('failed'));
    res.on('close', () => resolve(res.complete ? 'ended' : 'failed'));
    res.resume();
  });
}

/** Counts the timers of `delayMs` created and not cleared while it watches (none fires during a test). */
function watchTimers(delayMs: number): { pending: () => number; stop: () => void } {
  const set = jest.spyOn(global, 'setTimeout');
  const clear = jest.spyOn(global, 'clearTimeout');
  return {
    pending: () =>
      set.mock.calls.filter(
        (call, i) => call[1] === delayMs && !clear.mock.calls.some(([t]) => t === set.mock.results[i].value),
      ).length,
    stop: () => {
      set.mockRestore();
      clear.mockRestore();
    },
  };
}

async function eventually(check: () => boolean, ms = 5000): Promise<void> {
  const until = Date.now() + ms;
  while (!check()) {
    if (Date.now() > until) throw new Error('condition not met in time');
    await new Promise((r) => setImmediate(r));
  }
}

describe('trickle', () => {
  it('sends the headers at once, then the normal answer a few bytes per interval', async () => {
    const session = emulator.createSession({ customerId: 'cus_trickle' });
    emulator.injectFault({ trickle: { intervalMs: 20, bytes: 40 }, times: 1 });
    const sent = await send(`/portal_sessions/${session.id}`);
    expect(sent.res.statusCode).toBe(200);
    const length = Number(sent.res.headers['content-length']);
    const got = await receive(sent.res);
    expect(got.body.length).toBe(length);
    const pieces = Math.ceil(length / 40);
    expect(got.chunks).toBeGreaterThanOrEqual(Math.floor(pieces / 2));
    expect(got.endedAt - sent.headersAt).toBeGreaterThanOrEqual((pieces - 2) * 20);
    expect((JSON.parse(got.body.toString()) as { portal_session: EmulatedPortalSession }).portal_session.id).toBe(
      session.id,
    );
  });

  it("trickles the fault's error one byte at a time by default", async () => {
    emulator.injectFault({ status: 503, trickle: { intervalMs: 1 }, times: 1 });
    const sent = await send('/portal_sessions/portal_x');
    expect(sent.res.statusCode).toBe(503);
    const got = await receive(sent.res);
    expect(got.chunks).toBe(got.body.length);
    expect((JSON.parse(got.body.toString()) as ChargebeeErrorBody).api_error_code).toBe('internal_temporary_error');
  });

  it('stops its timer when the client goes away, and the emulator keeps serving', async () => {
    const timers = watchTimers(60_000);
    try {
      emulator.injectFault({ trickle: { intervalMs: 60_000 }, times: 1 });
      const sent = await send('/portal_sessions/portal_x');
      await eventually(() => timers.pending() === 1);
      sent.abort();
      await eventually(() => timers.pending() === 0);
    } finally {
      timers.stop();
    }
    const next = await send('/portal_sessions/portal_x');
    expect(next.res.statusCode).toBe(404);
    await receive(next.res);
  });

  it('close() ends a trickle in progress at once and leaves no timer', async () => {
    const emu = await ChargebeeEmulator.start();
    const timers = watchTimers(60_000);
    try {
      emu.injectFault({ trickle: { intervalMs: 60_000 } });
      const sent = await send('/portal_sessions/portal_x', { emu });
      const outcome = settle(sent.res);
      await eventually(() => timers.pending() === 1);
      const started = Date.now();
      await emu.close();
      expect(Date.now() - started).toBeLessThan(2000);
      expect(await outcome).toBe('failed');
      expect(timers.pending()).toBe(0);
    } finally {
      timers.stop();
    }
  });
});

describe('bodyBytes', () => {
  it('answers 500 with a padded Chargebee error of exactly that many bytes and a Content-Length', async () => {
    emulator.injectFault({ bodyBytes: 5 * 1024 * 1024, times: 1 });
    const sent = await send('/portal_sessions/portal_x');
    expect(sent.res.statusCode).toBe(500);
    expect(sent.res.headers['content-length']).toBe(String(5 * 1024 * 1024));
    const got = await receive(sent.res);
    expect(got.body.length).toBe(5 * 1024 * 1024);
    expect(got.chunks).toBeGreaterThan(1);
    const error = JSON.parse(got.body.toString()) as ChargebeeErrorBody;
    expect(error.api_error_code).toBe('internal_error');
    expect(error.message.trimEnd()).toBe(error.error_msg);
  });

  it('sends the first bytes of the error when fewer are asked, with the given status and code', async () => {
    emulator.injectFault({ bodyBytes: 12, status: 502, apiErrorCode: 'bad_gateway', times: 1 });
    const sent = await send('/portal_sessions/portal_x');
    expect(sent.res.statusCode).toBe(502);
    expect((await receive(sent.res)).body.toString()).toBe('{"message":"');
  });

  it('refuses more than 1 GiB and a raw body alongside', () => {
    expect(() => emulator.injectFault({ bodyBytes: 2 ** 30 + 1 })).toThrow(/fault\.bodyBytes/);
    expect(() => emulator.injectFault({ bodyBytes: -1 })).toThrow(TypeError);
    expect(() => emulator.injectFault({ bodyBytes: 10, rawBody: 'x' })).toThrow(/bodyBytes and fault\.rawBody/);
  });
});

describe('gzip', () => {
  it('compresses the normal answer with Content-Encoding and Content-Length', async () => {
    const session = emulator.createSession({ customerId: 'cus_gzip' });
    emulator.injectFault({ gzip: true, times: 1 });
    const sent = await send(`/portal_sessions/${session.id}`);
    expect(sent.res.headers['content-encoding']).toBe('gzip');
    const got = await receive(sent.res);
    expect(Number(sent.res.headers['content-length'])).toBe(got.body.length);
    const plain = JSON.parse(gunzipSync(got.body).toString()) as { portal_session: EmulatedPortalSession };
    expect(plain.portal_session.id).toBe(session.id);
  });

  it('with bodyBytes is a gzip bomb: a few hundred KB on the wire inflate to the full size', async () => {
    const bytes = 256 * 1024 * 1024;
    emulator.injectFault({ bodyBytes: bytes, gzip: true, times: 1 });
    const sent = await send('/portal_sessions/portal_x');
    const wire = Number(sent.res.headers['content-length']);
    expect(wire).toBeLessThan(bytes / 500);
    let received = 0;
    let inflated = 0;
    let head = '';
    let tail = Buffer.alloc(0);
    sent.res.on('data', (c: Buffer) => (received += c.length));
    const gunzip = sent.res.pipe(createGunzip());
    gunzip.on('data', (c: Buffer) => {
      if (head === '') head = c.subarray(0, 11).toString();
      inflated += c.length;
      tail = Buffer.concat([tail, c.subarray(-200)]).subarray(-200);
    });
    await new Promise((resolve, reject) => gunzip.on('end', resolve).on('error', reject));
    expect(received).toBe(wire);
    expect(inflated).toBe(bytes);
    expect(head).toBe('{"message":');
    expect(tail.toString()).toMatch(/ ","api_error_code":"internal_error",.*\}$/);
  }, 30_000);

  it('close() ends a bomb the client reads slowly', async () => {
    const emu = await ChargebeeEmulator.start();
    emu.injectFault({ bodyBytes: 2 ** 30, gzip: true, trickle: { intervalMs: 10, bytes: 4096 } });
    const sent = await send('/portal_sessions/portal_x', { emu });
    const outcome = settle(sent.res);
    await new Promise((r) => setTimeout(r, 50));
    const started = Date.now();
    await emu.close();
    expect(Date.now() - started).toBeLessThan(2000);
    expect(await outcome).toBe('failed');
  });
});

describe('retryAfterRaw', () => {
  it.each([
    { name: '3000000', value: '3000000' },
    { name: 'a 400-digit number', value: '9'.repeat(400) },
    { name: 'soon', value: 'soon' },
    { name: 'an HTTP date', value: 'Wed, 21 Oct 2015 07:28:00 GMT' },
  ])('sends Retry-After $name exactly, with 429 by default', async ({ value }) => {
    emulator.injectFault({ retryAfterRaw: value, times: 1 });
    const sent = await send('/portal_sessions/portal_x');
    expect(sent.res.statusCode).toBe(429);
    expect(sent.res.headers['retry-after']).toBe(value);
    await receive(sent.res);
  });

  it('refuses control characters, non-ASCII, an empty value and retryAfter alongside', () => {
    for (const value of ['1\r\nx-injected: 1', 'bientôt', '', ' 5', 'x'.repeat(10_000)]) {
      expect(() => emulator.injectFault({ retryAfterRaw: value })).toThrow(/fault\.retryAfterRaw/);
    }
    expect(() => emulator.injectFault({ retryAfterRaw: '5', retryAfter: 5 })).toThrow(/together/);
  });
});

describe('echo', () => {
  it('repeats the credentials, the portal-session ID and the origin user in varied forms', async () => {
    const user = 'Ada.Lovelace+1@Example.com';
    const encoded = Buffer.from('zoë@example.com').toString('base64');
    emulator.injectFault({ echo: true, times: 1 });
    const sent = await send('/portal_sessions/portal_Echo123/logout', {
      method: 'POST',
      headers: { 'chargebee-request-origin-user': user, 'chargebee-request-origin-user-encoded': encoded },
    });
    expect(sent.res.statusCode).toBe(401);
    const error = JSON.parse((await receive(sent.res)).body.toString()) as ChargebeeErrorBody;
    const key = emulator.apiKey();
    expect(error.message).toContain(basic(key));
    expect(error.message).toContain(key.toUpperCase());
    expect(error.message).toContain('portal_Echo123');
    expect(error.message).toContain(user.toUpperCase());
    expect(error.message).toContain(encodeURIComponent(user));
    expect(error.message).toContain(encoded);
    expect(error.message).toContain('zoë@example.com');
    expect(error.api_error_code).toBe(key);
    expect(error.type).toBe('PORTAL_ECHO123');
    expect(error.param).toBe(encodeURIComponent(user));
    expect(error.error_msg).toBe(error.message);
  });

  it('keeps a given status and falls back to plain fields when there is nothing to repeat', async () => {
    emulator.injectFault({ echo: true, status: 500, times: 1 });
    const sent = await send('/portal_sessions', { method: 'POST', headers: { authorization: 'Bearer x' } });
    expect(sent.res.statusCode).toBe(500);
    const error = JSON.parse((await receive(sent.res)).body.toString()) as ChargebeeErrorBody;
    expect(error.api_error_code).toBe('api_authentication_failed');
    expect(error.type).toBe('invalid_request');
    expect(error.param).toBeUndefined();
    expect(error.message).toContain('Bearer x');
  });

  it('refuses its own fields alongside', () => {
    expect(() => emulator.injectFault({ echo: true, status: 500, message: 'm' })).toThrow(
      "can't pass fault.echo and fault.message together",
    );
    expect(() => emulator.injectFault({ echo: 'yes' as unknown as boolean })).toThrow(/fault\.echo/);
  });
});

describe('the new faults through the control API', () => {
  function control(path: string, method: string, body?: unknown): Promise<Response> {
    return fetch(`${emulator.url}/_emulator${path}`, {
      method,
      headers: { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  }

  it('accepts them as JSON, lists them and applies them', async () => {
    const faults = [
      { trickle: { intervalMs: 1, bytes: 8 }, times: 1 },
      { bodyBytes: 1000, gzip: true, times: 1 },
      { retryAfterRaw: 'soon', times: 1 },
      { echo: true, status: 403, times: 1 },
    ];
    for (const fault of faults) expect((await control('/faults', 'POST', fault)).status).toBe(201);
    const listed = (await (await control('/faults', 'GET')).json()) as { faults: Record<string, unknown>[] };
    expect(listed.faults.map(({ id: _id, remaining: _r, ...f }) => f)).toEqual(faults);

    const trickled = await send('/portal_sessions/portal_x');
    expect(trickled.res.statusCode).toBe(404);
    expect((await receive(trickled.res)).chunks).toBeGreaterThan(1);
    const bomb = await send('/portal_sessions/portal_x');
    expect(gunzipSync((await receive(bomb.res)).body).length).toBe(1000);
    const raw = await send('/portal_sessions/portal_x');
    expect(raw.res.headers['retry-after']).toBe('soon');
    await receive(raw.res);
    const echoed = await send('/portal_sessions/portal_x');
    expect(echoed.res.statusCode).toBe(403);
    expect((await receive(echoed.res)).body.toString()).toContain(emulator.apiKey());
  });

  it('refuses a bad one with 400 and the reason', async () => {
    const res = await control('/faults', 'POST', { trickle: { intervalMs: 0 } });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: string }).error).toMatch(/fault\.trickle\.intervalMs/);
  });
});
