import { OptionCheck } from '../base/validate';

/**
 * The registry of open portal sessions by Chargebee customer. Chargebee has no endpoint that lists a
 * customer's portal sessions, so the app keeps track of them itself: `remember()` records each one here,
 * under its customer and business entity, and `logoutCustomer()` (or a sign-out everywhere) reads them
 * back to end them all, whichever app session or instance opened them.
 */

/** A portal session as the registry keeps it. */
export interface RegisteredPortalSession {
  /** The portal-session ID. A bearer reference to the customer's portal: never log it. */
  id: string;
  /** The Chargebee customer the portal session is for. */
  customerId: string;
  /**
   * The Chargebee site of the customer and the portal session, as a short hash of its base URL (see
   * `siteKey`): business entities may point at different sites, whose customer IDs may collide.
   */
  site: string;
  /** The business entity its logout is sent for, when the site has several. */
  businessEntityId?: string;
  /** When it was remembered, in milliseconds since the epoch. */
  rememberedAt: number;
}

/** What recording a portal session cost: older ones dropped to keep the bounds (logged by the middleware). */
export interface RegistryAddResult {
  /** IDs of the portal sessions no longer kept, oldest first: past the per-customer or the total bound. */
  dropped: string[];
}

/**
 * Where the registry lives: `MemoryPortalSessionRegistry` (the default, one process), a
 * `RedisPortalSessionRegistry` from `chargebee-portal-logout/redis` (every instance), or your own (a
 * database table). Methods may return promises; the middleware bounds each call in time and logs a failure.
 * An implementation keeps at most a bounded number of portal sessions per customer (dropping the oldest)
 * and forgets them after a time to live.
 */
export interface PortalSessionRegistry {
  /**
   * Records `entry` under its site and customer. A portal session recorded again on its site (under the
   * same or another customer) replaces its earlier entry.
   */
  add(entry: RegisteredPortalSession): RegistryAddResult | Promise<RegistryAddResult>;
  /** The portal sessions of a customer of a site that are still kept (not ended, not expired), oldest first. */
  list(site: string, customerId: string): RegisteredPortalSession[] | Promise<RegisteredPortalSession[]>;
  /** Forgets these portal sessions of a site (they ended), whatever customer they were recorded under. */
  remove(site: string, portalSessionIds: readonly string[]): void | Promise<void>;
}

/** The methods every registry has. */
export const REGISTRY_METHODS = ['add', 'list', 'remove'] as const;

/** Default most portal sessions kept per customer; the oldest are dropped past it. */
export const DEFAULT_MAX_PER_CUSTOMER = 20;
/**
 * Default time a portal session stays in the registry after it was remembered: 30 days. Chargebee
 * documents no lifetime for an opened portal session, so the registry keeps them long.
 */
export const DEFAULT_REGISTRY_TTL_MS = 30 * 24 * 3600 * 1000;
/** Most portal sessions per customer a registry may be set to keep. */
export const MAX_PER_CUSTOMER_LIMIT = 1000;

/** The bounds every built-in registry takes. */
export interface RegistryBounds {
  /** Most portal sessions kept per customer; past it the oldest are dropped (and logged). Default 20. */
  maxPerCustomer?: number;
  /** Time a portal session is kept after it was remembered, in milliseconds. Default 30 days. */
  ttlMs?: number;
}

/** Validates the bounds of a built-in registry; throws a `TypeError` that names `owner` and the option. */
export function registryBounds(
  owner: string,
  options: RegistryBounds & { maxEntries?: number },
  defaultMaxEntries: number,
): { maxPerCustomer: number; ttlMs: number; maxEntries: number } {
  const check: OptionCheck = new OptionCheck(owner);
  if (typeof options !== 'object' || options === null) check.fail('options must be an object');
  return {
    maxPerCustomer: check.whole(
      options.maxPerCustomer,
      'maxPerCustomer',
      DEFAULT_MAX_PER_CUSTOMER,
      1,
      MAX_PER_CUSTOMER_LIMIT,
    ),
    ttlMs: check.whole(options.ttlMs, 'ttlMs', DEFAULT_REGISTRY_TTL_MS, 1, 10 * 365 * 24 * 3600 * 1000),
    maxEntries: check.whole(options.maxEntries, 'maxEntries', defaultMaxEntries, 1, 1_000_000_000),
  };
}
