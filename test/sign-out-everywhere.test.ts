import request from 'supertest';
import {
  MemoryPortalSessionRegistry,
  PortalSessionRegistryError,
  type ChargebeePortalLogoutOptions,
  type PortalSessionOutcome,
  type PortalSessionRegistry,
} from '../src';
import { ChargebeeEmulator } from '../src/testing';
import { OpenPortalSessions } from '../src/registry/open-portal-sessions';
import { siteKey } from '../src/reliability/rate-limit';
import { safeLog } from '../src/base/logging';
import { createEverywhereApp } from './helpers/everywhere-app';
import { FAST, waitFor } from './helpers/harness';
import { captureLogs } from './helpers/log-capture';

const API_KEY = 'test_EVERYWHEREKEY_11';
const CUSTOMER = 'cus_everywhere_1';
let emulator: ChargebeeEmulator;
const closing: Array<{ close: (o?: { timeoutMs?: number }) => Promise<void> }> = [];

beforeAll(async () => {
  emulator = await ChargebeeEmulator.start({
    sites: { 'acme-test': { apiKey: API_KEY }, 'acme-eu': { apiKey: API_KEY } },
  });
});
afterEach(async () => {
  emulator.clearFaults();
  emulator.clearRequests();
  await Promise.all(closing.splice(0).map((m) => m.close({ timeoutMs: 500 })));
});
afterAll(() => emulator.close());

type Agent = ReturnType<typeof request.agent>;

function setup(extra: Partial<ChargebeePortalLogoutOptions> = {}) {
  const logs = captureLogs();
  const registry = new MemoryPortalSessionRegistry();
  const outcomes: Array<{ outcome: PortalSessionOutcome; withRequest: boolean }> = [];
  const made = createEverywhereApp({
    apiKey: API_KEY,
    baseUrl: emulator.baseUrl('acme-test'),
    logger: logs.logger,
    ...FAST,
    registry,
    onOutcome: (outcome, req) => outcomes.push({ outcome, withRequest: req !== undefined }),
    ...extra,
  });
  closing.push(made.portalLogout);
  return { ...made, logs, registry, outcomes };
}

/** An app session (a cookie jar: a device) signed in as `customerId`, with `portals` portal sessions opened. */
async function device(
  app: Parameters<typeof request.agent>[0],
  customerId = CUSTOMER,
  portals: Array<Record<string, unknown>> = [{}],
  userAgent = 'Device/1.0',
): Promise<{ agent: Agent; ids: string[] }> {
  const agent = request.agent(app);
  await agent.post('/login').set('User-Agent', userAgent).send({ email: 'jane@example.com', customerId }).expect(200);
  const ids: string[] = [];
  for (const body of portals) {
    const res = await agent.post('/portal').set('User-Agent', userAgent).send(body).expect(200);
    emulator.openSession(res.body.id);
    ids.push(res.body.id);
  }
  return { agent, ids };
}

const statusAt = (id: string) => emulator.getSession(id)?.status;
/** The registry's tag of the emulator's site. */
const site = () => siteKey(emulator.baseUrl('acme-test'));

