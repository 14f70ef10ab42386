/**
 * Every function the app hands over (hooks, header and entity functions, stores, the logger) may be sync
 * or async, may throw, reject or never settle: the logout goes on within its budget, each failure is
 * logged once, and nothing escapes as an unhandled rejection or an uncaught exception. Also: what the
 * store holds (malformed entries, a remember() racing the logout). Over real HTTP against the emulator.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import request from 'supertest';
import {
  MemoryDeferredLogoutStore,
  type DeferredLogoutStore,
  type PortalLogoutMiddleware,
  type PortalLogoutOutcome,
  type PortalSessionStore,
} from '../../src';
import { ChargebeeEmulator } from '../../src/testing';
import { createTestApp } from '../helpers/apps';
import { FAST, waitFor } from '../helpers/harness';
import { captureLogs } from '../helpers/log-capture';
import { withOptions, type TestOptions } from '../helpers/tuned';
import { shimStore } from '../helpers/store-shims';

const API_KEY = 'test_HOSTFNKEY_77';
const BUDGET_MS = FAST.budgetMs as number;
/** Scheduling slack on a loaded 2-core machine. */
const SLACK_MS = 600;
const never = <T>() => new Promise<T>(() => undefined);
const rejectLater = (message: string) => () =>
  new Promise<never>((_resolve, reject) => setTimeout(() => reject(new Error(message)), 5));

let emulator: ChargebeeEmulator;
const open: PortalLogoutMiddleware[] = [];
const escaped: unknown[] = [];
const onEscape = (error: unknown) => escaped.push(error);

beforeAll(async () => {
  emulator = await ChargebeeEmulator.start({ sites: { 'acme-test': { apiKey: API_KEY } } });
  process.on('unhandledRejection', onEscape);
  process.on('uncaughtException', onEscape);
});
afterEach(async () => {
  emulator.clearFaults();
  await Promise.all(open.splice(0).map((m) => m.close({ timeoutMs: 100 })));
  // A late rejection would arrive after the test: give it a moment to show.
  await new Promise((resolve) => setTimeout(resolve, 30));
  expect(escaped).toEqual([]);
});
afterAll(async () => {
  process.off('unhandledRejection', onEscape);
  process.off('uncaughtException', onEscape);
  await emulator.close();
});

function portal(): string {
  const id = emulator.createSession({ customerId: 'cus_host' }).id;
  emulator.openSession(id);
  return id;
}

/** An app with a custom store over `held` (unless `store` is given), the FAST settings and captured logs. */
function app(extra: Partial<TestOptions> = {}, held: { value: unknown } = { value: [] }) {
  const logs = captureLogs();
  const built = createTestApp({
    session: false,
    middleware: {
      apiKey: API_KEY,
      baseUrl: emulator.baseUrl('acme-test'),
      logger: logs.logger,
      store: { read: () => held.value, write: (_req, _res, list) => void (held.value = list) },
      ...withOptions(FAST, extra),
    },
  });
  open.push(built.portalLogout);
  return {
    ...built,
    logs,
    held,
    async logout(): Promise<{ status: number; outcome: PortalLogoutOutcome; wallMs: number }> {
      const started = performance.now();
      const res = await request(built.app).post('/logout');
      return { status: res.status, outcome: res.body.outcome, wallMs: performance.now() - started };
    },
  };
}

const linesMatching = (logs: ReturnType<typeof captureLogs>, pattern: RegExp) =>
  logs.lines.filter((line) => pattern.test(String(line.msg)));

