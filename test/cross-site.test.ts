/**
 * Cross-site logout. Decision: a GET or HEAD that the browser marks `Sec-Fetch-Site: cross-site` (a link,
 * an image or a redirect from another site) makes no Chargebee call, since a forged link must not make the
 * app call Chargebee for the victim. The app's own logout still runs (next()), the outcome says
 * `skipped_cross_site`, a warning is logged, and the remembered portal sessions are left alone.
 */
import request from 'supertest';
import { ChargebeeEmulator } from '../src/testing';
import type { ChargebeePortalLogoutOptions } from '../src';
import { isCrossSiteSafeRequest } from '../src/middleware/cross-site';
import { FAST, harness } from './helpers/harness';

const API_KEY = 'test_CROSSSITEKEY_2';
let emulator: ChargebeeEmulator;

beforeAll(async () => {
  emulator = await ChargebeeEmulator.start({ sites: { 'acme-test': { apiKey: API_KEY } } });
});
afterEach(() => emulator.clearRequests());
afterAll(() => emulator.close());

function setup(extra: Partial<ChargebeePortalLogoutOptions> = {}) {
  const h = harness({ apiKey: API_KEY, baseUrl: emulator.baseUrl('acme-test'), ...FAST, ...extra });
  const portal = emulator.createSession({ customerId: 'cus_x' });
  h.remember([portal.id]);
  return { ...h, id: portal.id };
}

describe('isCrossSiteSafeRequest', () => {
  it.each<[string, string | undefined, boolean]>([
    ['GET', 'cross-site', true],
    ['HEAD', 'cross-site', true],
    ['GET', 'Cross-Site', true],
    ['POST', 'cross-site', false],
    ['GET', 'same-origin', false],
    ['GET', 'same-site', false],
    ['GET', 'none', false],
    ['GET', undefined, false],
  ])('%s with Sec-Fetch-Site %s gives %s', (method, site, expected) => {
    expect(isCrossSiteSafeRequest({ method, headers: site === undefined ? {} : { 'sec-fetch-site': site } })).toBe(
      expected,
    );
  });
});

describe('cross-site logout', () => {
  it.each(['get', 'head'] as const)(
    'a cross-site %s makes no Chargebee call, runs the handler once, and logs a warning',
    async (method) => {
      const h = setup();
      const res = await request(h.app)[method]('/logout').set('Sec-Fetch-Site', 'cross-site');
      expect(res.status).toBe(200);
      expect(h.handlerCalls()).toBe(1);
      expect(emulator.requests).toHaveLength(0);
      expect(emulator.getSession(h.id)?.status).toBe('created');
      if (method === 'get')
        expect(res.body.outcome).toEqual({ result: 'skipped_cross_site', portalSessions: [], durationMs: 0 });
      const line = h.logs.lines.find((l) => l.chargebeePortalLogout);
      expect(line).toMatchObject({ level: 40, msg: expect.stringMatching(/skipped_cross_site.*log out with POST/) });
      expect(h.remembered()).toEqual([h.id]);
    },
  );

  it('a cross-site POST is logged out: POST logout is protected by the app (CSRF token, SameSite cookies)', async () => {
    const h = setup();
    const { outcome } = await h.logout({ 'Sec-Fetch-Site': 'cross-site' });
    expect(outcome.result).toBe('ended');
    expect(emulator.getSession(h.id)?.status).toBe('logged_out');
  });

  it.each(['same-origin', 'same-site', 'none'])('a GET with Sec-Fetch-Site %s is logged out', async (site) => {
    const h = setup();
    const { outcome } = await h.logout({ 'Sec-Fetch-Site': site }, 'get');
    expect(outcome.result).toBe('ended');
  });

  it('a GET without Sec-Fetch-Site (older browsers, scripts) is logged out', async () => {
    const h = setup();
    expect((await h.logout({}, 'get')).outcome.result).toBe('ended');
  });

  it('skipCrossSiteGet: false logs out a cross-site GET too', async () => {
    const h = setup({ skipCrossSiteGet: false });
    const { outcome } = await h.logout({ 'Sec-Fetch-Site': 'cross-site' }, 'get');
    expect(outcome.result).toBe('ended');
    expect(emulator.getSession(h.id)?.status).toBe('logged_out');
  });
});
