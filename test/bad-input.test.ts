/**
 * Bad input, property-based (fast-check) and named cases: whatever a request or a store carries, the
 * app's handler runs exactly once, nothing throws out of the middleware, no header sent to Chargebee holds
 * CR, LF or other control characters, no request goes anywhere but `/portal_sessions/{valid id}/logout`,
 * and the logout writes a log line.
 */
import fc from 'fast-check';
import type { Request } from 'express';
import request from 'supertest';
import { ChargebeeEmulator } from '../src/testing';
import zlib from 'node:zlib';
import { chargebeePortalLogout, type ChargebeePortalLogoutOptions } from '../src';
import { signCookieValue } from '../src/remembered/cookie-signature';
import { createTestApp } from './helpers/apps';
import { captureLogs } from './helpers/log-capture';
import { rawUpstream, type RawUpstream } from './helpers/raw-upstream';
import type { TestOptions } from './helpers/tuned';
import { cookiePayload } from '../src/remembered/cookie-store';

const API_KEY = 'test_BADINPUTKEY_5';
const LOGOUT_PATH = /^\/acme-test\/api\/v2\/portal_sessions\/[A-Za-z0-9_-]{1,70}\/logout$/;
const PRINTABLE = /^[\x20-\x7e]*$/;
let emulator: ChargebeeEmulator;
const escaped: unknown[] = [];
const onEscape = (error: unknown) => escaped.push(error);
/** Inputs tried, named and generated; printed at the end for the report. */
let tried = 0;

beforeAll(async () => {
  emulator = await ChargebeeEmulator.start({ sites: { 'acme-test': { apiKey: API_KEY } } });
  process.on('unhandledRejection', onEscape);
  process.on('uncaughtException', onEscape);
});
afterAll(async () => {
  process.off('unhandledRejection', onEscape);
  process.off('uncaughtException', onEscape);
  await emulator.close();
  process.stdout.write(`bad-input suite: ${tried} inputs tried\n`);
});
afterEach(() => expect(escaped).toEqual([]));

/** What the next request carries; the `before` hook puts it on the request. */
interface Carried {
  session?: unknown;
  email?: unknown;
  userAgent?: unknown;
  entity?: unknown;
}
let carried: Carried = {};

function app(extra: Partial<TestOptions> = {}, appOptions: Partial<Parameters<typeof createTestApp>[0]> = {}) {
  const logs = captureLogs();
  const built = createTestApp({
    session: false,
    before: (req, _res, next) => {
      if ('session' in carried)
        (req as unknown as { session?: unknown }).session = { chargebeePortalSessions: carried.session };
      if ('email' in carried) (req as Request & { user?: unknown }).user = { email: carried.email };
      if ('userAgent' in carried) (req.headers as Record<string, unknown>)['user-agent'] = carried.userAgent;
      next();
    },
    ...appOptions,
    middleware: {
      apiKey: API_KEY,
      baseUrl: emulator.baseUrl('acme-test'),
      logger: logs.logger,
      budgetMs: 800,
      tuning: { attemptTimeoutMs: 500, retryBaseDelayMs: 5, retryMaxDelayMs: 10 },
      circuitBreaker: false,
      // No background retries: each check sees only the requests of its own logout.
      deferred: false,
      businessEntityId: () => carried.entity as string,
      ...extra,
    },
  });
  return { ...built, logs };
}

/** One logout with `headers`; asserts every invariant of this suite. */
async function logoutHolds(target: ReturnType<typeof app>, headers: Record<string, string> = {}): Promise<void> {
  tried += 1;
  emulator.clearRequests();
  const calls = target.handlerCalls();
  const lines = target.logs.lines.length;
  const res = await request(target.app).post('/logout').set(headers);
  expect(res.status).toBe(200);
  expect(target.handlerCalls() - calls).toBe(1);
  for (const sent of emulator.requests) {
    expect(sent.method).toBe('POST');
    expect(sent.path).toMatch(LOGOUT_PATH);
    for (const [name, value] of Object.entries(sent.headers)) {
      if (name.startsWith('chargebee-')) expect(value).toMatch(PRINTABLE);
    }
  }
  const line = target.logs.lines.slice(lines).find((l) => l.chargebeePortalLogout);
  expect(line).toBeDefined();
  expect(String(line?.msg)).toMatch(/^chargebee portal logout: /);
  expect(escaped).toEqual([]);
}

