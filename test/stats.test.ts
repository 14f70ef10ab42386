/**
 * portalLogout.stats() and the health-check handler, mounted on a bare `http` server and on Express, over
 * loopback against the emulator.
 */
import { createServer } from 'node:http';
import express from 'express';
import request from 'supertest';
import { MemoryDeferredLogoutStore, type DeferredLogoutStore } from '../src';
import { emulatorSuite, waitFor } from './helpers/harness';
import { QUIET_QUEUE } from './helpers/tuned';
import { shimStore } from './helpers/store-shims';

const API_KEY = 'test_STATSKEY_6';
const suite = emulatorSuite(API_KEY, 200);

function newPortal(): string {
  const portal = suite.emulator.createSession({ customerId: 'cus_stats' });
  suite.emulator.openSession(portal.id);
  return portal.id;
}

const site = () =>
  suite.emulator
    .baseUrl('acme-test')
    .replace(/^http:\/\//, '')
    .replace(/\/api\/v2$/, '');

describe('portalLogout.stats()', () => {
  it('starts at zero, with an empty queue and a closed circuit per site', async () => {
    const h = suite.setup({ circuitBreaker: {} });
    const stats = await h.portalLogout.stats();
    expect(stats).toEqual({
      since: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      logouts: { nothing_remembered: 0, ended: 0, deferred: 0, failed: 0, skipped_cross_site: 0 },
      portalSessions: { logged_out: 0, already_logged_out: 0, not_found: 0, invalid_id: 0, deferred: 0, failed: 0 },
      deferredResults: { logged_out: 0, already_logged_out: 0, not_found: 0, failed: 0 },
      queue: {
        depth: 0,
        inFlight: 0,
        inMemory: 0,
        oldestJobAgeMs: null,
        durable: false,
        queued: 0,
        scheduled: 0,
        done: 0,
        expired: 0,
        lost: 0,
      },
      circuits: [{ site: site(), state: 'closed', openForMs: null }],
    });
    expect(JSON.parse(JSON.stringify(stats))).toEqual(stats);
  });

  it('counts logouts by result and portal sessions by status, and the final results of deferred ones', async () => {
    const h = suite.setup({ tuning: { queueBaseDelayMs: 300, queueMaxDelayMs: 300 } });
    h.remember([newPortal(), 'not a portal id']);
    await h.logout();
    await h.logout(); // nothing left
    await h.logout({ 'sec-fetch-site': 'cross-site' }, 'get');
    const slow = newPortal();
    suite.emulator.injectFault({ match: { path: `/portal_sessions/${slow}/logout` }, status: 503, times: 4 });
    h.remember([slow]);
    await h.logout();

    const waiting = await h.portalLogout.stats();
    expect(waiting.logouts).toEqual({ nothing_remembered: 1, ended: 1, deferred: 1, failed: 0, skipped_cross_site: 1 });
    expect(waiting.portalSessions).toMatchObject({ logged_out: 1, invalid_id: 1, deferred: 1 });
    expect(waiting.queue).toMatchObject({ depth: 1, queued: 1, done: 0 });
    expect(waiting.queue?.oldestJobAgeMs).toBeGreaterThan(0);

    await waitFor(() => h.finalFor(slow) !== undefined, 5000, 'the background logout');
    const done = await h.portalLogout.stats();
    expect(done.deferredResults).toEqual({ logged_out: 1, already_logged_out: 0, not_found: 0, failed: 0 });
    expect(done.queue).toMatchObject({ depth: 0, oldestJobAgeMs: null, done: 1, inFlight: 0 });
  });

  it('shows an open circuit and for how long, kept across failed probes', async () => {
    const h = suite.setup({
      retry: false,
      circuitBreaker: { failureThreshold: 1, coolOffMs: 100 },
      tuning: QUIET_QUEUE,
    });
    suite.emulator.injectFault({ status: 503 });
    h.remember([newPortal()]);
    await h.logout();
    const opened = (await h.portalLogout.stats()).circuits[0];
    expect(opened).toMatchObject({ state: 'open' });
    expect(opened.openForMs).toBeGreaterThanOrEqual(0);
    await new Promise((resolve) => setTimeout(resolve, 150));
    h.remember([newPortal()]); // the probe fails: open again
    await h.logout();
    const reopened = (await h.portalLogout.stats()).circuits[0];
    expect(reopened.state).toBe('open');
    expect(reopened.openForMs).toBeGreaterThanOrEqual(150);
  });

  it('has no queue with deferred: false and no circuits with circuitBreaker: false', async () => {
    const stats = await suite.setup({ deferred: false, circuitBreaker: false }).portalLogout.stats();
    expect(stats.queue).toBeNull();
    expect(stats.circuits).toEqual([]);
  });

  it("reads the oldest job's age from list() for a store without figures()", async () => {
    const store = shimStore(new MemoryDeferredLogoutStore());
    const h = suite.setup({ retry: false, deferred: { store }, tuning: QUIET_QUEUE });
    suite.emulator.injectFault({ status: 503 });
    h.remember([newPortal()]);
    const before = Date.now();
    await h.logout();
    const { queue } = await h.portalLogout.stats();
    expect(queue).toMatchObject({ depth: 1 });
    expect(queue!.oldestJobAgeMs).toBeGreaterThanOrEqual(0);
    expect(queue!.oldestJobAgeMs).toBeLessThanOrEqual(Date.now() - before + 50);
  });
});

describe('portalLogout.healthCheck()', () => {
  it('answers 200 with the JSON report while healthy, on a bare http server', async () => {
    const h = suite.setup({ circuitBreaker: {} });
    const res = await request(createServer(h.portalLogout.healthCheck())).get('/healthz').expect(200);
    expect(res.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.body).toEqual({ status: 'ok', problems: [], stats: await h.portalLogout.stats() });
  });

  it('answers 503 once the oldest deferred logout is older than maxDeferredAgeMs, and 200 again when it ends', async () => {
    const h = suite.setup({ retry: false, tuning: { queueBaseDelayMs: 400, queueMaxDelayMs: 400 } });
    const app = express().get('/healthz/chargebee', h.portalLogout.healthCheck({ maxDeferredAgeMs: 50 }));
    const id = newPortal();
    suite.emulator.injectFault({ match: { path: `/portal_sessions/${id}/logout` }, status: 503, times: 1 });
    h.remember([id]);
    await h.logout();
    await new Promise((resolve) => setTimeout(resolve, 100));
    const sick = await request(app).get('/healthz/chargebee').expect(503);
    expect(sick.body.status).toBe('unhealthy');
    expect(sick.body.problems).toEqual([
      expect.stringMatching(/^the oldest deferred logout has waited \d+ s \(limit 0 s\)$/),
    ]);
    expect(sick.body.stats.queue.depth).toBe(1);
    await waitFor(() => h.finalFor(id) !== undefined, 5000, 'the background logout');
    expect((await request(app).get('/healthz/chargebee').expect(200)).body.status).toBe('ok');
  });

  it('answers 503 when a circuit breaker has been open longer than maxCircuitOpenMs', async () => {
    const h = suite.setup({
      retry: false,
      circuitBreaker: { failureThreshold: 1, coolOffMs: 60_000 },
      tuning: QUIET_QUEUE,
    });
    const handler = h.portalLogout.healthCheck({ maxCircuitOpenMs: 30, maxDeferredAgeMs: 60_000 });
    suite.emulator.injectFault({ status: 503 });
    h.remember([newPortal()]);
    await h.logout();
    await new Promise((resolve) => setTimeout(resolve, 60));
    const res = await request(createServer(handler)).get('/').expect(503);
    expect(res.body.problems).toEqual([
      expect.stringContaining(`the circuit breaker of site ${site()} has been open for`),
    ]);
  });

  it('answers 503 when the deferred-logout store does not answer, within about a second', async () => {
    const memory = new MemoryDeferredLogoutStore();
    const store: DeferredLogoutStore = {
      ...shimStore(memory),
      // Hangs until the test is over (close() would wait for it too).
      size: () => (hanging ? new Promise<number>((resolve) => hung.push(() => resolve(memory.size()))) : memory.size()),
    };
    let hanging = true;
    const hung: Array<() => void> = [];
    const h = suite.setup({ deferred: { store } });
    const started = Date.now();
    const res = await request(createServer(h.portalLogout.healthCheck())).get('/').expect(503);
    expect(Date.now() - started).toBeLessThan(4000);
    expect(res.body.problems).toEqual(['the deferred-logout store did not answer']);
    expect(res.body.stats.queue.depth).toBeNull();
    hanging = false;
    hung.forEach((release) => release());
  });

  it('sends no body to HEAD, and refuses bad options naming them', async () => {
    const h = suite.setup();
    const res = await request(createServer(h.portalLogout.healthCheck())).head('/').expect(200);
    expect(res.text ?? '').toBe('');
    expect(() => h.portalLogout.healthCheck({ maxDeferredAgeMs: -1 })).toThrow(
      'healthCheck: option maxDeferredAgeMs must be a positive number of milliseconds',
    );
    expect(() => h.portalLogout.healthCheck({ maxCircuitOpenMs: 'soon' as never })).toThrow(/maxCircuitOpenMs/);
  });
});