describe('sign out everywhere over HTTP', () => {
  it("ends both devices' portal sessions, and the other app session's list still works afterwards", async () => {
    const { app, registry, handlerCalls } = setup();
    const laptop = await device(app, CUSTOMER, [{}], 'Laptop/1.0');
    const phone = await device(app, CUSTOMER, [{}], 'Phone/1.0');
    expect(registry.list(site(), CUSTOMER).map((e) => e.id)).toEqual([laptop.ids[0], phone.ids[0]]);

    const res = await laptop.agent.post('/logout/everywhere').set('User-Agent', 'Laptop/1.0').expect(200);
    expect(handlerCalls()).toBe(1);
    expect(res.body.outcome.result).toBe('ended');
    expect(res.body.outcome.portalSessions).toEqual([
      expect.objectContaining({ id: laptop.ids[0], status: 'logged_out' }),
      expect.objectContaining({ id: phone.ids[0], status: 'logged_out', elsewhere: true }),
    ]);
    expect(res.body.outcome.portalSessions[0].elsewhere).toBeUndefined();
    expect(statusAt(laptop.ids[0])).toBe('logged_out');
    expect(statusAt(phone.ids[0])).toBe('logged_out');
    // The logout of the phone's portal session carries the origin of the request that asked for it.
    expect(emulator.logoutRequests(phone.ids[0])[0].headers['chargebee-request-origin-device']).toBe('Laptop/1.0');
    expect(registry.list(site(), CUSTOMER)).toEqual([]);

    // The phone's app session still remembers its portal session; its own logout finds it over already
    // (Chargebee answers a repeated logout normally; within seconds it reads as just logged out).
    const loggedOutAt = emulator.getSession(phone.ids[0])?.logout_at;
    const remembered = await phone.agent.get('/remembered').expect(200);
    expect(remembered.body.remembered).toEqual([{ id: phone.ids[0] }]);
    const later = await phone.agent.post('/logout').expect(200);
    expect(later.body.outcome.result).toBe('ended');
    expect(later.body.outcome.portalSessions).toEqual([
      expect.objectContaining({ id: phone.ids[0], status: expect.stringMatching(/^(already_)?logged_out$/) }),
    ]);
    expect(emulator.getSession(phone.ids[0])?.logout_at).toBe(loggedOutAt);
    // And it can open a new portal session, which a later sign-out everywhere finds.
    const again = await device(app, CUSTOMER, [{}], 'Phone/1.0');
    expect(registry.list(site(), CUSTOMER).map((e) => e.id)).toEqual(again.ids);
  });

  it("a plain logout ends only this app session's portal sessions and takes them out of the registry", async () => {
    const { app, registry } = setup();
    const laptop = await device(app);
    const phone = await device(app);
    const res = await laptop.agent.post('/logout').expect(200);
    expect(res.body.outcome.portalSessions.map((o: PortalSessionOutcome) => o.id)).toEqual(laptop.ids);
    expect(statusAt(laptop.ids[0])).toBe('logged_out');
    expect(statusAt(phone.ids[0])).toBe('logged_in');
    expect(registry.list(site(), CUSTOMER).map((e) => e.id)).toEqual(phone.ids);
  });

  it("leaves another customer's portal sessions open", async () => {
    const { app, registry } = setup();
    const mine = await device(app, CUSTOMER);
    const theirs = await device(app, 'cus_someone_else');
    await mine.agent.post('/logout/everywhere').expect(200);
    expect(statusAt(theirs.ids[0])).toBe('logged_in');
    expect(registry.list(site(), 'cus_someone_else').map((e) => e.id)).toEqual(theirs.ids);
  });

  it('with customerId(req), a device that opened no portal session ends the other devices’ ones', async () => {
    const { app } = setup();
    const laptop = await device(app);
    const phone = await device(app, CUSTOMER, []);
    const res = await phone.agent.post('/logout/everywhere').expect(200);
    expect(res.body.outcome.result).toBe('ended');
    expect(res.body.outcome.portalSessions).toEqual([
      expect.objectContaining({ id: laptop.ids[0], status: 'logged_out', elsewhere: true }),
    ]);
    expect(statusAt(laptop.ids[0])).toBe('logged_out');
  });

  it('records a portal session remembered as a bare ID under customerId(req)', async () => {
    const { app, registry } = setup();
    const laptop = await device(app, CUSTOMER, [{ bareId: true }]);
    expect(registry.list(site(), CUSTOMER).map((e) => e.id)).toEqual(laptop.ids);
  });

  it('without a known customer (customerId gives none), ends this app session’s portal sessions and warns', async () => {
    const signedIn = { customer: CUSTOMER as string | undefined };
    const { app, logs } = setup({ customerId: () => signedIn.customer });
    const laptop = await device(app);
    signedIn.customer = undefined; // say, a user whose Chargebee customer was deleted
    const phone = await device(app, CUSTOMER, [{}]);
    const res = await phone.agent.post('/logout/everywhere').expect(200);
    expect(res.body.outcome.portalSessions.map((o: PortalSessionOutcome) => o.id)).toEqual(phone.ids);
    expect(statusAt(laptop.ids[0])).toBe('logged_in');
    expect(logs.text()).toContain('sign-out everywhere without a known customer (customerId gave none)');
  });

  it("never takes the customer from the user's own store: an entry naming another customer ends none of theirs", async () => {
    // A store the user can write (as an unsigned cookie is): here a header the test sets, else the session.
    const { app, registry } = setup({
      store: {
        read: (req) => {
          const written = req.get('x-remembered');
          return written === undefined
            ? ((req.session as { mine?: unknown }).mine ?? [])
            : (JSON.parse(written) as unknown);
        },
        write: (req, _res, list) => void ((req.session as { mine?: unknown }).mine = list),
      },
    });
    const victim = await device(app, CUSTOMER);
    expect(registry.list(site(), CUSTOMER).map((e) => e.id)).toEqual(victim.ids);
    // Mallory has no Chargebee customer (customerId gives none), and names the victim's in her entries.
    const agent = request.agent(app);
    await agent.post('/login').send({ email: 'mallory@example.com' }).expect(200);
    const out = await agent
      .post('/logout/everywhere')
      .set('X-Remembered', JSON.stringify([{ id: 'portal_mine', customerId: CUSTOMER }]))
      .expect(200);
    expect(out.body.outcome.portalSessions.some((o: PortalSessionOutcome) => o.elsewhere)).toBe(false);
    expect(statusAt(victim.ids[0])).toBe('logged_in');
    expect(registry.list(site(), CUSTOMER).map((e) => e.id)).toEqual(victim.ids);
  });

  it('leaves a customer of another site with the same customer ID alone', async () => {
    const { app, portalLogout, registry } = setup({
      businessEntities: { 'acme-eu': { baseUrl: emulator.baseUrl('acme-eu') } },
    });
    const us = await device(app, CUSTOMER);
    const eu = await device(app, CUSTOMER, [{ businessEntityId: 'acme-eu' }]);
    const outcome = await portalLogout.logoutCustomer(CUSTOMER);
    expect(outcome.portalSessions.map((o) => o.id)).toEqual(us.ids);
    expect(statusAt(eu.ids[0])).toBe('logged_in');
    expect(registry.list(siteKey(emulator.baseUrl('acme-eu')), CUSTOMER).map((e) => e.id)).toEqual(eu.ids);
    const euOutcome = await portalLogout.logoutCustomer(CUSTOMER, { businessEntityId: 'acme-eu' });
    expect(euOutcome.portalSessions.map((o) => o.id)).toEqual(eu.ids);
    expect(statusAt(eu.ids[0])).toBe('logged_out');
  });
});

