/**
 * Portal sessions that end by themselves (option `expiry`), on a fake clock against the emulator over real
 * HTTP: the maximum portal-session age and idle expiry end them on time and not before, activity postpones
 * idle expiry at most one store write per interval, the maximum age bounds it, and a logout of any kind
 * leaves nothing scheduled.
 */
import express from 'express';
import request from 'supertest';
import {
  chargebeePortalLogout,
  MemoryDeferredLogoutStore,
  MemoryPortalSessionRegistry,
  type ChargebeePortalLogoutOptions,
  type PortalSessionOutcome,
} from '../src';
import { ChargebeeEmulator } from '../src/testing';
import { createEverywhereApp } from './helpers/everywhere-app';
import { advance, settleReal, untilReal, useFakeClock } from './helpers/fake-clock';
import { FAST } from './helpers/harness';
import { captureLogs } from './helpers/log-capture';
import type { TestOptions } from './helpers/tuned';
import { siteKey } from '../src/reliability/rate-limit';

const API_KEY = 'test_EXPIRYKEY_14';
const CUSTOMER = 'cus_expiry_1';
const MINUTE = 60_000;
let emulator: ChargebeeEmulator;
const closing: Array<{ close: (o?: { timeoutMs?: number }) => Promise<void> }> = [];

beforeAll(async () => {
  emulator = await ChargebeeEmulator.start({ sites: { 'acme-test': { apiKey: API_KEY } } });
});
beforeEach(() => useFakeClock());
afterEach(async () => {
  jest.useRealTimers();
  emulator.clearFaults();
  emulator.clearRequests();
  await Promise.all(closing.splice(0).map((m) => m.close({ timeoutMs: 200 })));
});
afterAll(() => emulator.close());

type Agent = ReturnType<typeof request.agent>;

function setup(expiry: ChargebeePortalLogoutOptions['expiry'], extra: Partial<TestOptions> = {}) {
  const logs = captureLogs();
  const store = new MemoryDeferredLogoutStore(1000);
  const registry = new MemoryPortalSessionRegistry();
  const finals: PortalSessionOutcome[] = [];
  const made = createEverywhereApp({
    apiKey: API_KEY,
    baseUrl: emulator.baseUrl('acme-test'),
    logger: logs.logger,
    ...FAST,
    deferred: { store },
    registry,
    expiry,
    onOutcome: (outcome, req) => void (req === undefined && finals.push(outcome)),
    ...extra,
  });
  closing.push(made.portalLogout);
  return { ...made, logs, store, registry, finals };
}

/** A signed-in app session (a cookie jar) that opened `portals` portal sessions, opened at the emulator. */
async function device(app: Parameters<typeof request.agent>[0], portals = 1): Promise<{ agent: Agent; ids: string[] }> {
  const agent = request.agent(app);
  await agent.post('/login').send({ email: 'jane@example.com', customerId: CUSTOMER }).expect(200);
  const ids: string[] = [];
  for (let i = 0; i < portals; i++) {
    const res = await agent.post('/portal').send({}).expect(200);
    emulator.openSession(res.body.id);
    ids.push(res.body.id);
  }
  return { agent, ids };
}

const statusAt = (id: string) => emulator.getSession(id)?.status;

describe('maximum portal-session age', () => {
  it('logs a portal session out at its maximum age, not before, and reports why', async () => {
    const { app, finals, registry, logs, store } = setup({ maxAgeMs: 60 * MINUTE });
    const { ids } = await device(app);
    expect(store.size()).toBe(1);

    await advance(60 * MINUTE - 1000);
    expect(statusAt(ids[0])).toBe('logged_in');
    expect(emulator.logoutRequests()).toHaveLength(0);

    await advance(1000);
    await untilReal(() => finals.length === 1, 'the scheduled logout');
    expect(statusAt(ids[0])).toBe('logged_out');
    expect(finals[0]).toMatchObject({ status: 'logged_out', reason: 'portal_max_age', deferred: true, attempts: 1 });
    expect(finals[0].id).toBe(ids[0]);
    // No origin headers: the logout is not the customer's doing.
    const [sent] = emulator.logoutRequests(ids[0]);
    expect(sent.headers['chargebee-request-origin-ip']).toBeUndefined();
    expect(sent.headers['chargebee-request-origin-user']).toBeUndefined();
    expect(logs.lines).toContainEqual(
      expect.objectContaining({
        msg: 'chargebee portal logout (deferred): logged_out (portal_max_age)',
        chargebeePortalLogout: expect.objectContaining({ reason: 'portal_max_age', deferred: true }),
      }),
    );
    await untilReal(
      () => registry.list(siteKey(emulator.baseUrl('acme-test')), CUSTOMER).length === 0,
      'the registry to forget it',
    );
    expect(store.size()).toBe(0);
  });
});