const RUNS = 60;
const tenKb = (char = 'a') => char.repeat(10 * 1024);
const hostileIds = [
  '../../customers/cus_1',
  '..',
  '.',
  'portal/../../x',
  'portal%2F..%2Fx',
  '%2e%2e%2f',
  'portal\\x',
  'portal?x=1',
  'portal#x',
  'portal x',
  'portal\r\nX-Evil: 1',
  'portal\u0000',
  'pörtal',
  '\u202eportal',
  'portal_\ud83d\ude00',
  '',
  ' ',
  tenKb(),
  tenKb('%'),
  'x'.repeat(71),
  '\u0130portal',
  'ｐｏｒｔａｌ',
  'https://evil.example/x',
  '//evil.example',
  '@evil',
  'portal;rm -rf /',
];
const idArb = fc.oneof(
  fc.constantFrom(...hostileIds),
  fc.string(),
  fc.string({ unit: 'grapheme', maxLength: 80 }),
  fc.string({ unit: 'binary', maxLength: 80 }),
  fc.stringMatching(/^[A-Za-z0-9_-]{1,70}$/),
  fc.string({ unit: fc.constantFrom('.', '/', '%', '2', 'F', 'a', '\\'), maxLength: 40 }),
  fc.anything(),
);
const entityArb = fc.oneof(
  fc.constantFrom('acme-us', 'a\r\nb', 'bad entity', tenKb(), '', 'ü', undefined),
  fc.string(),
  fc.anything(),
);

/** The app of a describe block, built once the emulator runs. */
function lazyApp(...args: Parameters<typeof app>): () => ReturnType<typeof app> {
  let built: ReturnType<typeof app> | undefined;
  return () => (built ??= app(...args));
}

describe('portal-session IDs and session values', () => {
  const target = lazyApp();

  it.each(hostileIds.map((id) => [JSON.stringify(id).slice(0, 40), id]))('named ID %s', async (_name, id) => {
    carried = { session: [id, { id, businessEntityId: 'acme-us' }] };
    await logoutHolds(target());
  });

  it('generated IDs, alone, in arrays and in { id, businessEntityId } entries', async () => {
    const entry = fc.oneof(idArb, fc.record({ id: idArb, businessEntityId: entityArb }, { requiredKeys: [] }));
    await fc.assert(
      fc.asyncProperty(fc.oneof(entry, fc.array(entry, { maxLength: 14 })), async (stored) => {
        carried = { session: stored };
        await logoutHolds(target());
      }),
      { numRuns: RUNS * 2 },
    );
  });

  it('session values of every type (wrong types, nesting, BigInt, cycles)', async () => {
    const cyclic: Record<string, unknown> = { id: 'portal_cycle' };
    cyclic.self = cyclic;
    for (const value of [
      10n,
      cyclic,
      [cyclic],
      Object.create(null),
      Symbol('s'),
      () => 'portal_fn',
      new Map([['id', 'x']]),
      new Date(),
      NaN,
      -0,
      true,
      [[['portal_deep']]],
    ]) {
      carried = { session: value };
      await logoutHolds(target());
    }
    await fc.assert(
      fc.asyncProperty(
        fc.anything({
          withBigInt: true,
          withMap: true,
          withSet: true,
          withDate: true,
          withNullPrototype: true,
          withObjectString: true,
          withBoxedValues: true,
          withSparseArray: true,
        }),
        async (value) => {
          carried = { session: value };
          await logoutHolds(target());
        },
      ),
      { numRuns: RUNS },
    );
  });

  it('a valid ID among the hostile ones is still logged out, and only it is sent', async () => {
    const portal = emulator.createSession({ customerId: 'cus_bad' });
    carried = { session: [...hostileIds, portal.id] };
    emulator.clearRequests();
    await request(target().app).post('/logout');
    tried += 1;
    const paths = emulator.requests.map((r) => r.path);
    expect(paths.filter((path) => path === `/acme-test/api/v2/portal_sessions/${portal.id}/logout`)).toHaveLength(1);
    // None of the hostile IDs is sent. On a loaded machine a request of the previous test that timed out
    // at the client (a generated valid ID, such as "undefined") may reach the emulator only now.
    for (const path of paths) expect(path).toMatch(LOGOUT_PATH);
    expect(paths.some((path) => hostileIds.some((id) => path.includes(`/portal_sessions/${id}/`)))).toBe(false);
    expect(emulator.getSession(portal.id)?.status).toBe('logged_out');
  });
});

