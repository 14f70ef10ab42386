import request from 'supertest';
import { type PortalLogoutOutcome, type PortalSessionOutcome, type PortalLogoutMiddleware } from '../../src';
import { ChargebeeEmulator } from '../../src/testing';
import { createTestApp } from './apps';
import { captureLogs } from './log-capture';
import { FAST_TUNING, withOptions, type TestOptions } from './tuned';

/** Small budgets and delays, so that the suites stay fast; the breaker is off unless a test turns it on. */
export const FAST: Partial<TestOptions> = {
  budgetMs: 700,
  retry: { maxAttempts: 4 },
  circuitBreaker: false,
  tuning: FAST_TUNING,
};

export async function waitFor(predicate: () => boolean, timeoutMs = 8000, what = 'condition'): Promise<void> {
  const started = Date.now();
  while (!predicate()) {
    if (Date.now() - started > timeoutMs) throw new Error(`waitFor: ${what} not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/**
 * An app whose remembered portal sessions come from a plain list (a custom store), with the logs, the
 * outcome hook's calls (request ones and deferred final ones apart) and the middleware at hand.
 */
export function harness(options: TestOptions) {
  const logs = captureLogs();
  const finals: PortalSessionOutcome[] = [];
  const inline: PortalSessionOutcome[] = [];
  let remembered: unknown = [];
  const { app, portalLogout, handlerCalls } = createTestApp({
    session: false,
    middleware: {
      logger: logs.logger,
      ...options,
      onOutcome: (outcome, req) => {
        (req === undefined ? finals : inline).push(outcome);
        options.onOutcome?.(outcome, req);
      },
      store: { read: () => remembered, write: (_req, _res, list) => void (remembered = list) },
    },
  });
  return {
    app,
    logs,
    finals,
    inline,
    handlerCalls,
    portalLogout: portalLogout as PortalLogoutMiddleware,
    remembered: () => remembered,
    remember(value: unknown) {
      remembered = value;
    },
    /** One POST /logout; the wall time is measured around the HTTP call. */
    async logout(
      headers: Record<string, string> = {},
      method: 'post' | 'get' = 'post',
    ): Promise<{ status: number; outcome: PortalLogoutOutcome; wallMs: number }> {
      const started = performance.now();
      const res = await request(app)[method]('/logout').set(headers);
      return { status: res.status, outcome: res.body.outcome, wallMs: performance.now() - started };
    },
    finalFor: (id: string) => finals.find((o) => o.id === id),
  };
}

/**
 * One emulator for a test file (site `acme-test` with `apiKey`) and a `setup()` that builds a harness on it
 * with the FAST settings. After each test the faults and the record are cleared and every middleware built
 * is closed, so that no deferred logout of one test runs into the next.
 */
export function emulatorSuite(apiKey: string, closeTimeoutMs: number) {
  const open: PortalLogoutMiddleware[] = [];
  const suite = {
    emulator: undefined as unknown as ChargebeeEmulator,
    setup(extra: Partial<TestOptions> = {}) {
      const h = harness({ apiKey, baseUrl: suite.emulator.baseUrl('acme-test'), ...withOptions(FAST, extra) });
      open.push(h.portalLogout);
      return h;
    },
  };
  beforeAll(async () => {
    suite.emulator = await ChargebeeEmulator.start({ sites: { 'acme-test': { apiKey } } });
  });
  afterEach(async () => {
    suite.emulator.clearFaults();
    suite.emulator.clearRequests();
    await Promise.all(open.splice(0).map((m) => m.close({ timeoutMs: closeTimeoutMs })));
  });
  afterAll(() => suite.emulator.close());
  return suite;
}