describe('idle expiry', () => {
  it('logs the portal sessions out after the idle time and one activity interval without activity, not before', async () => {
    const { app, finals } = setup({ idleMs: 30 * MINUTE });
    const { ids } = await device(app, 2);

    await advance(31 * MINUTE - 1000);
    expect(ids.map(statusAt)).toEqual(['logged_in', 'logged_in']);
    await advance(1000);
    await untilReal(() => finals.length === 2, 'both idle logouts');
    expect(ids.map(statusAt)).toEqual(['logged_out', 'logged_out']);
    expect(finals.map((o) => o.reason)).toEqual(['idle', 'idle']);
  });

  it('activity postpones idle expiry, and each request within an interval costs no store write', async () => {
    const { app, finals, store } = setup({ idleMs: 30 * MINUTE });
    const postpone = jest.spyOn(store, 'postpone');
    const { agent, ids } = await device(app);

    await advance(20 * MINUTE);
    for (let i = 0; i < 5; i++) await agent.get('/account').expect(200);
    await settleReal(30);
    expect(postpone).toHaveBeenCalledTimes(1);
    await advance(30 * 1000);
    await agent.get('/account').expect(200);
    expect(postpone).toHaveBeenCalledTimes(1); // half an interval later: still none
    await advance(30 * 1000);
    await agent.get('/account').expect(200); // 21 minutes: one interval after the first write
    await settleReal(30);
    expect(postpone).toHaveBeenCalledTimes(2);

    // Without activity the portal session would have ended at 31 minutes; the last write (at 21) moved
    // it to 21 + 30 + 1.
    await advance(31 * MINUTE - 1000);
    expect(statusAt(ids[0])).toBe('logged_in');
    expect(emulator.logoutRequests()).toHaveLength(0);
    await advance(1000);
    await untilReal(() => finals.length === 1, 'the idle logout');
    expect(statusAt(ids[0])).toBe('logged_out');
    expect(finals[0].reason).toBe('idle');
  });

  it('the queue’s own maximum age counts from when a scheduled logout comes due: one that fails is retried', async () => {
    // Scheduled at 0 for 31 minutes, moved to 51 by activity at 20: well past the queue's 10 minutes.
    const { app, finals } = setup(
      { idleMs: 30 * MINUTE },
      { deferred: { store: new MemoryDeferredLogoutStore(1000), maxAgeMs: 10 * MINUTE } },
    );
    const { agent, ids } = await device(app);
    await advance(20 * MINUTE);
    await agent.get('/account').expect(200);
    emulator.injectFault({ match: { path: /\/logout$/ }, status: 503, times: 3 });
    await advance(31 * MINUTE);
    for (let i = 0; i < 20 && finals.length === 0; i++) await advance(100);
    await untilReal(() => finals.length === 1, 'the scheduled logout after its retries');
    expect(emulator.logoutRequests(ids[0])).toHaveLength(4);
    expect(finals[0]).toMatchObject({ status: 'logged_out', reason: 'idle', attempts: 4 });
    expect(statusAt(ids[0])).toBe('logged_out');
  });

  it('stats() counts scheduled logouts; one that activity postponed is not an old job for the health check', async () => {
    const { app, portalLogout } = setup({ idleMs: 30 * MINUTE });
    const { agent } = await device(app);
    await advance(20 * MINUTE);
    await agent.get('/account').expect(200); // due at 51 minutes now
    await advance(20 * MINUTE);
    const stats = await portalLogout.stats();
    expect(stats.queue).toMatchObject({ depth: 1, scheduled: 1, oldestJobAgeMs: 0, inFlight: 0 });
    const health = await request(app.use('/healthz', portalLogout.healthCheck())).get('/healthz');
    expect(health.status).toBe(200);
  });

  it('the maximum age bounds idle expiry: activity cannot keep a portal session open past it', async () => {
    const { app, finals } = setup({ maxAgeMs: 60 * MINUTE, idleMs: 30 * MINUTE });
    const { agent, ids } = await device(app);
    for (let minute = 10; minute < 60; minute += 10) {
      await advance(10 * MINUTE);
      await agent.get('/account').expect(200);
    }
    expect(statusAt(ids[0])).toBe('logged_in');
    await advance(10 * MINUTE - 1000);
    expect(statusAt(ids[0])).toBe('logged_in');
    await advance(1000);
    await untilReal(() => finals.length === 1, 'the logout at the maximum age');
    expect(statusAt(ids[0])).toBe('logged_out');
    expect(finals[0].reason).toBe('portal_max_age');
  });

  it('activity without idle expiry does nothing and says so once', async () => {
    const { app, logs, store } = setup({ maxAgeMs: 60 * MINUTE });
    const postpone = jest.spyOn(store, 'postpone');
    const { agent } = await device(app);
    await agent.get('/account').expect(200);
    await agent.get('/account').expect(200);
    expect(postpone).not.toHaveBeenCalled();
    expect(logs.lines.filter((l) => String(l.msg).includes('activity is mounted but'))).toHaveLength(1);
  });
});