describe('cookie values', () => {
  const ours = (list: unknown) => cookiePayload('chargebee_portal_sessions', list);
  const target = lazyApp({ store: 'cookie', cookie: { secret: 'cookie-secret' } });
  const unsigned = lazyApp({ store: 'cookie', cookie: { signed: false } });
  const cookieChar = fc.constantFrom(...'abcXYZ019:{}[]",._-%=sj\\ !#$&\'()*+/<>?@^`|~'.split(''));

  it.each<[string, string]>([
    ['malformed JSON', `s:${'j:[not json'}`],
    [
      'tampered signature',
      encodeURIComponent(signCookieValue(ours(['portal_victim']), 'cookie-secret').slice(0, -2) + 'xx'),
    ],
    ['signed by another secret', encodeURIComponent(signCookieValue(ours(['portal_victim']), 'attacker'))],
    ['unsigned with a secret set', encodeURIComponent(ours(['portal_victim']))],
    ['wrong type inside', encodeURIComponent(signCookieValue(ours({ id: { $gt: '' } }), 'cookie-secret'))],
    ['the old format, a bare list', encodeURIComponent(signCookieValue('j:["portal_victim"]', 'cookie-secret'))],
    [
      "another cookie's signed value",
      encodeURIComponent(signCookieValue(cookiePayload('prefs', ['portal_victim']), 'cookie-secret')),
    ],
    [
      'a traversal ID inside a valid signature',
      encodeURIComponent(signCookieValue(ours(['../../x', 'portal%2F']), 'cookie-secret')),
    ],
    ['huge (8 KB)', encodeURIComponent(signCookieValue(ours(['x'.repeat(8000)]), 'cookie-secret'))],
    ['bad percent-encoding', '%E0%A4%A'],
    ['empty', ''],
    ['quoted', '"j:[]"'],
  ])('named cookie: %s', async (_name, value) => {
    carried = {};
    await logoutHolds(target(), { Cookie: `chargebee_portal_sessions=${value}` });
  });

  it('generated cookie values, signed store and unsigned store', async () => {
    await fc.assert(
      fc.asyncProperty(fc.string({ unit: cookieChar, maxLength: 300 }), fc.boolean(), async (raw, prefixed) => {
        carried = {};
        const value = prefixed ? `j:${raw}` : raw;
        await logoutHolds(target(), { Cookie: `chargebee_portal_sessions=${value}` });
        await logoutHolds(unsigned(), { Cookie: `chargebee_portal_sessions=${encodeURIComponent(value)}` });
      }),
      { numRuns: RUNS },
    );
  });

  it('generated JSON inside a correctly signed cookie', async () => {
    await fc.assert(
      fc.asyncProperty(fc.jsonValue(), async (json) => {
        carried = {};
        const signed = signCookieValue(ours(json), 'cookie-secret');
        await logoutHolds(target(), { Cookie: `chargebee_portal_sessions=${encodeURIComponent(signed)}` });
      }),
      { numRuns: RUNS },
    );
  });
});

