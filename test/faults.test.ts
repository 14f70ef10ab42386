/**
 * Faults through the emulator (and a proxy that refuses connections): for each, the outcome, the attempts
 * made, the time taken (within the budget) and, where the fault was transient, that the portal session
 * ends logged out, inline or through the deferred queue.
 */
import { emulatorSuite, FAST, waitFor } from './helpers/harness';
import { ToggleProxy } from './helpers/toggle-proxy';
import type { TestOptions } from './helpers/tuned';

const API_KEY = 'test_FAULTSKEY_3c1';
const suite = emulatorSuite(API_KEY, 500);
const budgetMs = FAST.budgetMs as number;
/** Scheduling slack on a loaded machine; attempt timeouts are clipped to the budget itself. */
const SLACK_MS = 300;

function setup(extra: Partial<TestOptions> = {}) {
  const h = suite.setup(extra);
  const portal = suite.emulator.createSession({ customerId: 'cus_faults' });
  suite.emulator.openSession(portal.id);
  h.remember([portal.id]);
  const path = `/portal_sessions/${portal.id}/logout`;
  return { ...h, portal, path };
}

function keysOf(id: string): unknown[] {
  return suite.emulator.logoutRequests(id).map((r) => r.headers['chargebee-idempotency-key']);
}

describe('transient faults end logged out inline, within the budget', () => {
  it.each<[string, (path: string) => void, number]>([
    [
      'a timeout (one hung request)',
      (path) => suite.emulator.injectFault({ match: { path }, hang: true, times: 1 }),
      2,
    ],
    [
      'a reset before the response',
      (path) => suite.emulator.injectFault({ match: { path }, drop: 'before-response', times: 1 }),
      2,
    ],
    [
      'a proxy HTML 502, twice',
      (path) =>
        suite.emulator.injectFault({
          match: { path },
          status: 502,
          rawBody: '<html><body>Bad Gateway</body></html>',
          times: 2,
        }),
      3,
    ],
    [
      'a 504 HTML page',
      (path) =>
        suite.emulator.injectFault({ match: { path }, status: 504, rawBody: '<html>Gateway Timeout</html>', times: 1 }),
      2,
    ],
    [
      'malformed JSON in a 200',
      (path) =>
        suite.emulator.injectFault({
          match: { path },
          status: 200,
          rawBody: '{"portal_session": {"id": ',
          contentType: 'application/json',
          times: 1,
        }),
      2,
    ],
    [
      'malformed JSON in a 500',
      (path) =>
        suite.emulator.injectFault({
          match: { path },
          status: 500,
          rawBody: '{"message": "oops',
          contentType: 'application/json',
          times: 1,
        }),
      2,
    ],
    [
      'a 429 without Retry-After, twice',
      (path) => suite.emulator.injectFault({ match: { path }, status: 429, times: 2 }),
      3,
    ],
    [
      'a 429 with Retry-After: 0',
      (path) => suite.emulator.injectFault({ match: { path }, status: 429, retryAfter: 0, times: 1 }),
      2,
    ],
    [
      'a burst of three 500s',
      (path) => suite.emulator.injectFault({ match: { path }, status: 500, apiErrorCode: 'internal_error', times: 3 }),
      4,
    ],
    [
      'a burst of three 503s',
      (path) => suite.emulator.injectFault({ match: { path }, status: 503, apiErrorCode: 'site_not_ready', times: 3 }),
      4,
    ],
  ])('%s', async (_name, inject, attempts) => {
    const { logout, portal, path, handlerCalls, remembered, logs } = setup();
    inject(path);
    const { status, outcome } = await logout();
    expect(status).toBe(200);
    expect(handlerCalls()).toBe(1);
    expect(outcome.result).toBe('ended');
    expect(outcome.portalSessions[0]).toMatchObject({ status: 'logged_out', attempts });
    expect(outcome.durationMs).toBeLessThan(budgetMs + SLACK_MS);
    expect(suite.emulator.getSession(portal.id)?.status).toBe('logged_out');
    expect(suite.emulator.logoutRequests(portal.id)).toHaveLength(attempts);
    // One logout, one idempotency key (a UUID) on every attempt.
    const keys = keysOf(portal.id);
    expect(new Set(keys).size).toBe(1);
    expect(keys[0]).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(remembered()).toEqual([]);
    expect(logs.lines.find((l) => l.chargebeePortalLogout)?.level).toBe(30);
  });

  it('a reset mid-response: Chargebee logged it out, the retry with the same key replays that answer', async () => {
    const { logout, portal, path } = setup();
    suite.emulator.injectFault({ match: { path }, drop: 'mid-response', times: 1 });
    const { outcome } = await logout();
    expect(outcome.portalSessions[0]).toMatchObject({ status: 'logged_out', attempts: 2 });
    const [first, second] = suite.emulator.logoutRequests(portal.id);
    expect(second.headers['chargebee-idempotency-key']).toBe(first.headers['chargebee-idempotency-key']);
    expect(outcome.durationMs).toBeLessThan(budgetMs + SLACK_MS);
  });

  it('a 429 with a Retry-After that fits the budget waits for it inline', async () => {
    const { logout, portal, path } = setup({ budgetMs: 2500, tuning: { attemptTimeoutMs: 500 } });
    suite.emulator.injectFault({ match: { path }, status: 429, retryAfter: 1, times: 1 });
    const { outcome } = await logout();
    expect(outcome.portalSessions[0]).toMatchObject({ status: 'logged_out', attempts: 2 });
    const [first, second] = suite.emulator.logoutRequests(portal.id);
    expect(second.at - first.at).toBeGreaterThanOrEqual(950);
    expect(outcome.durationMs).toBeLessThan(2500 + SLACK_MS);
  });
});

