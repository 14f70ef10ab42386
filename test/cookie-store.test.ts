/**
 * The cookie store's limits: it never writes a cookie a browser would drop (over 4096 bytes) and keeps the
 * newest portal sessions when it must drop some; with several cookies of its name (one tossed in from a
 * sibling subdomain), every valid signed one counts and no other; a rotated secret still reads; a signed
 * value of another cookie cannot stand in for it. Over real HTTP against the emulator.
 */
import request from 'supertest';
import type { PortalLogoutMiddleware } from '../src';
import { signCookieValue } from '../src/remembered/cookie-signature';
import { cookiePayload, MAX_COOKIE_BYTES } from '../src/remembered/cookie-store';
import { ChargebeeEmulator } from '../src/testing';
import { createTestApp } from './helpers/apps';
import { FAST } from './helpers/harness';
import { captureLogs } from './helpers/log-capture';
import { withOptions } from './helpers/tuned';

const API_KEY = 'test_COOKIESIZEKEY_3';
const SECRET = 'cookie-size-secret';
const NAME = 'chargebee_portal_sessions';
let emulator: ChargebeeEmulator;
const open: PortalLogoutMiddleware[] = [];

beforeAll(async () => {
  emulator = await ChargebeeEmulator.start({ sites: { 'acme-test': { apiKey: API_KEY } } });
});
afterEach(async () => {
  await Promise.all(open.splice(0).map((m) => m.close({ timeoutMs: 100 })));
});
afterAll(() => emulator.close());

function app(maxRemembered = 100) {
  const logs = captureLogs();
  const built = createTestApp({
    session: false,
    middleware: {
      apiKey: API_KEY,
      baseUrl: emulator.baseUrl('acme-test'),
      ...withOptions(FAST, {
        // Fifty-odd logouts at once on a busy machine: room enough not to defer any.
        budgetMs: 5000,
        tuning: { attemptTimeoutMs: 3000, maxRemembered },
      }),
      store: 'cookie',
      cookie: { secret: SECRET, maxAge: 3_600_000, domain: 'app.example.com' },
      logger: logs.logger,
    },
  });
  open.push(built.portalLogout);
  return { ...built, logs };
}

function setCookieOf(res: request.Response): string {
  const cookies = ([] as string[]).concat(res.headers['set-cookie'] ?? []);
  const ours = cookies.filter((c) => c.startsWith(`${NAME}=`));
  expect(ours).toHaveLength(1);
  return ours[0];
}

describe('cookie size', () => {
  it('100 remembered portal sessions: the cookie stays within 4096 bytes, the oldest dropped and logged', async () => {
    const a = app();
    const ids = Array.from({ length: 100 }, () => emulator.createSession({ customerId: 'cus_size' }).id);
    const res = await request(a.app)
      .post('/remember')
      .send({ portalSessions: ids.map((id) => ({ id })) });
    expect(res.status).toBe(200);
    const cookie = setCookieOf(res);
    expect(Buffer.byteLength(cookie)).toBeLessThanOrEqual(MAX_COOKIE_BYTES);
    const dropped = a.logs.lines.filter((l) => /oldest remembered portal sessions were dropped/.test(String(l.msg)));
    expect(dropped.length).toBeGreaterThan(0);

    // The cookie logs out the newest portal sessions, the last remembered among them.
    const logout = await request(a.app).post('/logout').set('Cookie', cookie.split(';')[0]);
    const outcome = logout.body.outcome;
    expect(outcome.result).toBe('ended');
    expect(outcome.portalSessions.length).toBeGreaterThan(10);
    const sent = outcome.portalSessions.map((o: { id: string }) => o.id);
    expect(sent).toEqual(ids.slice(-sent.length));
    expect(emulator.getSession(ids[99])?.status).toBe('logged_out');
  });

  it('the worst case (70-character IDs, 100-character entities) stays within 4096 bytes too', async () => {
    const a = app();
    const entries = Array.from({ length: 100 }, (_, i) => ({
      id: `p${String(i).padStart(3, '0')}${'x'.repeat(66)}`,
      businessEntityId: `e${String(i).padStart(3, '0')}${'y'.repeat(96)}`,
    }));
    const res = await request(a.app).post('/remember').send({ portalSessions: entries });
    const cookie = setCookieOf(res);
    expect(Buffer.byteLength(cookie)).toBeLessThanOrEqual(MAX_COOKIE_BYTES);
    expect(decodeURIComponent(cookie)).toContain(entries[99].id);
  });
});