describe('origin values: emails, user agents, IPs, entities', () => {
  const target = lazyApp({}, { trustProxy: true });
  let portalId = '';
  beforeEach(() => {
    portalId = emulator.createSession({ customerId: 'cus_origin' }).id;
  });

  const emails = [
    'zoë@exämple.com',
    'a@b.c\r\nBcc: x@evil',
    '"quoted name"@example.com',
    "o'brien@example.com",
    `${tenKb()}@example.com`,
    'x\u0000@y.z',
    '\t@\t',
    '',
    ' ',
    'ünïcödé',
    '\u2028@x.y',
    42,
    null,
    { toString: () => 'x' },
  ];
  it.each(emails.map((e) => [JSON.stringify(e)?.slice(0, 40), e]))('named email %s', async (_name, email) => {
    carried = { session: [portalId], email };
    await logoutHolds(target());
  });

  it('generated emails', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.emailAddress(),
          fc.string(),
          fc.string({ unit: 'binary' }),
          fc.string({ unit: 'grapheme' }),
          fc.anything(),
        ),
        async (email) => {
          carried = { session: [portalId], email };
          await logoutHolds(target());
        },
      ),
      { numRuns: RUNS },
    );
  });

  const agents = [
    `Mozilla\u0000\u0007\u001b[31m${'A'.repeat(100)}`,
    'a\r\nX-Evil: 1',
    tenKb('U'),
    '\u00ff\u00fe',
    '',
    ['ua1', 'ua2'],
    42,
  ];
  it.each(agents.map((a) => [JSON.stringify(a).slice(0, 40), a]))('named user agent %s', async (_name, userAgent) => {
    carried = { session: [portalId], userAgent };
    await logoutHolds(target());
  });

  it('generated user agents, as sent by a client and as set on the request', async () => {
    const headerSafe = fc.string({
      unit: fc
        .integer({ min: 0x20, max: 0xff })
        .filter((c) => c !== 0x7f)
        .map((c) => String.fromCharCode(c)),
      maxLength: 300,
    });
    await fc.assert(
      fc.asyncProperty(
        headerSafe,
        fc.oneof(fc.string({ unit: 'binary' }), fc.string({ minLength: 9000, maxLength: 11000 })),
        async (sent, set) => {
          carried = { session: [portalId] };
          await logoutHolds(target(), { 'User-Agent': sent });
          carried = { session: [portalId], userAgent: set };
          await logoutHolds(target());
        },
      ),
      { numRuns: RUNS },
    );
  });

  const ips = [
    '2001:db8::42',
    '::ffff:203.0.113.50',
    '::1',
    'fe80::1%eth0',
    '999.1.1.1',
    '1.2.3.4, 5.6.7.8',
    'evil-host',
    '',
    '[::1]',
    '::ffff:999.1.1.1',
    tenKb('1'),
  ];
  it.each(ips.map((ip) => [ip.slice(0, 40), ip]))('named forwarded IP %s', async (_name, ip) => {
    carried = { session: [portalId] };
    await logoutHolds(target(), { 'X-Forwarded-For': ip });
  });

  it('generated IPs (v4, v6, mapped, garbage) and a missing one', async () => {
    const ipArb = fc.oneof(
      fc.ipV4(),
      fc.ipV6(),
      fc.ipV4().map((ip) => `::ffff:${ip}`),
      fc.string({ unit: fc.constantFrom(...'0123456789abcdef:.%[], '.split('')), maxLength: 50 }),
    );
    await fc.assert(
      fc.asyncProperty(fc.option(ipArb), async (ip) => {
        carried = { session: [portalId] };
        await logoutHolds(target(), ip === null ? {} : { 'X-Forwarded-For': ip });
        if (ip !== null && /^[0-9.]+$/.test(ip) && emulator.requests.length > 0) {
          const sent = emulator.requests[0].headers['chargebee-request-origin-ip'];
          expect(sent === undefined || sent === ip).toBe(true);
        }
      }),
      { numRuns: RUNS },
    );
  });

  it('generated entity IDs, remembered and from the resolver', async () => {
    await fc.assert(
      fc.asyncProperty(entityArb, entityArb, async (remembered, resolved) => {
        carried = { session: [{ id: portalId, businessEntityId: remembered }], entity: resolved };
        await logoutHolds(target());
        for (const sent of emulator.requests) {
          const entity = sent.headers['chargebee-business-entity-id'];
          if (entity !== undefined) expect(entity).toMatch(/^[A-Za-z0-9_-]{1,100}$/);
        }
      }),
      { numRuns: RUNS },
    );
  });
});

