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
  // Each map keeps insertion order, which is the order of remembering: the first entry is the oldest. A
  // site's portal-session IDs and customer IDs are its own, so each site has its maps (no key per entry
  // built from site and ID: an app has one site or a few).
  private readonly sites = new Map<string, Site>();
  /** Every entry, oldest first, for the total bound and the time to live. */
  private readonly all = new Set<RegisteredPortalSession>();

  constructor(options: MemoryPortalSessionRegistryOptions = {}) {
    const bounds = registryBounds('MemoryPortalSessionRegistry', options, DEFAULT_MEMORY_REGISTRY_MAX_ENTRIES);
    this.maxPerCustomer = bounds.maxPerCustomer;
    this.maxEntries = bounds.maxEntries;
    this.ttlMs = bounds.ttlMs;
  }

  /** Portal sessions kept, all sites and customers together (expired ones not yet swept included). */
  get size(): number {
    return this.all.size;
  }

  add(entry: RegisteredPortalSession): RegistryAddResult {
    this.sweep(epochNow());
    const kept: RegisteredPortalSession = copy(entry);
    let site = this.sites.get(kept.site);
    if (!site) {
      site = { byId: new Map(), byCustomer: new Map() };
      this.sites.set(kept.site, site);
    }
    const previous = site.byId.get(kept.id);
    if (previous) this.forget(previous);
    site.byId.set(kept.id, kept);
    this.all.add(kept);
    let mine = site.byCustomer.get(kept.customerId);
    if (!mine) {
      mine = new Set();
      site.byCustomer.set(kept.customerId, mine);
    }
    mine.add(kept);
    const dropped: string[] = [];
    for (const old of mine) {
      if (mine.size <= this.maxPerCustomer) break;
      this.forget(old);
      dropped.push(old.id);
    }
    for (const old of this.all) {
      if (this.all.size <= this.maxEntries) break;
      this.forget(old);
      dropped.push(old.id);
    }
    return { dropped };
  }

  list(site: string, customerId: string): RegisteredPortalSession[] {
    const now = epochNow();
    this.sweep(now);
    const mine = this.sites.get(site)?.byCustomer.get(customerId);
    if (!mine) return [];
    return [...mine].filter((entry) => !this.expired(entry, now)).map(copy);
  }

  remove(site: string, portalSessionIds: readonly string[]): void {
    const byId = this.sites.get(site)?.byId;
    if (!byId) return;
    for (const id of portalSessionIds) {
      const entry = byId.get(id);
      if (entry) this.forget(entry);
    }
  }

  private expired(entry: RegisteredPortalSession, now: number): boolean {
    return entry.rememberedAt + this.ttlMs <= now;
  }

  /** Forgets the expired entries at the front (the oldest); a later one behind a clock step back waits its turn. */
  private sweep(now: number): void {
    for (const entry of this.all) {
      if (!this.expired(entry, now)) break;
      this.forget(entry);
    }
  }

  /** Forgets an entry this registry holds (the very object kept). */
  private forget(entry: RegisteredPortalSession): void {
    const site = this.sites.get(entry.site);
    if (!this.all.delete(entry) || !site) return;
    site.byId.delete(entry.id);
    const mine = site.byCustomer.get(entry.customerId);
    mine?.delete(entry);
    if (mine?.size === 0) site.byCustomer.delete(entry.customerId);
    if (site.byId.size === 0) this.sites.delete(entry.site);
  }
}

/** The entries of one site: by portal-session ID, and each customer's, oldest first. */
interface Site {
  byId: Map<string, RegisteredPortalSession>;
  byCustomer: Map<string, Set<RegisteredPortalSession>>;
}

function copy(entry: RegisteredPortalSession): RegisteredPortalSession {
  const { id, customerId, site, businessEntityId, rememberedAt } = entry;
  return businessEntityId === undefined
    ? { id, customerId, site, rememberedAt }
    : { id, customerId, site, businessEntityId, rememberedAt };
}