describe('logoutCustomer', () => {
  it('ends every registered portal session of the customer with no request and no origin headers', async () => {
    const { app, portalLogout, registry, outcomes, logs } = setup();
    const laptop = await device(app);
    const phone = await device(app, CUSTOMER, [{}, {}]);
    const outcome = await portalLogout.logoutCustomer(CUSTOMER);
    expect(outcome.result).toBe('ended');
    expect(outcome.portalSessions.map((o) => [o.id, o.status])).toEqual(
      [...laptop.ids, ...phone.ids].map((id) => [id, 'logged_out']),
    );
    for (const id of [...laptop.ids, ...phone.ids]) {
      expect(statusAt(id)).toBe('logged_out');
      const [sent] = emulator.logoutRequests(id);
      expect(Object.keys(sent.headers).filter((h) => h.startsWith('chargebee-request-origin'))).toEqual([]);
      expect(sent.headers['chargebee-idempotency-key']).toEqual(expect.any(String));
    }
    expect(registry.list(site(), CUSTOMER)).toEqual([]);
    expect(outcomes.map((o) => o.withRequest)).toEqual([false, false, false]);
    expect(logs.lines.some((l) => l.msg === 'chargebee portal logout: ended')).toBe(true);
    expect(logs.text()).not.toContain(laptop.ids[0]);
    const stats = await portalLogout.stats();
    expect(stats.logouts.ended).toBe(1);
    expect(stats.portalSessions.logged_out).toBe(3);
  });

  it('sends the origin headers it is given', async () => {
    const { app, portalLogout } = setup();
    const laptop = await device(app);
    await portalLogout.logoutCustomer(CUSTOMER, {
      originHeaders: { ip: '::ffff:203.0.113.9', device: 'Admin console', email: 'zoë@exämple.com' },
    });
    expect(emulator.logoutRequests(laptop.ids[0])[0].headers).toMatchObject({
      'chargebee-request-origin-ip': '203.0.113.9',
      'chargebee-request-origin-device': 'Admin console',
      'chargebee-request-origin-user-encoded': Buffer.from('zoë@exämple.com').toString('base64'),
    });
  });

  it('ends only the portal sessions of the business entity it is given', async () => {
    const { app, portalLogout, registry } = setup();
    const us = await device(app, CUSTOMER, [{ businessEntityId: 'acme-us' }]);
    const eu = await device(app, CUSTOMER, [{ businessEntityId: 'acme-eu' }]);
    const outcome = await portalLogout.logoutCustomer(CUSTOMER, { businessEntityId: 'acme-us' });
    expect(outcome.portalSessions.map((o) => [o.id, o.businessEntityId])).toEqual([[us.ids[0], 'acme-us']]);
    expect(emulator.logoutRequests(us.ids[0])[0].headers['chargebee-business-entity-id']).toBe('acme-us');
    expect(statusAt(eu.ids[0])).toBe('logged_in');
    expect(registry.list(site(), CUSTOMER).map((e) => e.id)).toEqual(eu.ids);
  });

  it('records the default business entity with the portal session, for a logout without a request', async () => {
    const { app, portalLogout } = setup({ businessEntityId: () => 'acme-default' });
    const laptop = await device(app);
    await portalLogout.logoutCustomer(CUSTOMER);
    expect(emulator.logoutRequests(laptop.ids[0])[0].headers['chargebee-business-entity-id']).toBe('acme-default');
  });

  it('answers nothing_remembered for a customer with no registered portal session', async () => {
    const { portalLogout } = setup();
    await expect(portalLogout.logoutCustomer('cus_nobody')).resolves.toMatchObject({
      result: 'nothing_remembered',
      portalSessions: [],
    });
    expect(emulator.logoutRequests()).toEqual([]);
  });

  it.each([
    ['empty', ''],
    ['51 characters', 'c'.repeat(51)],
    ['whitespace', 'cus 1'],
    ['a control character', 'cus\u00071'],
    ['non-ASCII', 'cüs_1'],
    ['not a string', 42],
  ])('refuses a customer ID that is %s with a TypeError', async (_name, customerId) => {
    const { portalLogout } = setup();
    await expect(portalLogout.logoutCustomer(customerId as string)).rejects.toThrow(TypeError);
    await expect(portalLogout.logoutCustomer(customerId as string)).rejects.toThrow(/^logoutCustomer: the customer ID/);
  });

  it.each([
    [{ businessEntityId: 'acme us' }, /businessEntityId/],
    [{ originHeaders: { ip: 'not-an-ip' } }, /originHeaders.ip/],
    [{ originHeaders: { email: 'a\r\nb@example.com' } }, /originHeaders.email/],
    [{ originHeaders: { user: 'x' } }, /unknown option originHeaders.user/],
    [{ entity: 'x' }, /unknown option entity/],
  ])('refuses the bad option %p with a TypeError', async (options, message) => {
    const { portalLogout } = setup();
    await expect(portalLogout.logoutCustomer(CUSTOMER, options as never)).rejects.toThrow(message);
  });

  it('refuses a bad customer ID given to remember() with a TypeError', async () => {
    const { app, registry } = setup();
    const agent = request.agent(app);
    await agent.post('/login').send({ email: 'a@example.com', customerId: CUSTOMER }).expect(200);
    const res = await agent.post('/portal').send({ customerId: 'cus\n2' }).expect(500);
    expect(res.body.error).toEqual({
      name: 'TypeError',
      message: 'remember: the customer ID must not contain whitespace (a Chargebee customer ID)',
    });
    expect(registry.list(site(), CUSTOMER)).toEqual([]);
  });

  it('is unavailable without a registry, and everywhere cannot be set then', () => {
    const { portalLogout } = setup({ registry: false, everywhere: false });
    return expect(portalLogout.logoutCustomer(CUSTOMER)).rejects.toThrow(
      /logoutCustomer needs the registry of open portal sessions: set the option registry: true/,
    );
  });
});