describe('faults that outlast the budget are deferred, and the queue ends them', () => {
  it('a hung Chargebee: deferred at the budget, logged out once it answers again', async () => {
    const { logout, portal, path, finalFor, remembered, logs } = setup({
      retry: { maxAttempts: 10 },
      tuning: { attemptTimeoutMs: 200, retryBaseDelayMs: 10, retryMaxDelayMs: 40 },
    });
    const stop = suite.emulator.injectFault({ match: { path }, hang: true });
    const { outcome, wallMs } = await logout();
    expect(outcome.result).toBe('deferred');
    expect(outcome.portalSessions[0]).toMatchObject({
      status: 'deferred',
      reason: 'budget_exhausted',
      error: expect.objectContaining({ name: 'ChargebeeTimeoutError' }),
    });
    // 700 ms of budget, 200 ms per attempt: three full attempts, and a fourth cut to what is left if it fits.
    expect(outcome.portalSessions[0].attempts).toBeGreaterThanOrEqual(3);
    expect(outcome.portalSessions[0].attempts).toBeLessThanOrEqual(4);
    expect(outcome.durationMs).toBeLessThan(budgetMs + SLACK_MS);
    expect(wallMs).toBeLessThan(budgetMs + 2 * SLACK_MS);
    expect(remembered()).toEqual([]); // the queue owns it now
    expect(logs.lines.find((l) => l.chargebeePortalLogout)).toMatchObject({
      level: 40,
      msg: 'chargebee portal logout: deferred',
    });
    stop();
    await waitFor(() => finalFor(portal.id) !== undefined, 8000, 'the deferred final result');
    expect(finalFor(portal.id)).toMatchObject({
      status: 'logged_out',
      deferred: true,
      idHash: outcome.portalSessions[0].idHash,
    });
    expect(suite.emulator.getSession(portal.id)?.status).toBe('logged_out');
    expect(new Set(keysOf(portal.id)).size).toBe(1);
  });

  it('a burst of 503s longer than the attempts: deferred with attempts_exhausted, then logged out', async () => {
    const { logout, portal, path, finalFor } = setup();
    suite.emulator.injectFault({ match: { path }, status: 503, apiErrorCode: 'internal_temporary_error', times: 7 });
    const { outcome } = await logout();
    expect(outcome.portalSessions[0]).toMatchObject({
      status: 'deferred',
      reason: 'attempts_exhausted',
      attempts: 4,
      httpStatus: 503,
      apiErrorCode: 'internal_temporary_error',
    });
    expect(outcome.durationMs).toBeLessThan(budgetMs + SLACK_MS);
    await waitFor(() => finalFor(portal.id) !== undefined, 8000, 'the deferred final result');
    expect(finalFor(portal.id)).toMatchObject({ status: 'logged_out', deferred: true, attempts: 8 });
    expect(suite.emulator.logoutRequests(portal.id)).toHaveLength(8);
  });

  it('a 429 whose Retry-After is past the budget: deferred at once, the queue waits as asked', async () => {
    // The queue honours a Retry-After up to its largest backoff.
    const { logout, portal, path, finalFor } = setup({ tuning: { queueBaseDelayMs: 20, queueMaxDelayMs: 2000 } });
    suite.emulator.injectFault({ match: { path }, status: 429, retryAfter: 1, times: 1 });
    const { outcome } = await logout();
    expect(outcome.portalSessions[0]).toMatchObject({
      status: 'deferred',
      reason: 'budget_exhausted',
      attempts: 1,
      httpStatus: 429,
    });
    expect(outcome.durationMs).toBeLessThan(budgetMs);
    await waitFor(() => finalFor(portal.id) !== undefined, 8000, 'the deferred final result');
    const [first, second] = suite.emulator.logoutRequests(portal.id);
    expect(second.at - first.at).toBeGreaterThanOrEqual(950);
    expect(suite.emulator.getSession(portal.id)?.status).toBe('logged_out');
  });

  it('connection refused: deferred after the attempts, logged out once Chargebee is reachable', async () => {
    const proxy = await ToggleProxy.start(Number(new URL(suite.emulator.url).port));
    const { logout, portal, finalFor } = setup({ baseUrl: proxy.url('/acme-test/api/v2') });
    await proxy.down();
    try {
      const { outcome } = await logout();
      expect(outcome.portalSessions[0]).toMatchObject({
        status: 'deferred',
        reason: 'attempts_exhausted',
        attempts: 4,
      });
      expect(outcome.portalSessions[0].error).toMatchObject({ name: 'ChargebeeNetworkError', code: 'ECONNREFUSED' });
      expect(outcome.durationMs).toBeLessThan(budgetMs + SLACK_MS);
      expect(suite.emulator.logoutRequests(portal.id)).toHaveLength(0);
      await proxy.up();
      await waitFor(() => finalFor(portal.id) !== undefined, 8000, 'the deferred final result');
      expect(finalFor(portal.id)).toMatchObject({ status: 'logged_out', deferred: true });
      expect(suite.emulator.getSession(portal.id)?.status).toBe('logged_out');
    } finally {
      await proxy.down();
    }
  });
});

