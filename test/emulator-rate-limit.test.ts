// The emulator's per-site rate limit (fixed windows, 429 api_request_limit_exceeded with Retry-After),
// set by option, at run time, through the control API and by the CLI.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { ChargebeeEmulator, type ChargebeeErrorBody } from '../src/testing';

const OTHER = 'other-test';
let emulator: ChargebeeEmulator;

beforeAll(async () => {
  emulator = await ChargebeeEmulator.start({
    sites: {
      'acme-test': { apiKey: 'acme_key', rateLimit: { requests: 3, windowMs: 60_000 } },
      [OTHER]: { apiKey: 'other_key' },
    },
  });
});

afterAll(() => emulator.close());

beforeEach(() => emulator.reset());

function basic(key: string): string {
  return `Basic ${Buffer.from(`${key}:`).toString('base64')}`;
}

function retrieve(site = 'acme-test', key?: string, emu = emulator, baseUrl = emu.baseUrl(site)): Promise<Response> {
  return fetch(`${baseUrl}/portal_sessions/portal_unknown`, {
    headers: { authorization: basic(key ?? emu.apiKey(site)) },
  });
}

async function statuses(count: number, site?: string, emu?: ChargebeeEmulator): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    const res = await retrieve(site, undefined, emu);
    await res.arrayBuffer();
    out.push(res.status);
  }
  return out;
}

