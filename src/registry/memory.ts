import { epochNow } from '../base/time';
import {
  registryBounds,
  type PortalSessionRegistry,
  type RegisteredPortalSession,
  type RegistryAddResult,
  type RegistryBounds,
} from './registry';

/** Options of {@link MemoryPortalSessionRegistry}. */
export interface MemoryPortalSessionRegistryOptions extends RegistryBounds {
  /** Most portal sessions kept in all; past it the oldest are dropped (and logged). Default 100 000. */
  maxEntries?: number;
}

/** Default most portal sessions the in-memory registry keeps in all. */
export const DEFAULT_MEMORY_REGISTRY_MAX_ENTRIES = 100_000;

/**
 * The in-memory registry (`registry: true`): this process's memory, bounded per customer and in all, each
 * entry kept for a time to live. It sees only the portal sessions this process remembered and forgets them
 * at a restart; an app with several instances uses a shared one (`RedisPortalSessionRegistry`,
 * `PostgresPortalSessionRegistry`).
 */
export class MemoryPortalSessionRegistry implements PortalSessionRegistry {
  readonly maxPerCustomer: number;
  readonly maxEntries: number;
  readonly ttlMs: number;
  // Both maps keep insertion order, which is the order of remembering: the first entry is the oldest.
  // Keys hold the site first: a site's portal-session IDs and customer IDs are its own.
  private readonly byId = new Map<string, RegisteredPortalSession>();
  private readonly byCustomer = new Map<string, Map<string, RegisteredPortalSession>>();

  constructor(options: MemoryPortalSessionRegistryOptions = {}) {
    const bounds = registryBounds('MemoryPortalSessionRegistry', options, DEFAULT_MEMORY_REGISTRY_MAX_ENTRIES);
    this.maxPerCustomer = bounds.maxPerCustomer;
    this.maxEntries = bounds.maxEntries;
    this.ttlMs = bounds.ttlMs;
  }

  /** Portal sessions kept, all sites and customers together (expired ones not yet swept included). */
  get size(): number {
    return this.byId.size;
  }

  add(entry: RegisteredPortalSession): RegistryAddResult {
    this.sweep(epochNow());
    const key = idKey(entry.site, entry.id);
    this.forget(key);
    const kept: RegisteredPortalSession = copy(entry);
    this.byId.set(key, kept);
    const customer = customerKey(kept.site, kept.customerId);
    let mine = this.byCustomer.get(customer);
    if (!mine) {
      mine = new Map();
      this.byCustomer.set(customer, mine);
    }
    mine.set(key, kept);
    const dropped: string[] = [];
    for (const [old, e] of mine) {
      if (mine.size <= this.maxPerCustomer) break;
      this.forget(old);
      dropped.push(e.id);
    }
    for (const [old, e] of this.byId) {
      if (this.byId.size <= this.maxEntries) break;
      this.forget(old);
      dropped.push(e.id);
    }
    return { dropped };
  }

  list(site: string, customerId: string): RegisteredPortalSession[] {
    const now = epochNow();
    this.sweep(now);
    const mine = this.byCustomer.get(customerKey(site, customerId));
    if (!mine) return [];
    return [...mine.values()].filter((entry) => !this.expired(entry, now)).map(copy);
  }

  remove(site: string, portalSessionIds: readonly string[]): void {
    for (const id of portalSessionIds) this.forget(idKey(site, id));
  }

  private expired(entry: RegisteredPortalSession, now: number): boolean {
    return entry.rememberedAt + this.ttlMs <= now;
  }

  /** Forgets the expired entries at the front (the oldest); a later one behind a clock step back waits its turn. */
  private sweep(now: number): void {
    for (const [key, entry] of this.byId) {
      if (!this.expired(entry, now)) break;
      this.forget(key);
    }
  }

  private forget(key: string): void {
    const entry = this.byId.get(key);
    if (!entry) return;
    this.byId.delete(key);
    const customer = customerKey(entry.site, entry.customerId);
    const mine = this.byCustomer.get(customer);
    mine?.delete(key);
    if (mine?.size === 0) this.byCustomer.delete(customer);
  }
}

// IDs, sites and customer IDs hold no spaces: a space separates them.
const idKey = (site: string, id: string) => `${site} ${id}`;
const customerKey = (site: string, customerId: string) => `${site} ${customerId}`;

function copy(entry: RegisteredPortalSession): RegisteredPortalSession {
  const { id, customerId, site, businessEntityId, rememberedAt } = entry;
  return businessEntityId === undefined
    ? { id, customerId, site, rememberedAt }
    : { id, customerId, site, businessEntityId, rememberedAt };
}
