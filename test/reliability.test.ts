/**
 * Circuit breaker, single flight, the deferred queue seen through the middleware (full queue, maximum age,
 * close()), failClosed, and a process that must exit with deferred logouts pending.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import request from 'supertest';
import { hashPortalSessionId, MemoryDeferredLogoutStore } from '../src';
import { emulatorSuite, waitFor } from './helpers/harness';
import { QUIET_QUEUE as QUIET } from './helpers/tuned';

const API_KEY = 'test_RELIABLEKEY_8';
const suite = emulatorSuite(API_KEY, 200);

const setup = suite.setup;

function newPortal(): string {
  const portal = suite.emulator.createSession({ customerId: 'cus_rel' });
  suite.emulator.openSession(portal.id);
  return portal.id;
}

/** A queue that does not retry during the test, so that only inline calls reach the suite.emulator. */
const QUIET_QUEUE = { tuning: QUIET }; // a deferred logout stays queued for the rest of the test

describe('circuit breaker', () => {
  it('opens after the threshold: the next logout makes no call and is deferred at once; a probe closes it', async () => {
    const h = setup({ ...QUIET_QUEUE, retry: false, circuitBreaker: { failureThreshold: 2, coolOffMs: 400 } });
    const stop = suite.emulator.injectFault({ status: 503, apiErrorCode: 'site_not_ready' });
    for (let i = 0; i < 2; i++) {
      h.remember([newPortal()]);
      expect((await h.logout()).outcome.portalSessions[0]).toMatchObject({
        status: 'deferred',
        reason: 'attempts_exhausted',
        attempts: 1,
      });
    }
    const skipped = newPortal();
    h.remember([skipped]);
    const { outcome } = await h.logout();
    expect(outcome.portalSessions[0]).toMatchObject({ status: 'deferred', reason: 'circuit_open', attempts: 0 });
    expect(outcome.portalSessions[0].error?.name).toBe('ChargebeeCircuitOpenError');
    expect(suite.emulator.logoutRequests(skipped)).toHaveLength(0);
    expect(outcome.durationMs).toBeLessThan(100);

    stop();
    await new Promise((resolve) => setTimeout(resolve, 450));
    const probe = newPortal();
    h.remember([probe]);
    expect((await h.logout()).outcome.portalSessions[0]).toMatchObject({ status: 'logged_out', attempts: 1 });
    const after = newPortal();
    h.remember([after]);
    expect((await h.logout()).outcome.portalSessions[0]).toMatchObject({ status: 'logged_out' });
  });

  it('lets one probe through when half-open; a concurrent logout is deferred without a call', async () => {
    const h = setup({ ...QUIET_QUEUE, retry: false, circuitBreaker: { failureThreshold: 1, coolOffMs: 200 } });
    suite.emulator.injectFault({ status: 503, latencyMs: 150 });
    h.remember([newPortal()]);
    await h.logout();
    await new Promise((resolve) => setTimeout(resolve, 250));
    const a = newPortal();
    const b = newPortal();
    h.remember([a, b]);
    const { outcome } = await h.logout();
    const byId = new Map(outcome.portalSessions.map((o) => [o.id, o]));
    const attempts = [byId.get(a)?.attempts, byId.get(b)?.attempts].sort();
    expect(attempts).toEqual([0, 1]);
    expect(suite.emulator.logoutRequests(a).length + suite.emulator.logoutRequests(b).length).toBe(1);
    // The probe failed: open again.
    const c = newPortal();
    h.remember([c]);
    expect((await h.logout()).outcome.portalSessions[0]).toMatchObject({ reason: 'circuit_open', attempts: 0 });
  });

  it('without a queue, an open breaker fails the logout fast with ChargebeeCircuitOpenError', async () => {
    const h = setup({ deferred: false, retry: false, circuitBreaker: { failureThreshold: 1, coolOffMs: 60_000 } });
    suite.emulator.injectFault({ status: 500 });
    h.remember([newPortal()]);
    await h.logout();
    const id = newPortal();
    h.remember([id]);
    const { outcome } = await h.logout();
    expect(outcome.result).toBe('failed');
    expect(outcome.portalSessions[0]).toMatchObject({ status: 'failed', reason: 'circuit_open', attempts: 0 });
    expect(outcome.portalSessions[0].error?.name).toBe('ChargebeeCircuitOpenError');
    expect(h.remembered()).toEqual([id]);
  });

  it('counts logouts, not attempts: one portal session failing on every retry does not open it', async () => {
    const h = setup({ ...QUIET_QUEUE, circuitBreaker: { failureThreshold: 2, coolOffMs: 60_000 } });
    const stuck = newPortal();
    suite.emulator.injectFault({ match: { path: `/portal_sessions/${stuck}/logout` }, status: 503 });
    h.remember([stuck]);
    expect((await h.logout()).outcome.portalSessions[0]).toMatchObject({
      status: 'deferred',
      reason: 'attempts_exhausted',
      attempts: 4,
    });
    const healthy = newPortal();
    h.remember([healthy]);
    expect((await h.logout()).outcome.portalSessions[0]).toMatchObject({ status: 'logged_out', attempts: 1 });
  });

  it('does not count non-retryable answers (404) as failures', async () => {
    const h = setup({ retry: false, circuitBreaker: { failureThreshold: 1, coolOffMs: 60_000 } });
    h.remember(['portal_nobody_1']);
    await h.logout();
    const id = newPortal();
    h.remember([id]);
    expect((await h.logout()).outcome.portalSessions[0]).toMatchObject({ status: 'logged_out' });
  });
});