describe('activity and a store of the app’s that misbehaves', () => {
  function hostApp(read: () => unknown) {
    jest.useRealTimers(); // the store's deadline is a real one here
    const logs = captureLogs();
    const portalLogout = chargebeePortalLogout({
      apiKey: API_KEY,
      baseUrl: emulator.baseUrl('acme-test'),
      logger: logs.logger,
      budgetMs: 200,
      store: { read, write: () => undefined },
      expiry: { idleMs: 30 * MINUTE },
    });
    closing.push(portalLogout);
    const app = express();
    app.get('/account', portalLogout.activity, (_req, res) => void res.json({ ok: true }));
    return { app, logs };
  }

  it('a read that never settles holds a request no longer than the budget', async () => {
    const { app, logs } = hostApp(() => new Promise(() => undefined));
    const started = Date.now();
    await request(app).get('/account').expect(200);
    expect(Date.now() - started).toBeLessThan(2000);
    expect(logs.text()).toMatch(/activity could not read the remembered portal sessions/);
  });

  it('a read that throws or rejects still lets every request through, and is logged once', async () => {
    let calls = 0;
    const { app, logs } = hostApp(() => {
      calls += 1;
      if (calls % 2) throw new Error('store down');
      return Promise.reject(new Error('store down'));
    });
    for (let i = 0; i < 4; i++) await request(app).get('/account').expect(200);
    expect(logs.lines.filter((l) => String(l.msg).includes('activity could not read'))).toHaveLength(1);
  });
});

describe('a logout cancels the scheduled logouts it ended', () => {
  it('an explicit logout leaves nothing scheduled', async () => {
    const { app, store } = setup({ maxAgeMs: 60 * MINUTE, idleMs: 30 * MINUTE });
    const { agent, ids } = await device(app, 2);
    expect(store.size()).toBe(2);
    const res = await agent.post('/logout').expect(200);
    expect(res.body.outcome.result).toBe('ended');
    expect(store.size()).toBe(0);
    await advance(2 * 60 * MINUTE);
    await settleReal(100);
    expect(ids.map((id) => emulator.logoutRequests(id).length)).toEqual([1, 1]);
  });

  it('a sign-out everywhere and logoutCustomer cancel the scheduled logouts of every portal session they end', async () => {
    const { app, store, portalLogout } = setup({ maxAgeMs: 60 * MINUTE });
    const laptop = await device(app);
    const phone = await device(app);
    expect(store.size()).toBe(2);
    await laptop.agent.post('/logout/everywhere').expect(200);
    expect(store.size()).toBe(0);

    const tablet = await device(app);
    expect(store.size()).toBe(1);
    const outcome = await portalLogout.logoutCustomer(CUSTOMER);
    expect(outcome.result).toBe('ended');
    expect(store.size()).toBe(0);
    await advance(2 * 60 * MINUTE);
    await settleReal(100);
    for (const id of [...laptop.ids, ...phone.ids, ...tablet.ids]) expect(emulator.logoutRequests(id)).toHaveLength(1);
  });

  it('a logout that is deferred replaces the scheduled one, and is retried at once rather than at the maximum age', async () => {
    // One attempt inside the request: its backoff would wait on the fake clock.
    const { app, store, finals } = setup({ maxAgeMs: 60 * MINUTE }, { retry: false });
    const { agent, ids } = await device(app);
    emulator.injectFault({ match: { path: /\/logout$/ }, status: 503, times: 1 });
    const res = await agent.post('/logout').expect(200);
    expect(res.body.outcome.result).toBe('deferred');
    expect(store.list()).toEqual([expect.objectContaining({ reason: 'attempts_exhausted', attempts: 1 })]);
    for (let i = 0; i < 20 && finals.length === 0; i++) await advance(100);
    await untilReal(() => finals.length === 1, 'the deferred logout');
    expect(emulator.logoutRequests(ids[0])).toHaveLength(2);
    expect(finals[0]).toMatchObject({ status: 'logged_out' });
    expect(finals[0].reason).toBeUndefined();
    expect(statusAt(ids[0])).toBe('logged_out');
    expect(store.size()).toBe(0);
  });
});

describe('shutdown', () => {
  it('close() does not make scheduled logouts that are not due, and logs how many end with the process', async () => {
    const { app, portalLogout, logs } = setup({ maxAgeMs: 60 * MINUTE });
    await device(app, 2);
    closing.splice(closing.indexOf(portalLogout), 1);
    const closed = portalLogout.close({ timeoutMs: 500 });
    await advance(600);
    await closed;
    expect(emulator.logoutRequests()).toHaveLength(0);
    expect(logs.lines).toContainEqual(
      expect.objectContaining({
        msg: expect.stringContaining('2 scheduled logouts not due yet end with this process'),
        chargebeePortalLogout: expect.objectContaining({ scheduled: 2 }),
      }),
    );
  });
});