describe('several cookies of the same name', () => {
  const forged = (id: string) => encodeURIComponent(signCookieValue(cookiePayload(NAME, [id]), 'attacker-secret'));
  const valid = (id: string) => encodeURIComponent(signCookieValue(cookiePayload(NAME, [id]), SECRET));

  it.each([
    ['the forged one first', (real: string, fake: string) => `${NAME}=${forged(fake)}; ${NAME}=${valid(real)}`],
    ['the forged one last', (real: string, fake: string) => `${NAME}=${valid(real)}; ${NAME}=${forged(fake)}`],
  ])('a valid signed cookie wins over one that is not (%s)', async (_name, header) => {
    const a = app();
    const real = emulator.createSession({ customerId: 'cus_toss' }).id;
    const fake = emulator.createSession({ customerId: 'cus_toss' }).id;
    const res = await request(a.app).post('/logout').set('Cookie', header(real, fake));
    expect(res.body.outcome.result).toBe('ended');
    expect(emulator.getSession(real)?.status).toBe('logged_out');
    expect(emulator.getSession(fake)?.status).not.toBe('logged_out');
  });
});

describe('secrets and names', () => {
  const portal = () => emulator.createSession({ customerId: 'cus_rotation' }).id;
  const signed = (ids: string[], secret: string, name = NAME) =>
    encodeURIComponent(signCookieValue(cookiePayload(name, ids), secret));

  function parserApp(secrets: string[]) {
    const logs = captureLogs();
    const built = createTestApp({
      session: false,
      cookieParser: secrets,
      middleware: {
        apiKey: API_KEY,
        baseUrl: emulator.baseUrl('acme-test'),
        ...FAST,
        store: 'cookie',
        logger: logs.logger,
      },
    });
    open.push(built.portalLogout);
    return { ...built, logs };
  }

  it("reads a cookie signed with cookie-parser's old secret after rotating to [new, old]", async () => {
    const a = parserApp(['new-secret', 'old-secret']);
    const id = portal();
    const res = await request(a.app)
      .post('/logout')
      .set('Cookie', `${NAME}=${signed([id], 'old-secret')}`);
    expect(res.body.outcome.result).toBe('ended');
    expect(emulator.getSession(id)?.status).toBe('logged_out');
    // A new cookie is signed with the new secret.
    const remembered = await request(a.app)
      .post('/remember')
      .send({ portalSessions: [{ id: portal() }] });
    const value = decodeURIComponent(setCookieOf(remembered).split(';')[0].split('=')[1]);
    expect(value.startsWith('s:')).toBe(true);
    expect(signCookieValue(value.slice(2, value.lastIndexOf('.')), 'new-secret')).toBe(value);
  });

  it('logs out the portal sessions of every valid cookie of its name, and none of an invalid one', async () => {
    const a = app();
    const [one, two, forged] = [portal(), portal(), portal()];
    const header = `${NAME}=${signed([one], SECRET)}; ${NAME}=${signed([forged], 'attacker-secret')}; ${NAME}=${signed([two], SECRET)}`;
    const res = await request(a.app).post('/logout').set('Cookie', header);
    expect(res.body.outcome.result).toBe('ended');
    expect(res.body.outcome.portalSessions.map((o: { id: string }) => o.id).sort()).toEqual([one, two].sort());
    expect(emulator.getSession(one)?.status).toBe('logged_out');
    expect(emulator.getSession(two)?.status).toBe('logged_out');
    expect(emulator.getSession(forged)?.status).not.toBe('logged_out');
  });

  it("refuses another cookie's signed value put in its place: the name is signed too", async () => {
    const a = app();
    const id = portal();
    // The app signs another cookie with the same secret, whose value the user can choose.
    const res = await request(a.app)
      .post('/logout')
      .set('Cookie', `${NAME}=${signed([id], SECRET, 'prefs')}`);
    expect(res.body.outcome.result).toBe('nothing_remembered');
    expect(emulator.getSession(id)?.status).not.toBe('logged_out');
    expect(a.logs.text()).toContain("or is another cookie's");
  });
});