describe('single flight', () => {
  it('two logouts of the same portal session at once make one upstream call and share its result', async () => {
    const h = setup();
    const id = newPortal();
    h.remember([id]);
    suite.emulator.injectFault({ latencyMs: 150, times: 1 });
    const [first, second] = await Promise.all([request(h.app).post('/logout'), request(h.app).post('/logout')]);
    expect(suite.emulator.logoutRequests(id)).toHaveLength(1);
    for (const res of [first, second])
      expect(res.body.outcome.portalSessions[0]).toMatchObject({ status: 'logged_out', id, attempts: 1 });
    expect(h.handlerCalls()).toBe(2);
  });

  it('shares a deferral too: one queued job, one final result', async () => {
    const h = setup({ retry: false });
    const id = newPortal();
    h.remember([id]);
    suite.emulator.injectFault({ status: 503, latencyMs: 100, times: 1 });
    const [first, second] = await Promise.all([request(h.app).post('/logout'), request(h.app).post('/logout')]);
    for (const res of [first, second]) expect(res.body.outcome.portalSessions[0].status).toBe('deferred');
    await waitFor(() => h.finals.length > 0);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(h.finals).toHaveLength(1);
    expect(suite.emulator.logoutRequests(id)).toHaveLength(2);
  });
});

describe('deferred queue through the middleware', () => {
  it('reports the final result to onOutcome without a request, marked deferred, and logs it', async () => {
    const h = setup({ retry: false });
    const id = newPortal();
    h.remember([id]);
    suite.emulator.injectFault({ status: 503, times: 1 });
    await h.logout();
    await waitFor(() => h.finalFor(id) !== undefined);
    expect(h.inline.map((o) => o.status)).toEqual(['deferred']);
    expect(h.finalFor(id)).toMatchObject({ status: 'logged_out', deferred: true, attempts: 2 });
    const line = h.logs.lines.find((l) => (l.chargebeePortalLogout as { deferred?: boolean } | undefined)?.deferred);
    expect(line).toMatchObject({
      level: 30,
      msg: 'chargebee portal logout (deferred): logged_out',
      chargebeePortalLogout: { idHash: hashPortalSessionId(id), status: 'logged_out', attempts: 2 },
    });
  });

  it('reports a non-retryable answer in the background as a final failure', async () => {
    const h = setup({ retry: false });
    const id = newPortal();
    h.remember([id]);
    suite.emulator.injectFault({ status: 503, times: 1 });
    suite.emulator.injectFault({ status: 409, apiErrorCode: 'invalid_state_for_request', times: 1 });
    await h.logout();
    await waitFor(() => h.finalFor(id) !== undefined);
    expect(h.finalFor(id)).toMatchObject({
      status: 'failed',
      deferred: true,
      httpStatus: 409,
      apiErrorCode: 'invalid_state_for_request',
    });
    expect(h.logs.lines.some((l) => l.level === 50 && /\(deferred\): failed.*may stay open/.test(String(l.msg)))).toBe(
      true,
    );
  });

  it('gives a logout up at the maximum age, with an error log and a final outcome', async () => {
    const h = setup({
      retry: false,
      deferred: { maxAgeMs: 300 },
      tuning: { queueBaseDelayMs: 20, queueMaxDelayMs: 50 },
    });
    const id = newPortal();
    h.remember([id]);
    suite.emulator.injectFault({ status: 503 });
    await h.logout();
    await waitFor(() => h.finalFor(id) !== undefined);
    expect(h.finalFor(id)).toMatchObject({ status: 'failed', reason: 'max_age', deferred: true });
    expect(h.finalFor(id)?.attempts).toBeGreaterThanOrEqual(2);
    expect(h.logs.lines.some((l) => l.level === 50 && /max_age/.test(String(l.msg)))).toBe(true);
  });

  it('when the queue is full: the logout fails with queue_full, stays remembered, and an error log gives the count', async () => {
    const h = setup({ retry: false, deferred: { store: new MemoryDeferredLogoutStore(1) }, ...QUIET_QUEUE });
    suite.emulator.injectFault({ status: 503 });
    h.remember([newPortal()]);
    expect((await h.logout()).outcome.result).toBe('deferred');
    const id = newPortal();
    h.remember([id]);
    const { outcome } = await h.logout();
    expect(outcome.result).toBe('failed');
    expect(outcome.portalSessions[0]).toMatchObject({ status: 'failed', reason: 'queue_full' });
    expect(h.remembered()).toEqual([id]);
    expect(h.logs.lines.find((l) => l.level === 50 && /queue full \(1 queued\)/.test(String(l.msg)))).toBeDefined();
  });

  it('close() drains the queue: a deferred logout ends before close() resolves', async () => {
    const h = setup({ retry: false, ...QUIET_QUEUE });
    const id = newPortal();
    h.remember([id]);
    suite.emulator.injectFault({ status: 503, times: 1 });
    await h.logout();
    expect(h.finals).toHaveLength(0);
    await h.portalLogout.close({ timeoutMs: 2000 });
    expect(h.finalFor(id)).toMatchObject({ status: 'logged_out', deferred: true });
    expect(suite.emulator.getSession(id)?.status).toBe('logged_out');
    expect(h.logs.text()).toMatch(/nothing left/);
  });

  it('close() logs what it cannot drain within its limit, and later deferrals fail with queue_closed', async () => {
    const h = setup({ retry: false, ...QUIET_QUEUE });
    const id = newPortal();
    h.remember([id]);
    suite.emulator.injectFault({ status: 503 });
    await h.logout();
    const started = Date.now();
    await h.portalLogout.close({ timeoutMs: 300 });
    expect(Date.now() - started).toBeLessThan(2000);
    const line = h.logs.lines.find((l) => l.level === 50 && /not drained/.test(String(l.msg)));
    expect(line?.chargebeePortalLogout).toEqual({ left: 1, idHashes: [hashPortalSessionId(id)] });
    const later = newPortal();
    h.remember([later]);
    expect((await h.logout()).outcome.portalSessions[0]).toMatchObject({ status: 'failed', reason: 'queue_closed' });
  });

  it('close() refuses a bad timeout', async () => {
    const h = setup();
    await expect(h.portalLogout.close({ timeoutMs: -1 })).rejects.toThrow(/close: timeoutMs/);
  });

  it('does not keep the process alive with deferred logouts pending', async () => {
    const tsx = path.join(__dirname, '..', 'node_modules', '.bin', 'tsx');
    const child = spawn(tsx, [path.join(__dirname, 'fixtures', 'deferred-exit.ts')], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    const code = await new Promise<number | null>((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`the process did not exit by itself (stdout: ${stdout})`));
      }, 20_000);
      child.on('exit', (exitCode) => {
        clearTimeout(timer);
        resolve(exitCode);
      });
    });
    expect(stdout.trim()).toBe('deferred');
    expect(code).toBe(0);
  }, 30_000);
});

describe('failClosed', () => {
  it('never defers: a logout that runs out of attempts goes to next(err) and the handler does not run', async () => {
    const h = setup({ failClosed: true, deferred: undefined });
    const id = newPortal();
    h.remember([id]);
    suite.emulator.injectFault({ status: 503 });
    const res = await request(h.app).post('/logout');
    expect(res.status).toBe(502);
    expect(res.body.error.name).toBe('PortalLogoutError');
    expect(h.handlerCalls()).toBe(0);
    expect(suite.emulator.logoutRequests(id)).toHaveLength(4);
    expect(h.inline[0]).toMatchObject({ status: 'failed', reason: 'attempts_exhausted' });
    expect(h.remembered()).toEqual([id]);
  });

  it('is refused together with a deferred queue', () => {
    expect(() => setup({ failClosed: true, deferred: { maxAgeMs: 5000 } })).toThrow(
      /can't pass failClosed: true and deferred together/,
    );
  });
});
