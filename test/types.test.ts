// Type-level tests: `npm test` runs `tsc --noEmit` over this file, so a wrong type fails the build.
// Each @ts-expect-error line must be an error, or tsc reports the directive as unused.
import type { Request, Response } from 'express';
import {
  chargebeePortalLogout,
  MemoryDeferredLogoutStore,
  type ChargebeePortalLogoutOptions,
  type DeferredLogoutStore,
  type PortalLogoutOutcome,
  type PortalSessionStatus,
  type ChargebeePortalSessionState,
  type PortalSession,
  MemoryPortalSessionRegistry,
  type PortalSessionRegistry,
  type LogoutCustomerOptions,
  type PortalSessionExpiryOptions,
  type PortalSessionReason,
  type ScheduledLogoutReason,
} from '../src';
import { RedisPortalSessionRegistry } from '../src/redis';
import type * as Testing from '../src/testing';

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
function assertType<T extends true>(): T | undefined {
  return undefined;
}

const portalLogout = chargebeePortalLogout({ site: 'acme-test', apiKey: 'k' });

describe('public types', () => {
  it('types res.locals.chargebeePortalLogout and req.session.chargebeePortalSessions', () => {
    const check = (req: Request, _res: Response) => {
      assertType<Equal<typeof _res.locals.chargebeePortalLogout, PortalLogoutOutcome | undefined>>();
      const _remembered = req.session.chargebeePortalSessions?.[0];
      assertType<Equal<typeof _remembered, { id: string; businessEntityId?: string } | undefined>>();
    };
    expect(typeof check).toBe('function');
  });

  it('refuses wrong option types at compile time', () => {
    // @ts-expect-error apiKey is required
    expect(() => chargebeePortalLogout({ site: 'acme-test' })).toThrow(TypeError);
    // @ts-expect-error store must be a known store
    expect(() => chargebeePortalLogout({ site: 'acme-test', apiKey: 'k', store: 'redis' })).toThrow(TypeError);
    // @ts-expect-error failClosed is a boolean
    expect(() => chargebeePortalLogout({ site: 'acme-test', apiKey: 'k', failClosed: 'yes' })).toThrow(TypeError);
  });

  it('exposes remember() and clientFor() on the middleware', () => {
    assertType<
      Equal<Parameters<typeof portalLogout.remember>[3], { businessEntityId?: string; customerId?: string } | undefined>
    >();
    expect(typeof portalLogout.remember).toBe('function');
    expect(portalLogout.clientFor().baseUrl).toBe('https://acme-test.chargebee.com/api/v2');
  });

  it('types the reliability API: close(), onOutcome without a request, the deferred store', () => {
    assertType<Equal<ReturnType<typeof portalLogout.close>, Promise<void>>>();
    assertType<Equal<Parameters<typeof portalLogout.close>[0], { timeoutMs?: number } | undefined>>();
    type Hook = NonNullable<ChargebeePortalLogoutOptions['onOutcome']>;
    assertType<Equal<Parameters<Hook>[1], Request | undefined>>();
    assertType<
      Equal<
        PortalLogoutOutcome['result'],
        'nothing_remembered' | 'ended' | 'deferred' | 'failed' | 'skipped_cross_site'
      >
    >();
    const store: DeferredLogoutStore = new MemoryDeferredLogoutStore(5);
    // @ts-expect-error a store needs takeDue, remove, giveUp, pauseSite, wakeSite and size
    const _incomplete: DeferredLogoutStore = { add: () => true };
    // @ts-expect-error retry is false or an object
    expect(() => chargebeePortalLogout({ site: 'acme-test', apiKey: 'k', retry: true })).toThrow(TypeError);
    expect(typeof chargebeePortalLogout({ site: 'acme-test', apiKey: 'k', deferred: { store } })).toBe('function');
  });

  it('types expiry, the activity hook and the scheduled reasons', () => {
    assertType<Equal<typeof portalLogout.activity, import('express').RequestHandler>>();
    assertType<Equal<ScheduledLogoutReason, 'portal_max_age' | 'idle'>>();
    assertType<ScheduledLogoutReason extends PortalSessionReason ? true : false>();
    assertType<Equal<ChargebeePortalLogoutOptions['expiry'], false | PortalSessionExpiryOptions | undefined>>();
    const expiry: PortalSessionExpiryOptions = { maxAgeMs: 3_600_000, idleMs: 1_800_000 };
    // @ts-expect-error maxAgeMs is a number of milliseconds
    const _wrong: PortalSessionExpiryOptions = { maxAgeMs: '1h' };
    expect(typeof chargebeePortalLogout({ site: 'acme-test', apiKey: 'k', expiry }).activity).toBe('function');
  });

  it('types the registry, logoutCustomer() and the everywhere options', () => {
    assertType<Equal<ReturnType<typeof portalLogout.logoutCustomer>, Promise<PortalLogoutOutcome>>>();
    assertType<Equal<Parameters<typeof portalLogout.logoutCustomer>[1], LogoutCustomerOptions | undefined>>();
    const registry: PortalSessionRegistry = new MemoryPortalSessionRegistry({ maxPerCustomer: 5 });
    // @ts-expect-error a registry needs list and remove
    const _incomplete: PortalSessionRegistry = { add: () => ({ dropped: [] }) };
    // @ts-expect-error everywhere is a boolean or a function of the request
    expect(() => chargebeePortalLogout({ site: 'acme-test', apiKey: 'k', everywhere: 'always' })).toThrow(TypeError);
    const options: ChargebeePortalLogoutOptions = {
      site: 'acme-test',
      apiKey: 'k',
      registry,
      everywhere: async (req) => Promise.resolve(req.path === '/logout/everywhere'),
      customerId: (req) => req.get('x-customer'),
    };
    expect(typeof chargebeePortalLogout(options).logoutCustomer).toBe('function');
    // The Redis registry takes any client of the right shape (node-redis 5 or 6, whatever its RESP version).
    const shaped = { evalSha: async () => Promise.resolve([]), eval: async () => Promise.resolve([]) };
    const onRedis: PortalSessionRegistry = new RedisPortalSessionRegistry(shaped);
    expect(onRedis).toBeInstanceOf(RedisPortalSessionRegistry);
  });

  it('lists the portal-session statuses', () => {
    const statuses: Record<PortalSessionStatus, true> = {
      logged_out: true,
      already_logged_out: true,
      not_found: true,
      invalid_id: true,
      deferred: true,
      failed: true,
    };
    expect(Object.keys(statuses)).toHaveLength(6);
  });

  it("names Chargebee's portal-session state once, shared by the client and the emulator", () => {
    assertType<Equal<PortalSession['status'], ChargebeePortalSessionState>>();
    assertType<Equal<Testing.EmulatedPortalSession['status'], ChargebeePortalSessionState>>();
    assertType<Equal<Testing.ChargebeePortalSessionState, ChargebeePortalSessionState>>();
    assertType<Equal<Testing.EmulatedPortalSession['expires_at'], number>>();
    // @ts-expect-error the emulator does not export a second PortalSessionStatus
    type _Clash = Testing.PortalSessionStatus;
    const session: Testing.EmulatedPortalSession = {
      id: 'portal_x',
      token: 't',
      access_url: 'http://127.0.0.1/portal/acme-test/t',
      status: 'created',
      created_at: 0,
      expires_at: 3600,
      customer_id: 'c',
      linked_customers: [],
      object: 'portal_session',
    };
    const asClientSees: PortalSession = session;
    expect(asClientSees.status).toBe('created');
  });
});