describe('header, entity and outcome functions', () => {
  it('async functions that reject: the logout goes on, each failure is logged once', async () => {
    const id = portal();
    const a = app(
      {
        originHeaders: {
          ip: rejectLater('ip down'),
          device: rejectLater('device down'),
          email: rejectLater('email down'),
        },
        businessEntityId: rejectLater('entity down'),
        onOutcome: rejectLater('metrics down'),
      },
      { value: [id] },
    );
    const { status, outcome } = await a.logout();
    expect(status).toBe(200);
    expect(a.handlerCalls()).toBe(1);
    expect(outcome.portalSessions[0].status).toBe('logged_out');
    const sent = emulator.logoutRequests(id)[0].headers;
    expect(sent['chargebee-request-origin-ip']).toBeUndefined();
    expect(sent['chargebee-request-origin-user']).toBeUndefined();
    expect(sent['chargebee-business-entity-id']).toBeUndefined();
    await waitFor(() => linesMatching(a.logs, /onOutcome failed/).length > 0, 2000, 'the onOutcome line');
    for (const what of ['ip', 'device', 'email', 'businessEntityId'])
      expect(linesMatching(a.logs, new RegExp(`the ${what} function rejected`))).toHaveLength(1);
    expect(linesMatching(a.logs, /onOutcome failed/)).toHaveLength(1);
    // The functions that handle personal data: their error's type only, never its message.
    expect(a.logs.text()).not.toContain('email down');
  });

  it('async functions that resolve are used like sync ones', async () => {
    const id = portal();
    const a = app(
      {
        originHeaders: { ip: async () => '203.0.113.9', email: async () => 'async@example.com' },
        businessEntityId: async () => 'acme-async',
      },
      { value: [id] },
    );
    await a.logout();
    const sent = emulator.logoutRequests(id)[0].headers;
    expect(sent['chargebee-request-origin-ip']).toBe('203.0.113.9');
    expect(sent['chargebee-request-origin-user']).toBe('async@example.com');
    expect(sent['chargebee-business-entity-id']).toBe('acme-async');
  });

  it('functions that never settle cost at most the budget', async () => {
    const a = app(
      {
        originHeaders: { ip: never, device: never, email: never },
        businessEntityId: never,
        onOutcome: never,
      },
      { value: [portal()] },
    );
    const { status, wallMs } = await a.logout();
    expect(status).toBe(200);
    expect(a.handlerCalls()).toBe(1);
    expect(wallMs).toBeLessThan(BUDGET_MS + SLACK_MS);
    expect(linesMatching(a.logs, /function did not answer within the budget/)).toHaveLength(4);
  });

  it('an onOutcome that throws synchronously is logged once', async () => {
    const a = app(
      {
        onOutcome: () => {
          throw new Error('metrics down');
        },
      },
      { value: [portal()] },
    );
    await a.logout();
    expect(linesMatching(a.logs, /onOutcome failed/)).toHaveLength(1);
  });
});

describe('the logger', () => {
  it('a logger whose stream throws loses its lines, not the logout, and is reported once', async () => {
    // Warnings reach the real process, not jest's sandboxed one: count the calls instead.
    const emitWarning = jest.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
    try {
      const broken = pino({}, {
        write() {
          throw new Error('disk full');
        },
      } as unknown as Writable);
      const a = app({ logger: broken, onOutcome: () => Promise.reject(new Error('and a failing hook')) });
      for (let i = 0; i < 2; i += 1) {
        a.held.value = [portal(), { id: 'not/valid' }];
        const { status, outcome } = await a.logout();
        expect(status).toBe(200);
        expect(outcome.result).toBe('ended');
      }
      expect(a.handlerCalls()).toBe(2);
      await new Promise((resolve) => setTimeout(resolve, 50));
      const reports = emitWarning.mock.calls.filter(
        ([, options]) => (options as { code?: string } | undefined)?.code === 'CHARGEBEE_PORTAL_LOGOUT_LOGGER',
      );
      expect(reports).toHaveLength(1);
    } finally {
      emitWarning.mockRestore();
    }
  });

  it('a req.log whose methods throw does not stop the logout', async () => {
    const throwing = () => {
      throw new Error('req.log broken');
    };
    const a = createTestApp({
      session: false,
      before: (req, _res, next) => {
        const log = { info: throwing, warn: throwing, error: throwing, child: throwing };
        (req as unknown as { log?: unknown }).log = log;
        next();
      },
      middleware: {
        apiKey: API_KEY,
        baseUrl: emulator.baseUrl('acme-test'),
        ...FAST,
        logger: pino({ level: 'silent' }),
        store: () => [portal()],
      },
    });
    open.push(a.portalLogout);
    const emitWarning = jest.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
    try {
      const res = await request(a.app).post('/logout');
      expect(res.status).toBe(200);
      expect(res.body.outcome.result).toBe('ended');
      expect(emitWarning).toHaveBeenCalledTimes(1);
    } finally {
      emitWarning.mockRestore();
    }
  });
});