describe('answers no retry changes', () => {
  it('401 (a wrong API key): one attempt, no deferral, an error log naming the configuration', async () => {
    const { logout, portal, logs, remembered, portalLogout } = setup({ apiKey: 'test_WRONGKEY_99' });
    const { outcome, status } = await logout();
    expect(status).toBe(200);
    expect(outcome.result).toBe('failed');
    expect(outcome.portalSessions[0]).toMatchObject({
      status: 'failed',
      httpStatus: 401,
      apiErrorCode: 'api_authentication_failed',
      attempts: 1,
    });
    expect(outcome.portalSessions[0].reason).toBeUndefined();
    expect(suite.emulator.logoutRequests(portal.id)).toHaveLength(1);
    const line = logs.lines.find((l) => l.chargebeePortalLogout);
    expect(line).toMatchObject({ level: 50, msg: expect.stringMatching(/check the Chargebee site and API key/) });
    expect(remembered()).toEqual([portal.id]);
    await portalLogout.close({ timeoutMs: 100 });
    expect(logs.text()).toMatch(/nothing left/);
  });

  it('resource_not_found: one attempt, not_found, forgotten, an info log', async () => {
    const { logout, remember, remembered, logs } = setup();
    remember(['portal_unknown_to_chargebee']);
    const { outcome } = await logout();
    expect(outcome.portalSessions[0]).toMatchObject({
      status: 'not_found',
      httpStatus: 404,
      apiErrorCode: 'resource_not_found',
      attempts: 1,
    });
    expect(outcome.result).toBe('ended');
    expect(remembered()).toEqual([]);
    expect(logs.lines.find((l) => l.chargebeePortalLogout)?.level).toBe(30);
  });

  it('site_not_found: one attempt, failed, kept, an error log (a configuration fault, unlike resource_not_found)', async () => {
    const { logout, portal, remembered, logs } = setup({ baseUrl: suite.emulator.baseUrl('no-such-site') });
    const { outcome } = await logout();
    expect(outcome.portalSessions[0]).toMatchObject({
      status: 'failed',
      httpStatus: 404,
      apiErrorCode: 'site_not_found',
      attempts: 1,
    });
    expect(outcome.result).toBe('failed');
    expect(remembered()).toEqual([portal.id]);
    expect(logs.lines.find((l) => l.chargebeePortalLogout)?.level).toBe(50);
  });

  it.each([400, 403, 409, 422])('HTTP %i: one attempt, failed, not deferred', async (httpStatus) => {
    const { logout, path, portal } = setup();
    suite.emulator.injectFault({ match: { path }, status: httpStatus });
    const { outcome } = await logout();
    expect(outcome.portalSessions[0]).toMatchObject({ status: 'failed', httpStatus, attempts: 1 });
    expect(suite.emulator.logoutRequests(portal.id)).toHaveLength(1);
  });
});
