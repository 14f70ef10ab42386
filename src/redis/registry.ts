import { checkCustomerId, isValidBusinessEntityId, isValidPortalSessionId } from '../base/identifiers';
import { epochNow } from '../base/time';
import type { OptionCheck } from '../base/validate';
import {
  registryBounds,
  type PortalSessionRegistry,
  type RegisteredPortalSession,
  type RegistryAddResult,
  type RegistryBounds,
} from '../registry/registry';
import { redisCommon } from './options';
import { REGISTRY_ADD } from './scripts/registry/add-3';
import { REGISTRY_LIST } from './scripts/registry/list-3';
import { REGISTRY_REMOVE } from './scripts/registry/remove-3';
import { REGISTRY_SIZE } from './scripts/registry/size-1';
import { replyArray, replyText as text, runScript, type RedisClientLike, type RedisScript } from './scripts-runner';

/** Options of {@link RedisPortalSessionRegistry}. */
export interface RedisPortalSessionRegistryOptions extends RegistryBounds {
  /**
   * Start of every key of the registry. Default `'{chargebee-portal-logout}:registry:'`: the `{...}` hash
   * tag puts its keys in one Redis Cluster slot, which its scripts need there; on a Cluster client
   * (`createCluster`) a prefix without a hash tag is refused. A client's own key prefix (node-redis 6.1+)
   * is added in front. No key holds a customer ID.
   */
  prefix?: string;
  /** Most portal sessions kept in all, every site, customer and instance together; past it the oldest are dropped. Default 1 000 000. */
  maxEntries?: number;
  /** Longest wait for one Redis call, whatever the client's own timeouts. Default 1000 ms. */
  commandTimeoutMs?: number;
}

export const DEFAULT_REGISTRY_PREFIX = '{chargebee-portal-logout}:registry:';
export const DEFAULT_REDIS_REGISTRY_MAX_ENTRIES = 1_000_000;
/** Expired entries forgotten per recording, at most: the sweep stays cheap, and keeps up with the arrivals. */
const SWEEP_LIMIT = 20;
/** Most IDs forgotten per script call. */
const REMOVE_BATCH = 500;
/** A site as the registry keeps it: a short tag (`siteKey`), visible ASCII without spaces. */
const SITE = /^[\x21-\x7e]{1,100}$/;

/**
 * The registry of open portal sessions by site and customer in Redis, shared by every instance of the app:
 * a portal session opened through one instance is ended by `logoutCustomer()` (or a sign-out everywhere)
 * on any other. Entries are kept per Chargebee site: business entities may point at different sites, whose
 * customer IDs (and portal-session IDs) are their own. Give it the app's connected node-redis client, plain
 * or Cluster (the one `connect-redis` and the deferred queue use); it never changes the client's options
 * and adds no listener to it. Bounded per customer and in all, each entry kept for a time to live, every
 * key expiring when the newest entry does; each method is one Lua script (one atomic step).
 *
 * Warning: Redis then holds portal-session IDs (bearer references to a customer's portal) and customer
 * IDs (in values, never in key names). Keep that Redis as private as your sessions.
 */
export class RedisPortalSessionRegistry implements PortalSessionRegistry {
  readonly prefix: string;
  readonly maxPerCustomer: number;
  readonly maxEntries: number;
  readonly ttlMs: number;
  private readonly commandTimeoutMs: number;
  private readonly check: OptionCheck;
  private readonly keys: [entries: string, byCustomer: string, byTime: string];

  constructor(
    private readonly client: RedisClientLike,
    options: RedisPortalSessionRegistryOptions = {},
  ) {
    const common = redisCommon(
      'RedisPortalSessionRegistry',
      client,
      options,
      DEFAULT_REGISTRY_PREFIX,
      '{myapp}:registry:',
    );
    this.check = common.check;
    const bounds = registryBounds('RedisPortalSessionRegistry', options, DEFAULT_REDIS_REGISTRY_MAX_ENTRIES);
    this.maxPerCustomer = bounds.maxPerCustomer;
    this.maxEntries = bounds.maxEntries;
    this.ttlMs = bounds.ttlMs;
    this.prefix = common.prefix;
    this.commandTimeoutMs = common.commandTimeoutMs;
    this.keys = [`${this.prefix}entries`, `${this.prefix}by-customer`, `${this.prefix}by-time`];
  }

  async add(entry: RegisteredPortalSession): Promise<RegistryAddResult> {
    // Checked again here: these values go into Redis members that the scripts split on spaces.
    this.checkSite(entry.site, 'add');
    if (!isValidPortalSessionId(entry.id)) this.check.fail('add: the portal-session ID is not valid');
    checkCustomerId(entry.customerId, 'RedisPortalSessionRegistry: add');
    if (entry.businessEntityId !== undefined && !isValidBusinessEntityId(entry.businessEntityId))
      this.check.fail('add: the business-entity ID is not valid');
    const at = Math.round(entry.rememberedAt);
    if (!Number.isSafeInteger(at) || at < 0) this.check.fail('add: rememberedAt must be a time in ms since the epoch');
    const reply = await this.run(REGISTRY_ADD, this.keys, [
      entry.site,
      entry.id,
      entry.customerId,
      entry.businessEntityId ?? '',
      at,
      epochNow(),
      this.ttlMs,
      this.maxPerCustomer,
      this.maxEntries,
      SWEEP_LIMIT,
    ]);
    return { dropped: asArray(reply).map(text) };
  }

  async list(site: string, customerId: string): Promise<RegisteredPortalSession[]> {
    this.checkSite(site, 'list');
    checkCustomerId(customerId, 'RedisPortalSessionRegistry: list');
    const items = asArray(await this.run(REGISTRY_LIST, this.keys, [site, customerId, epochNow(), this.ttlMs]));
    const out: RegisteredPortalSession[] = [];
    for (let i = 0; i + 2 < items.length; i += 3) {
      const entity = text(items[i + 2]);
      const entry: RegisteredPortalSession = {
        id: text(items[i]),
        customerId,
        site,
        rememberedAt: Number(text(items[i + 1])),
      };
      if (entity !== '') entry.businessEntityId = entity;
      out.push(entry);
    }
    return out;
  }

  async remove(site: string, portalSessionIds: readonly string[]): Promise<void> {
    this.checkSite(site, 'remove');
    const ids = portalSessionIds.filter(isValidPortalSessionId);
    for (let i = 0; i < ids.length; i += REMOVE_BATCH)
      await this.run(REGISTRY_REMOVE, this.keys, [site, ...ids.slice(i, i + REMOVE_BATCH)]);
  }

  /** Portal sessions kept, every site and customer together (expired ones not yet swept included). */
  async size(): Promise<number> {
    return Number(await this.run(REGISTRY_SIZE, [this.keys[0]], []));
  }

  private checkSite(site: unknown, method: string): void {
    if (typeof site !== 'string' || !SITE.test(site))
      this.check.fail(`${method}: the site must be a short tag of visible ASCII without spaces (see siteKey)`);
  }

  private run(script: RedisScript, keys: readonly string[], args: ReadonlyArray<string | number>): Promise<unknown> {
    return runScript(this.client, script, keys, args, this.commandTimeoutMs);
  }
}

function asArray(reply: unknown): unknown[] {
  return replyArray(reply, 'registry');
}