describe('log levels', () => {
  it("writes a logout's line only at a level the logger has on", async () => {
    const logs = captureLogs();
    logs.logger.level = 'warn';
    const a = app({ logger: logs.logger });
    a.held.value = [portal()];
    expect((await a.logout()).outcome.result).toBe('ended');
    expect(logs.lines).toEqual([]);
    a.held.value = ['portal_Unknown1'];
    emulator.injectFault({ status: 401, apiErrorCode: 'api_authentication_failed', times: 1 });
    expect((await a.logout()).outcome.result).toBe('failed');
    expect(logs.lines.map((line) => [line.level, line.msg])).toEqual([
      [50, 'chargebee portal logout: failed (check the Chargebee site and API key)'],
    ]);
  });

  it('a req.log whose isLevelEnabled throws still gets the line', async () => {
    const lines: unknown[] = [];
    const a = createTestApp({
      session: false,
      before: (req, _res, next) => {
        const log = {
          info: (fields: unknown, msg: string) => lines.push([fields, msg]),
          warn: () => undefined,
          error: () => undefined,
          child: () => log,
          isLevelEnabled: () => {
            throw new Error('broken');
          },
        };
        (req as unknown as { log?: unknown }).log = log;
        next();
      },
      middleware: { apiKey: API_KEY, baseUrl: emulator.baseUrl('acme-test'), ...FAST, store: () => [portal()] },
    });
    open.push(a.portalLogout);
    expect((await request(a.app).post('/logout')).body.outcome.result).toBe('ended');
    expect(lines).toEqual([
      [expect.objectContaining({ chargebeePortalLogout: expect.anything() }), expect.stringMatching(/ended$/)],
    ]);
  });
});

describe('the store of remembered portal sessions', () => {
  it.each<[string, PortalSessionStore['read']]>([
    ['never settles', never],
    ['settles after the budget', () => new Promise((resolve) => setTimeout(() => resolve([portal()]), 3000))],
  ])('a read that %s: failed with store_timeout, within the budget', async (_name, read) => {
    const a = app({ store: { read, write: () => undefined } });
    const { status, outcome, wallMs } = await a.logout();
    expect(status).toBe(200);
    expect(a.handlerCalls()).toBe(1);
    expect(outcome).toMatchObject({ result: 'failed', reason: 'store_timeout', portalSessions: [] });
    expect(wallMs).toBeLessThan(BUDGET_MS + SLACK_MS);
    expect(linesMatching(a.logs, /could not read/)).toHaveLength(1);
  });

  it('a read that rejects: failed with store_error, logged once', async () => {
    const a = app({ store: { read: rejectLater('db down') } });
    const { outcome } = await a.logout();
    expect(outcome).toMatchObject({ result: 'failed', reason: 'store_error' });
    expect(linesMatching(a.logs, /could not read/)).toHaveLength(1);
  });

  it('a read that is async and answers in time is used', async () => {
    const id = portal();
    const a = app({ store: { read: async () => [id], write: async () => undefined } });
    const { outcome } = await a.logout();
    expect(outcome.result).toBe('ended');
    expect(emulator.getSession(id)?.status).toBe('logged_out');
  });

  it('a write that never settles: next() within the budget, the result stands, the reason says why', async () => {
    const id = portal();
    const a = app({ store: { read: () => [id], write: never } });
    const { status, outcome, wallMs } = await a.logout();
    expect(status).toBe(200);
    expect(outcome).toMatchObject({ result: 'ended', reason: 'store_timeout' });
    expect(wallMs).toBeLessThan(BUDGET_MS + SLACK_MS);
    expect(linesMatching(a.logs, /could not forget/)).toHaveLength(1);
  });

  it('a write that rejects: the result stands, logged once', async () => {
    const a = app({ store: { read: () => [portal()], write: rejectLater('db down') } });
    const { outcome } = await a.logout();
    expect(outcome).toMatchObject({ result: 'ended', reason: 'store_error' });
    expect(linesMatching(a.logs, /could not forget/)).toHaveLength(1);
  });

  it('malformed entries are skipped one by one (counted in the log); the valid ones are logged out', async () => {
    const id = portal();
    const a = app({}, { value: [{ id }, null, 42, {}, ['nested']] });
    const { outcome } = await a.logout();
    expect(outcome.result).toBe('ended');
    expect(outcome.portalSessions).toHaveLength(1);
    expect(outcome.portalSessions[0].status).toBe('logged_out');
    expect(emulator.getSession(id)?.status).toBe('logged_out');
    const line = linesMatching(a.logs, /malformed remembered entries skipped/)[0];
    expect(line.chargebeePortalLogout).toMatchObject({ skipped: 4 });
    expect(a.held.value).toEqual([]);
  });

  it('a portal session remembered while a logout runs survives the logout', async () => {
    const ended = portal();
    emulator.injectFault({ match: { path: `/portal_sessions/${ended}/logout` }, latencyMs: 300, times: 1 });
    const a = app({ budgetMs: 2000, tuning: { attemptTimeoutMs: 1000 } }, { value: [ended] });
    a.app.post('/remember-now', async (req, res) => {
      await a.portalLogout.remember(req, res, req.body.id);
      res.json({ ok: true });
    });
    const logout = a.logout();
    await new Promise((resolve) => setTimeout(resolve, 100));
    const fresh = portal();
    await request(a.app).post('/remember-now').send({ id: fresh });
    const { outcome } = await logout;
    expect(outcome.portalSessions[0]).toMatchObject({ status: 'logged_out' });
    expect(a.held.value).toEqual([{ id: fresh }]);
  });
});