function control(path: string, method: string, body?: unknown): Promise<Response> {
  return fetch(`${emulator.url}/_emulator${path}`, {
    method,
    headers: { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

describe('rate limit', () => {
  it('answers 429 api_request_limit_exceeded past the limit, with Retry-After in whole seconds', async () => {
    expect(await statuses(3)).toEqual([404, 404, 404]);
    const res = await retrieve();
    expect(res.status).toBe(429);
    const retryAfter = Number(res.headers.get('retry-after'));
    expect(Number.isInteger(retryAfter)).toBe(true);
    expect(retryAfter).toBeGreaterThanOrEqual(55);
    expect(retryAfter).toBeLessThanOrEqual(60);
    const error = (await res.json()) as ChargebeeErrorBody;
    expect(error.api_error_code).toBe('api_request_limit_exceeded');
    expect(error.http_status_code).toBe(429);
    expect(emulator.rateLimitStats('acme-test')).toEqual({ accepted: 3, limited: 1 });
  });

  it('counts only requests to that site', async () => {
    await statuses(4);
    expect(await statuses(5, OTHER)).toEqual([404, 404, 404, 404, 404]);
    expect(emulator.rateLimitStats(OTHER)).toEqual({ accepted: 5, limited: 0 });
    expect(emulator.rateLimitStats()).toEqual({ accepted: 3, limited: 1 });
  });

  it('counts requests with a wrong key, but not those a fault answered', async () => {
    emulator.injectFault({ status: 503, times: 2 });
    expect(await statuses(2)).toEqual([503, 503]);
    const wrongKey = await retrieve('acme-test', 'wrong_key');
    expect(wrongKey.status).toBe(401);
    expect(await statuses(3)).toEqual([404, 404, 429]);
  });

  it('opens a new window once the last one ended; Retry-After rounds up to whole seconds', async () => {
    emulator.setRateLimit('acme-test', { requests: 2, windowMs: 1000 });
    expect(await statuses(3)).toEqual([404, 404, 429]);
    const limited = await retrieve();
    expect(limited.headers.get('retry-after')).toBe('1');
    await new Promise((r) => setTimeout(r, 1100));
    expect(await statuses(3)).toEqual([404, 404, 429]);
  });

  it('setRateLimit changes or removes a limit at run time; reset restores the configured one', async () => {
    emulator.setRateLimit(OTHER, { requests: 1 });
    expect(await statuses(2, OTHER)).toEqual([404, 429]);
    emulator.setRateLimit(OTHER, undefined);
    expect(await statuses(2, OTHER)).toEqual([404, 404]);
    emulator.setRateLimit('acme-test', { requests: 0 });
    expect(await statuses(1)).toEqual([429]);
    emulator.reset();
    expect(emulator.rateLimitStats()).toEqual({ accepted: 0, limited: 0 });
    expect(await statuses(4)).toEqual([404, 404, 404, 429]);
  });

  it('refuses a bad limit with a TypeError and an unknown site', async () => {
    expect(() => emulator.setRateLimit('acme-test', { requests: -1 })).toThrow(/limit\.requests/);
    expect(() => emulator.setRateLimit('acme-test', { requests: 1, windowMs: 0 })).toThrow(/limit\.windowMs/);
    expect(() => emulator.setRateLimit('nope', { requests: 1 })).toThrow(/no site "nope"/);
    await expect(
      ChargebeeEmulator.start({ sites: { s: { apiKey: 'k', rateLimit: { requests: 1.5 } } } }),
    ).rejects.toThrow(/options\.sites\["s"\]\.rateLimit\.requests/);
  });
});

describe('rate limit through the control API', () => {
  it('sets, shows and removes limits', async () => {
    const set = await control('/rate-limit', 'POST', { site: OTHER, requests: 1, windowMs: 30_000 });
    expect(set.status).toBe(200);
    expect(await set.json()).toEqual({
      site: OTHER,
      limit: { requests: 1, windowMs: 30_000 },
      accepted: 0,
      limited: 0,
    });
    expect(await statuses(2, OTHER)).toEqual([404, 429]);
    const all = (await (await control('/rate-limit', 'GET')).json()) as { sites: Record<string, unknown> };
    expect(all.sites).toEqual({
      'acme-test': { limit: { requests: 3, windowMs: 60_000 }, accepted: 0, limited: 0 },
      [OTHER]: { limit: { requests: 1, windowMs: 30_000 }, accepted: 1, limited: 1 },
    });
    expect((await control(`/rate-limit/${OTHER}`, 'DELETE')).status).toBe(200);
    expect(await statuses(2, OTHER)).toEqual([404, 404]);
    expect(await (await control(`/rate-limit/${OTHER}`, 'GET')).json()).toEqual({
      site: OTHER,
      limit: null,
      accepted: 3,
      limited: 1,
    });
    expect((await control('/rate-limit', 'DELETE')).status).toBe(200);
    expect(await statuses(4)).toEqual([404, 404, 404, 404]);
  });

  it('refuses an unknown site or a bad limit with 400', async () => {
    expect((await control('/rate-limit', 'POST', { site: 'nope', requests: 1 })).status).toBe(400);
    const bad = await control('/rate-limit', 'POST', { requests: 'many' });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: string }).error).toMatch(/limit\.requests/);
    expect((await control('/rate-limit/nope', 'GET')).status).toBe(400);
  });
});

describe('rate limit from the CLI', () => {
  it('--rate-limit N limits every site to N requests per minute', async () => {
    const root = join(__dirname, '..');
    const child = spawn(
      join(root, 'node_modules', '.bin', 'tsx'),
      [join(root, 'src', 'testing', 'cli.ts'), '--port', '0', '--rate-limit', '2'],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    try {
      const [line] = (await once(createInterface({ input: child.stdout }), 'line')) as [string];
      const info = JSON.parse(line) as { url: string; baseUrl: string; apiKey: string };
      const codes: number[] = [];
      for (let i = 0; i < 3; i++) {
        const res = await fetch(`${info.baseUrl}/portal_sessions/portal_x`, {
          headers: { authorization: basic(info.apiKey) },
        });
        await res.arrayBuffer();
        codes.push(res.status);
        if (res.status === 429) expect(Number(res.headers.get('retry-after'))).toBeGreaterThanOrEqual(55);
      }
      expect(codes).toEqual([404, 404, 429]);
    } finally {
      child.kill('SIGTERM');
      if (child.exitCode === null) await once(child, 'exit');
    }
  }, 30_000);
});