describe('openPortalSessions', () => {
  it("lists the customer's open portal sessions, oldest first, and no longer the ones a logout ended", async () => {
    const { app, portalLogout } = setup();
    const laptop = await device(app, CUSTOMER, [{}], 'Laptop/1.0');
    const phone = await device(app, CUSTOMER, [{}], 'Phone/1.0');
    await device(app, 'cus_someone_else');
    const open = await portalLogout.openPortalSessions(CUSTOMER);
    expect(open.map((e) => [e.id, e.customerId, e.site])).toEqual([
      [laptop.ids[0], CUSTOMER, site()],
      [phone.ids[0], CUSTOMER, site()],
    ]);
    expect(open[0].rememberedAt).toBeLessThanOrEqual(open[1].rememberedAt);
    await phone.agent.post('/logout').expect(200);
    expect((await portalLogout.openPortalSessions(CUSTOMER)).map((e) => e.id)).toEqual(laptop.ids);
  });

  it('lists the portal sessions of the business entity it is given: the ones logoutCustomer would end', async () => {
    const { app, portalLogout } = setup();
    const us = await device(app, CUSTOMER, [{ businessEntityId: 'acme-us' }]);
    const plain = await device(app, CUSTOMER);
    expect((await portalLogout.openPortalSessions(CUSTOMER, { businessEntityId: 'acme-us' })).map((e) => e.id)).toEqual(
      us.ids,
    );
    expect((await portalLogout.openPortalSessions(CUSTOMER)).map((e) => e.id)).toEqual([...us.ids, ...plain.ids]);
    const outcome = await portalLogout.logoutCustomer(CUSTOMER, { businessEntityId: 'acme-us' });
    expect(outcome.portalSessions.map((o) => o.id)).toEqual(us.ids);
    expect((await portalLogout.openPortalSessions(CUSTOMER)).map((e) => e.id)).toEqual(plain.ids);
  });

  it('rejects with a TypeError without a registry, for a bad customer ID and for a bad business entity', async () => {
    const { portalLogout } = setup();
    await expect(portalLogout.openPortalSessions('cus 1')).rejects.toThrow(/^openPortalSessions: the customer ID/);
    await expect(portalLogout.openPortalSessions(CUSTOMER, { businessEntityId: 'acme us' })).rejects.toThrow(
      /^openPortalSessions: businessEntityId/,
    );
    const without = setup({ registry: false, everywhere: false });
    await expect(without.portalLogout.openPortalSessions(CUSTOMER)).rejects.toThrow(
      /^openPortalSessions: .*needs the registry/,
    );
  });

  it('rejects with a PortalSessionRegistryError naming no customer when the registry fails', async () => {
    const memory = new MemoryPortalSessionRegistry();
    const { portalLogout } = setup({
      registry: {
        add: (e) => memory.add(e),
        list: () => Promise.reject(new Error(`no list for ${CUSTOMER}`)),
        remove: () => undefined,
      },
    });
    const failure = await portalLogout.openPortalSessions(CUSTOMER).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(PortalSessionRegistryError);
    expect(String((failure as Error).message)).not.toContain(CUSTOMER);
  });
});