describe('the deferred-logout store', () => {
  function hangingStore(): DeferredLogoutStore {
    return {
      add: never,
      takeDue: () => ({ jobs: [] }),
      remove: () => undefined,
      giveUp: () => true,
      pauseSite: () => undefined,
      wakeSite: () => 0,
      size: () => 0,
    };
  }

  it('an add() that never settles: failed with store_timeout, within the budget', async () => {
    const id = portal();
    emulator.injectFault({ match: { path: `/portal_sessions/${id}/logout` }, status: 503 });
    const a = app({ deferred: { store: hangingStore() } }, { value: [id] });
    const { outcome, wallMs } = await a.logout();
    expect(outcome.portalSessions[0]).toMatchObject({ status: 'failed', reason: 'store_timeout' });
    expect(wallMs).toBeLessThan(BUDGET_MS + SLACK_MS);
    // Still remembered: a later logout tries again.
    expect(a.held.value).toEqual([id]);
  });

  it('a takeDue() that never settles does not stall the queue for good', async () => {
    let hang = true;
    const memory = new MemoryDeferredLogoutStore(10);
    const store = shimStore(memory);
    const takeDue = store.takeDue.bind(store);
    store.takeDue = (limit, rate) => (hang ? never() : takeDue(limit, rate));
    const id = portal();
    emulator.injectFault({ match: { path: `/portal_sessions/${id}/logout` }, status: 503, times: 4 });
    const a = app(
      { deferred: { store }, tuning: { attemptTimeoutMs: 150, queueBaseDelayMs: 10, queueMaxDelayMs: 20 } },
      { value: [id] },
    );
    const { outcome } = await a.logout();
    expect(outcome.portalSessions[0].status).toBe('deferred');
    await new Promise((resolve) => setTimeout(resolve, 200));
    hang = false;
    await waitFor(() => emulator.getSession(id)?.status === 'logged_out', 5000, 'the deferred logout');
  });
});

describe('under --unhandled-rejections=strict', () => {
  it('a process whose every host function rejects or throws, and whose logger throws, survives', async () => {
    const child = spawn(
      process.execPath,
      ['--unhandled-rejections=strict', '--import', 'tsx', path.join(__dirname, '..', 'fixtures', 'hostile-host.ts')],
      { stdio: ['ignore', 'pipe', 'pipe'], cwd: path.join(__dirname, '..', '..') },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    expect({ code, stdout: stdout.trim(), stderr: stderr.includes('Unhandled') ? stderr : '' }).toEqual({
      code: 0,
      stdout: 'logouts: 3, handler calls: 3, results: ended,ended,failed',
      stderr: '',
    });
  });
});
