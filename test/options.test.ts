import { chargebeePortalLogout, type ChargebeePortalLogoutOptions } from '../src';

const valid = { site: 'acme-test', apiKey: 'test_key' };

/** A deferred-logout store of the app's own, without the methods scheduled logouts need. */
const customStore = () => ({
  add: () => true,
  takeDue: () => ({ jobs: [] }),
  remove() {},
  giveUp() {},
  pauseSite() {},
  wakeSite: () => 0,
  size: () => 0,
});

function setupError(options: unknown): TypeError {
  try {
    chargebeePortalLogout(options as ChargebeePortalLogoutOptions);
  } catch (error) {
    expect(error).toBeInstanceOf(TypeError);
    return error as TypeError;
  }
  throw new Error('expected chargebeePortalLogout to throw');
}

describe('options validated at setup', () => {
  it('accepts the minimal options', () => {
    expect(typeof chargebeePortalLogout(valid)).toBe('function');
  });

  it.each<[string, unknown, RegExp]>([
    ['no options', undefined, /options must be an object/],
    ['a missing apiKey', { site: 'acme' }, /option apiKey is required/],
    ['an empty apiKey', { site: 'acme', apiKey: '' }, /option apiKey is required/],
    ['an apiKey with a newline', { site: 'acme', apiKey: 'k\ney' }, /option apiKey must be/],
    ['a missing site and baseUrl', { apiKey: 'k' }, /option site \(or baseUrl\) is required/],
    ['a malformed site name', { site: 'acme.evil.com/x', apiKey: 'k' }, /option site must be a Chargebee site name/],
    ['a site that is not a string', { site: 42, apiKey: 'k' }, /option site must be a string/],
    [
      'a baseUrl that is not a URL',
      { baseUrl: 'not a url', apiKey: 'k' },
      /option baseUrl must be an absolute http\(s\) URL/,
    ],
    [
      'a baseUrl with another scheme',
      { baseUrl: 'ftp://x/api/v2', apiKey: 'k' },
      /option baseUrl must use http or https/,
    ],
    ['a baseUrl with credentials', { baseUrl: 'https://u:p@x.test/api/v2', apiKey: 'k' }, /must not hold credentials/],
    ['an unknown option', { ...valid, failOpen: true }, /unknown option failOpen/],
    ['a store name that does not exist', { ...valid, store: 'redis' }, /option store must be "session", "cookie"/],
    ['a store without read', { ...valid, store: { write() {} } }, /option store must be/],
    [
      'cookie settings with the session store',
      { ...valid, cookie: { name: 'x' } },
      /option cookie is given but store is "session"/,
    ],
    [
      'an unknown cookie option',
      { ...valid, store: 'cookie', cookie: { sameSite: 'none' } },
      /unknown option cookie.sameSite/,
    ],
    [
      'a bad cookie name',
      { ...valid, store: 'cookie', cookie: { name: 'a b' } },
      /option cookie.name must be a valid cookie name/,
    ],
    ['an empty cookie secret', { ...valid, store: 'cookie', cookie: { secret: '' } }, /option cookie.secret must be/],
    [
      'a cookie domain with ;',
      { ...valid, store: 'cookie', cookie: { domain: 'a.com; x' } },
      /option cookie.domain must be/,
    ],
    ['an invalid default entity', { ...valid, businessEntityId: 'a\r\nb' }, /option businessEntityId must be letters/],
    [
      'an entity option of the wrong type',
      { ...valid, businessEntityId: 5 },
      /option businessEntityId must be a string or a function/,
    ],
    [
      'an invalid entity key',
      { ...valid, businessEntities: { 'a b': { apiKey: 'x' } } },
      /option businessEntities has an invalid entity ID/,
    ],
    [
      'an unknown entity override',
      { ...valid, businessEntities: { eu: { region: 'eu' } } },
      /unknown option businessEntities.eu.region/,
    ],
    [
      'a malformed entity site',
      { ...valid, businessEntities: { eu: { site: 'bad site' } } },
      /option businessEntities.eu.site must be a Chargebee site name/,
    ],
    [
      'an origin header rule that is not a function',
      { ...valid, originHeaders: { ip: '1.2.3.4' } },
      /option originHeaders.ip must be a function/,
    ],
    [
      'an unknown origin header rule',
      { ...valid, originHeaders: { country: () => 'x' } },
      /unknown option originHeaders.country/,
    ],
    [
      'a suppression flag that is not boolean',
      { ...valid, suppressEvents: { webhooks: 'yes' } },
      /option suppressEvents.webhooks must be a boolean/,
    ],
    ['an unknown suppression kind', { ...valid, suppressEvents: { sms: true } }, /unknown option suppressEvents.sms/],
    ['failClosed that is not boolean', { ...valid, failClosed: 'true' }, /option failClosed must be a boolean/],
    ['a logger that is not pino', { ...valid, logger: console }, /option logger must be a pino logger/],
    ['onOutcome that is not a function', { ...valid, onOutcome: 'log' }, /option onOutcome must be a function/],
    ['a zero budget', { ...valid, budgetMs: 0 }, /option budgetMs must be a positive number/],
    ['a budget that is not a number', { ...valid, budgetMs: '3000' }, /option budgetMs must be a positive number/],
    ['retry: true', { ...valid, retry: true }, /option retry must be false or an object/],
    ['an unknown retry option', { ...valid, retry: { jitter: 'full' } }, /unknown option retry.jitter/],
    [
      'retry.maxAttempts of 0',
      { ...valid, retry: { maxAttempts: 0 } },
      /option retry.maxAttempts must be a whole number from 1 to 20/,
    ],
    [
      'retry.maxAttempts not whole',
      { ...valid, retry: { maxAttempts: 2.5 } },
      /option retry.maxAttempts must be a whole number/,
    ],
    ['deferred that is a string', { ...valid, deferred: 'memory' }, /option deferred must be false or an object/],
    ['an unknown deferred option', { ...valid, deferred: { redis: 'x' } }, /unknown option deferred.redis/],
    [
      'a deferred store without its methods',
      { ...valid, deferred: { store: { add() {} } } },
      /option deferred.store must have a takeDue\(\) method/,
    ],
    [
      'a deferred store that is not an object',
      { ...valid, deferred: { store: 'redis' } },
      /option deferred.store must/,
    ],
    [
      'a zero deferred.maxAgeMs',
      { ...valid, deferred: { maxAgeMs: 0 } },
      /option deferred.maxAgeMs must be a number of milliseconds from 1 to/,
    ],
    [
      'a deferred.ratePerMinute of 0',
      { ...valid, deferred: { ratePerMinute: 0 } },
      /option deferred.ratePerMinute must be a positive number of requests per minute, or false/,
    ],
    [
      'failClosed with a deferred queue',
      { ...valid, failClosed: true, deferred: {} },
      /can't pass failClosed: true and deferred together/,
    ],
    ['circuitBreaker: true', { ...valid, circuitBreaker: true }, /option circuitBreaker must be false or an object/],
    [
      'an unknown circuitBreaker option',
      { ...valid, circuitBreaker: { halfOpenAfter: 1 } },
      /unknown option circuitBreaker.halfOpenAfter/,
    ],
    [
      'circuitBreaker.failureThreshold of 0',
      { ...valid, circuitBreaker: { failureThreshold: 0 } },
      /option circuitBreaker.failureThreshold must be a whole number/,
    ],
    [
      'a zero circuitBreaker.coolOffMs',
      { ...valid, circuitBreaker: { coolOffMs: 0 } },
      /option circuitBreaker.coolOffMs must be a positive number/,
    ],
    [
      'skipCrossSiteGet that is not boolean',
      { ...valid, skipCrossSiteGet: 'no' },
      /option skipCrossSiteGet must be a boolean/,
    ],
    ['expiry: true', { ...valid, expiry: true }, /option expiry must be false or an object/],
    [
      'an unknown expiry option',
      { ...valid, expiry: { maxAge: 3_600_000 } },
      /unknown option expiry.maxAge \(did you mean expiry.maxAgeMs\?/,
    ],
    ['expiry with neither time', { ...valid, expiry: {} }, /option expiry needs maxAgeMs, idleMs or both/],
    [
      'an expiry.maxAgeMs under a second',
      { ...valid, expiry: { maxAgeMs: 500 } },
      /option expiry.maxAgeMs must be a number of milliseconds from 1000/,
    ],
    [
      'an expiry.idleMs that is not a number',
      { ...valid, expiry: { idleMs: '30m' } },
      /option expiry.idleMs must be a number of milliseconds/,
    ],
    [
      'expiry with deferred: false',
      { ...valid, deferred: false, expiry: { maxAgeMs: 3_600_000 } },
      /can't pass expiry with deferred: false or failClosed: true/,
    ],
    [
      'expiry with failClosed',
      { ...valid, failClosed: true, expiry: { maxAgeMs: 3_600_000 } },
      /can't pass expiry with deferred: false or failClosed: true/,
    ],
    [
      'expiry with a deferred store that cannot schedule',
      {
        ...valid,
        deferred: { store: customStore() },
        expiry: { idleMs: 60_000 },
      },
      /option expiry needs a deferred.store with schedule\(\), postpone\(\), cancel\(\)/,
    ],
  ])('refuses %s with a TypeError naming it', (_name, options, message) => {
    expect(setupError(options).message).toMatch(message);
  });

  it.each<[string, Record<string, unknown>]>([
    [
      'the reliability options',
      {
        budgetMs: 500,
        retry: { maxAttempts: 2 },
        deferred: { maxAgeMs: 1000, ratePerMinute: 60 },
        circuitBreaker: { failureThreshold: 1, coolOffMs: 10 },
        skipCrossSiteGet: false,
      },
    ],
    ['everything turned off', { retry: false, deferred: false, circuitBreaker: false }],
    ['failClosed without deferred', { failClosed: true }],
    ['failClosed with deferred: false', { failClosed: true, deferred: false }],
    ['a custom deferred store', { deferred: { store: customStore() } }],
    ['a drain rate turned off', { deferred: { ratePerMinute: false } }],
    ['expiry: false', { expiry: false }],
    ['a maximum portal-session age', { expiry: { maxAgeMs: 3_600_000 } }],
    ['idle expiry', { expiry: { idleMs: 1_800_000 } }],
    ['a registry turned on', { registry: true }],
  ])('accepts %s', (_name, extra) => {
    expect(typeof chargebeePortalLogout({ ...valid, ...extra })).toBe('function');
  });

  it('never puts the API key in a setup error', () => {
    const error = setupError({ site: 'bad site', apiKey: 'live_SECRETKEY123' });
    expect(error.message).not.toContain('live_SECRETKEY123');
  });

  it.each<[string, Record<string, unknown>, string]>([
    ['timeoutMs', { timeoutMs: 1000 }, 'budgetMs bounds every call'],
    ['maxSockets', { maxSockets: 10 }, 'each Chargebee client opens at most 50 sockets'],
    ['sessionKey', { sessionKey: 'billing' }, 'the session store keeps req.session.chargebeePortalSessions'],
    ['maxRemembered', { maxRemembered: 3 }, 'at most 10 portal sessions are remembered per app session'],
    ['retry.baseDelayMs', { retry: { baseDelayMs: 10 } }, 'the backoff is fixed within budgetMs'],
    ['deferred.concurrency', { deferred: { concurrency: 2 } }, 'it follows deferred.ratePerMinute'],
    [
      'deferred.maxQueued',
      { deferred: { maxQueued: 5 } },
      'pass deferred.store: new MemoryDeferredLogoutStore(maxQueued)',
    ],
    [
      'expiry.activityIntervalMs',
      { expiry: { idleMs: 60_000, activityIntervalMs: 1000 } },
      'activity writes at most once per tenth of idleMs',
    ],
  ])('refuses the removed option %s, saying what replaces it', (name, extra, why) => {
    expect(setupError({ ...valid, ...extra }).message).toBe(
      `chargebeePortalLogout: option ${name} was removed: ${why}`,
    );
  });

  it('rounds fractional durations to whole milliseconds once, at setup', () => {
    expect(typeof chargebeePortalLogout({ ...valid, budgetMs: 2500.5, expiry: { maxAgeMs: 2500.5 } })).toBe('function');
  });
});