describe('bounds and expiry', () => {
  it("drops a customer's oldest portal sessions past the bound, logged, and ends the ones kept", async () => {
    const registry = new MemoryPortalSessionRegistry({ maxPerCustomer: 2 });
    const { app, portalLogout, logs } = setup({ registry });
    const ids = (await device(app, CUSTOMER, [{}, {}, {}])).ids;
    const warning = logs.lines.find((l) => String(l.msg).includes('the oldest portal sessions were dropped'));
    expect(warning?.chargebeePortalLogout).toMatchObject({ dropped: 1, droppedIdHashes: [expect.any(String)] });
    expect(JSON.stringify(warning)).not.toContain(CUSTOMER);
    const outcome = await portalLogout.logoutCustomer(CUSTOMER);
    expect(outcome.portalSessions.map((o) => o.id)).toEqual(ids.slice(1));
    expect(statusAt(ids[0])).toBe('logged_in');
  });

  it('forgets portal sessions after the time to live', async () => {
    const registry = new MemoryPortalSessionRegistry({ ttlMs: 300 });
    const { app, portalLogout } = setup({ registry });
    const laptop = await device(app);
    await new Promise((resolve) => setTimeout(resolve, 400));
    const outcome = await portalLogout.logoutCustomer(CUSTOMER);
    expect(outcome.result).toBe('nothing_remembered');
    expect(statusAt(laptop.ids[0])).toBe('logged_in');
  });

  it('takes a deferred portal session out of the registry once the background logout ends it', async () => {
    const { app, portalLogout, registry } = setup();
    const laptop = await device(app);
    emulator.injectFault({ status: 503, apiErrorCode: 'site_not_ready', times: 4 });
    const outcome = await portalLogout.logoutCustomer(CUSTOMER);
    expect(outcome.result).toBe('deferred');
    expect(registry.list(site(), CUSTOMER).map((e) => e.id)).toEqual(laptop.ids);
    await waitFor(() => statusAt(laptop.ids[0]) === 'logged_out', 8000, 'the deferred logout');
    await waitFor(() => registry.list(site(), CUSTOMER).length === 0, 2000, 'the registry to forget it');
  });
});

