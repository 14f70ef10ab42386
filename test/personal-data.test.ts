/**
 * What the app's own code says in its errors (a function, a store, a registry) may hold emails and
 * customer IDs: no log line and no outcome carries them. A customer ID in a log line is a tag keyed by the
 * deployment, which a dictionary of plain hashes cannot give back.
 */
import { createHash } from 'node:crypto';
import request from 'supertest';
import { MemoryPortalSessionRegistry, type PortalSessionRegistry } from '../src';
import { ChargebeeEmulator } from '../src/testing';
import { createEverywhereApp } from './helpers/everywhere-app';
import { FAST } from './helpers/harness';
import { captureLogs } from './helpers/log-capture';

const API_KEY = 'test_PERSONALDATA_KEY_9';
const CUSTOMER = 'cus_RECOGNISABLE_42';
const EMAIL = 'jane.recognisable@example.com';
let emulator: ChargebeeEmulator;
const closing: Array<{ close: (o?: { timeoutMs?: number }) => Promise<void> }> = [];

beforeAll(async () => {
  emulator = await ChargebeeEmulator.start({
    sites: { 'acme-test': { apiKey: API_KEY }, 'acme-other': { apiKey: 'test_OTHER_DEPLOYMENT_KEY' } },
  });
});
afterEach(async () => {
  await Promise.all(closing.splice(0).map((m) => m.close({ timeoutMs: 200 })));
});
afterAll(() => emulator.close());

function setup(registry: PortalSessionRegistry, extra: Record<string, unknown> = {}) {
  const logs = captureLogs();
  const made = createEverywhereApp({
    apiKey: API_KEY,
    baseUrl: emulator.baseUrl('acme-test'),
    logger: logs.logger,
    ...FAST,
    registry,
    ...extra,
  });
  closing.push(made.portalLogout);
  return { ...made, logs };
}

const failingRegistry = (): PortalSessionRegistry => ({
  add: () => {
    throw new Error(`cannot record ${CUSTOMER} of ${EMAIL}`);
  },
  list: () => Promise.reject(new Error(`lookup of ${CUSTOMER} for ${EMAIL} failed`)),
  remove: () => Promise.reject(new Error(`cannot forget for ${EMAIL}`)),
});

describe("personal data in the messages of the app's code", () => {
  it('a failing registry: neither the log nor the outcome holds the email or the customer ID', async () => {
    const { app, portalLogout, logs } = setup(failingRegistry());
    const agent = request.agent(app);
    await agent.post('/login').send({ email: EMAIL, customerId: CUSTOMER }).expect(200);
    await agent.post('/portal').send({}).expect(200);
    const outcome = await portalLogout.logoutCustomer(CUSTOMER);
    expect(outcome.reason).toBe('registry_error');
    expect(outcome.error?.message).toContain('lookup of');
    const texts = [logs.text(), outcome.error?.message ?? ''];
    for (const text of texts) {
      expect(text).not.toContain(CUSTOMER);
      expect(text).not.toContain(EMAIL);
    }
  });

  it("an app's function that throws with an email: its message is logged without it", async () => {
    const { app, logs } = setup(new MemoryPortalSessionRegistry(), {
      customerId: () => {
        throw new Error(`no Chargebee customer for ${EMAIL}`);
      },
    });
    const agent = request.agent(app);
    await agent.post('/login').send({ email: EMAIL, customerId: CUSTOMER }).expect(200);
    await agent.post('/logout/everywhere').expect(200);
    expect(logs.text()).toContain('no Chargebee customer for');
    expect(logs.text()).not.toContain(EMAIL);
  });

  it('tags a customer ID with a key of the deployment: another API key gives another tag, and no plain hash', async () => {
    const tagOf = async (apiKey: string, site: string) => {
      const { portalLogout, logs } = setup(failingRegistry(), { apiKey, baseUrl: emulator.baseUrl(site) });
      await portalLogout.logoutCustomer(CUSTOMER);
      const line = logs.lines.find((l) => String(l.msg).includes("could not read the customer's portal sessions"));
      return (line?.chargebeePortalLogout as { customerHash?: string } | undefined)?.customerHash;
    };
    const here = await tagOf(API_KEY, 'acme-test');
    const there = await tagOf('test_OTHER_DEPLOYMENT_KEY', 'acme-other');
    expect(here).toMatch(/^[0-9a-f]{16}$/);
    expect(there).toMatch(/^[0-9a-f]{16}$/);
    expect(here).not.toBe(there);
    const plain = createHash('sha256').update(`customer:${CUSTOMER}`).digest('hex');
    expect(plain.startsWith(here!.slice(0, 12))).toBe(false);
  });
});