describe('upstream answers: generated statuses, bodies and headers', () => {
  const ID = 'portal_GeneratedAnswer01';
  const EMAIL = 'Generated.Person@example.com';
  const basic = Buffer.from(`${API_KEY}:`).toString('base64');
  const secrets = [API_KEY, basic, ID, EMAIL, encodeURIComponent(EMAIL), Buffer.from(EMAIL).toString('base64')];
  let upstream: RawUpstream;
  let target: ReturnType<typeof app>;
  beforeAll(async () => {
    upstream = await rawUpstream(() => undefined);
    target = app(
      {
        baseUrl: upstream.baseUrl,
        budgetMs: 600,
        retry: { maxAttempts: 2 },
        tuning: { attemptTimeoutMs: 400, retryBaseDelayMs: 1, retryMaxDelayMs: 2 },
        originHeaders: { email: () => EMAIL },
      },
      {},
    );
  });
  afterAll(async () => {
    await target.portalLogout.close({ timeoutMs: 100 });
    await upstream.close();
  });

  const headerText = fc.string({
    unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)),
    maxLength: 60,
  });
  /** Strings that may quote a secret, in another casing or encoding. */
  const echoing = fc
    .tuple(fc.string({ maxLength: 20 }), fc.constantFrom(...secrets), fc.constantFrom('', 'upper', 'lower'))
    .map(([text, secret, casing]) =>
      casing === 'upper'
        ? `${text}${secret.toUpperCase()}`
        : casing === 'lower'
          ? `${secret.toLowerCase()}${text}`
          : `${text} ${secret}`,
    );
  const field = fc.oneof(fc.jsonValue(), echoing, fc.string({ minLength: 2000, maxLength: 5000 }));
  const bodyArb = fc.oneof(
    fc.jsonValue().map((v) => JSON.stringify(v)),
    fc.string({ maxLength: 300 }),
    fc.string({ unit: 'binary', maxLength: 300 }),
    fc
      .record(
        { message: field, api_error_code: field, type: field, param: field, error_msg: field, http_status_code: field },
        { requiredKeys: [] },
      )
      .map((v) => JSON.stringify(v)),
    fc
      .record(
        {
          id: fc.oneof(fc.constant(ID), fc.jsonValue()),
          status: fc.oneof(fc.constantFrom('logged_out', 'logged_in', 'created'), field),
          logout_at: fc.oneof(fc.integer(), fc.jsonValue()),
        },
        { requiredKeys: [] },
      )
      .map((session) => JSON.stringify({ portal_session: session })),
  );
  const answerArb = fc.record({
    status: fc.oneof(
      fc.constantFrom(200, 201, 204, 301, 304, 400, 401, 403, 404, 409, 422, 429, 500, 502, 503, 504),
      fc.integer({ min: 200, max: 599 }),
    ),
    body: bodyArb,
    retryAfter: fc.option(
      fc.oneof(
        headerText,
        fc.stringMatching(/^[0-9]{1,400}$/),
        fc.date({ noInvalidDate: true }).map((d) => d.toUTCString()),
      ),
    ),
    contentType: fc.option(fc.oneof(fc.constantFrom('application/json', 'text/html; charset=utf-8'), headerText)),
    encoding: fc.option(fc.constantFrom('gzip', 'deflate', 'br', 'identity', 'x-unknown', 'gzip, br')),
    compress: fc.boolean(),
  });

  it('whatever Chargebee answers: bounded time and log lines, no secret logged, the handler runs once', async () => {
    await fc.assert(
      fc.asyncProperty(answerArb, async (answer) => {
        upstream.answer = (_req, res) => {
          const headers: Record<string, string> = {};
          if (answer.retryAfter !== null) headers['Retry-After'] = answer.retryAfter;
          if (answer.contentType !== null) headers['Content-Type'] = answer.contentType;
          if (answer.encoding !== null) headers['Content-Encoding'] = answer.encoding;
          const body = Buffer.from(answer.body);
          res.writeHead(answer.status, headers);
          res.end(answer.compress && answer.encoding === 'gzip' ? zlib.gzipSync(body) : body);
        };
        carried = { session: [ID] };
        const lines = target.logs.lines.length;
        const started = performance.now();
        await logoutHolds(target);
        expect(performance.now() - started).toBeLessThan(600 + 1000);
        const text = target.logs.text().split('\n').slice(lines).join('\n');
        for (const line of text.split('\n')) expect(line.length).toBeLessThan(8192);
        const lower = text.toLowerCase();
        for (const secret of secrets) expect(lower).not.toContain(secret.toLowerCase());
      }),
      { numRuns: RUNS * 2 },
    );
  });
});

describe('bad options', () => {
  const optionArb = fc.dictionary(
    fc.constantFrom(
      'site',
      'apiKey',
      'baseUrl',
      'timeoutMs', // removed: refused with a message that says what replaces it
      'budgetMs',
      'retry',
      'deferred',
      'circuitBreaker',
      'skipCrossSiteGet',
      'failClosed',
      'store',
      'cookie',
      'registry',
      'everywhere',
      'customerId',
      'expiry',
      'telemetry',
      'businessEntityId',
      'businessEntities',
      'originHeaders',
      'suppressEvents',
      'onOutcome',
      'logger',
      'unknownOption',
    ),
    fc.oneof(
      fc.anything(),
      fc.record(
        {
          maxAttempts: fc.anything(),
          maxAgeMs: fc.anything(),
          idleMs: fc.anything(),
          ratePerMinute: fc.anything(),
          store: fc.anything(),
          failureThreshold: fc.anything(),
        },
        { requiredKeys: [] },
      ),
    ),
    { maxKeys: 6 },
  );

  it('every option set either builds a middleware or throws a TypeError that names an option', () => {
    fc.assert(
      fc.property(optionArb, fc.boolean(), (options, withRequired) => {
        tried += 1;
        const full = withRequired ? { site: 'acme-test', apiKey: 'test_k', ...options } : options;
        try {
          const middleware = chargebeePortalLogout(full as unknown as ChargebeePortalLogoutOptions);
          expect(typeof middleware).toBe('function');
        } catch (error) {
          expect(error).toBeInstanceOf(TypeError);
          expect((error as Error).message).toMatch(/^chargebeePortalLogout: .*option/);
        }
      }),
      { numRuns: 300 },
    );
  });
});