describe('an unreachable registry', () => {
  function failing(mode: 'reject' | 'hang'): PortalSessionRegistry {
    const memory = new MemoryPortalSessionRegistry();
    const fail = () =>
      mode === 'reject'
        ? Promise.reject(new Error('connect ECONNREFUSED 127.0.0.1:6379'))
        : new Promise<never>(() => {});
    return { add: (e) => memory.add(e), list: fail, remove: fail };
  }

  it.each(['reject', 'hang'] as const)(
    'registry that does %s: the app-session logout still happens, the failure is in the outcome and the log',
    async (mode) => {
      const { app, logs, handlerCalls } = setup({ registry: failing(mode) });
      const laptop = await device(app);
      const started = Date.now();
      const res = await laptop.agent.post('/logout/everywhere').expect(200);
      expect(Date.now() - started).toBeLessThan(FAST.budgetMs! + 2000);
      expect(handlerCalls()).toBe(1);
      expect(statusAt(laptop.ids[0])).toBe('logged_out');
      expect(res.body.outcome).toMatchObject({
        result: 'failed',
        reason: mode === 'reject' ? 'registry_error' : 'registry_timeout',
        error: { name: 'PortalSessionRegistryError' },
        portalSessions: [expect.objectContaining({ id: laptop.ids[0], status: 'logged_out' })],
      });
      expect(logs.text()).toContain("could not read the customer's portal sessions from the registry");
    },
  );

  it('logoutCustomer resolves with a failed outcome; remember() still remembers in the app session', async () => {
    const broken: PortalSessionRegistry = {
      add: () => {
        throw new Error('registry down');
      },
      list: () => Promise.reject(new Error('registry down')),
      remove: () => undefined,
    };
    const { app, portalLogout, logs } = setup({ registry: broken });
    const laptop = await device(app);
    expect((await laptop.agent.get('/remembered')).body.remembered).toEqual([{ id: laptop.ids[0] }]);
    expect(logs.text()).toContain('could not record the portal session in the registry');
    const outcome = await portalLogout.logoutCustomer(CUSTOMER);
    expect(outcome).toMatchObject({ result: 'failed', reason: 'registry_error', portalSessions: [] });
    expect(outcome.error?.message).toBe(
      'the portal-session registry could not list the portal sessions of a customer: Error: registry down',
    );
  });
});

describe('what a registry gives back', () => {
  it('sends only valid portal sessions of the customer asked for; the rest is ignored and logged', async () => {
    const portal = emulator.createSession({ customerId: CUSTOMER });
    emulator.openSession(portal.id);
    const junk: PortalSessionRegistry = {
      add: () => ({ dropped: [] }),
      list: () =>
        [
          { id: portal.id, customerId: CUSTOMER, site: site(), rememberedAt: 1, businessEntityId: 'acme-us' },
          { id: '../admin', customerId: CUSTOMER, site: site(), rememberedAt: 1 },
          { id: 'portal_other_customer', customerId: 'cus_other', site: site(), rememberedAt: 1 },
          { id: 'portal_other_site', customerId: CUSTOMER, site: 'ffffffffffffffff', rememberedAt: 1 },
          { id: 'portal_bad_entity', customerId: CUSTOMER, site: site(), rememberedAt: 1, businessEntityId: 'a\r\nb' },
          null,
          'portal_a_string',
        ] as never,
      remove: () => undefined,
    };
    const { portalLogout, logs } = setup({ registry: junk });
    const outcome = await portalLogout.logoutCustomer(CUSTOMER);
    expect(outcome.portalSessions.map((o) => [o.id, o.status, o.businessEntityId])).toEqual([
      [portal.id, 'logged_out', 'acme-us'],
    ]);
    expect(emulator.logoutRequests().map((r) => r.path)).toEqual([
      `/acme-test/api/v2/portal_sessions/${portal.id}/logout`,
    ]);
    const warning = logs.lines.find((l) => String(l.msg).includes('not valid portal sessions'));
    expect(warning?.chargebeePortalLogout).toEqual({ invalid: 6 });
  });

  it('ends at most the newest 1000 portal sessions of a customer a registry lists', async () => {
    const many = Array.from({ length: 1005 }, (_, i) => ({
      id: `portal_n${i}`,
      customerId: CUSTOMER,
      site: site(),
      rememberedAt: i,
    }));
    const open = new OpenPortalSessions(
      { add: () => ({ dropped: [] }), list: () => many, remove: () => undefined },
      safeLog(captureLogs().logger),
      (id) => id,
    );
    const found = await open.ofCustomer([site()], CUSTOMER, performance.now() + 1000);
    expect(found.entries).toHaveLength(1000);
    expect(found.entries[0].id).toBe('portal_n5');
  });
});

describe('setup', () => {
  it('refuses everywhere with registry: false, and a registry without its methods', () => {
    expect(() => setup({ registry: false, everywhere: true })).toThrow(
      "chargebeePortalLogout: can't pass everywhere and registry: false together",
    );
    expect(() => setup({ registry: { add: () => ({ dropped: [] }), list: () => [] } as never })).toThrow(
      'option registry must have a remove() method',
    );
    expect(() => setup({ everywhere: 'yes' as never })).toThrow('option everywhere must be a boolean or a function');
    expect(() => setup({ customerId: 'cus_1' as never })).toThrow('option customerId must be a function');
  });

  it('refuses everywhere without customerId: the customer is never read from what the user holds', () => {
    expect(() => setup({ customerId: undefined })).toThrow(
      /option everywhere needs customerId: \(req\) => the signed-in user's Chargebee customer ID/,
    );
  });
});
