import {
  registryBounds,
  type PortalSessionRegistry,
  type RegisteredPortalSession,
  type RegistryAddResult,
  type RegistryBounds,
} from './registry';
import { epochNow } from '../base/time';

/** Options of {@link MemoryPortalSessionRegistry}. */
export interface MemoryPortalSessionRegistryOptions extends RegistryBounds {
  /** Most portal sessions kept in all; past it the oldest are dropped (and logged). Default 100 000. */
  maxEntries?: number;
}

/** Default most portal sessions the in-memory registry keeps in all. */
export const DEFAULT_MEMORY_REGISTRY_MAX_ENTRIES = 100_000;

/**
 * The default registry: in this process's memory, bounded per customer and in all, each entry kept for a
 * time to live. It sees only the portal sessions this process remembered and forgets them at a restart;
 * an app with several instances uses `RedisPortalSessionRegistry` from `chargebee-portal-logout/redis`.
 */
export class MemoryPortalSessionRegistry implements PortalSessionRegistry {
  readonly maxPerCustomer: number;
  readonly maxEntries: number;
  readonly ttlMs: number;
  // Both maps keep insertion order, which is the order of remembering: the first entry is the oldest.
  private readonly byId = new Map<string, RegisteredPortalSession>();
  private readonly byCustomer = new Map<string, Map<string, RegisteredPortalSession>>();

  constructor(options: MemoryPortalSessionRegistryOptions = {}) {
    const bounds = registryBounds('MemoryPortalSessionRegistry', options, DEFAULT_MEMORY_REGISTRY_MAX_ENTRIES);
    this.maxPerCustomer = bounds.maxPerCustomer;
    this.maxEntries = bounds.maxEntries;
    this.ttlMs = bounds.ttlMs;
  }

  /** Portal sessions kept, all customers together (expired ones not yet swept included). */
  get size(): number {
    return this.byId.size;
  }

  add(entry: RegisteredPortalSession): RegistryAddResult {
    this.sweep(epochNow());
    this.forget(entry.id);
    const kept: RegisteredPortalSession = copy(entry);
    this.byId.set(kept.id, kept);
    let mine = this.byCustomer.get(kept.customerId);
    if (!mine) {
      mine = new Map();
      this.byCustomer.set(kept.customerId, mine);
    }
    mine.set(kept.id, kept);
    const dropped: string[] = [];
    for (const id of mine.keys()) {
      if (mine.size <= this.maxPerCustomer) break;
      this.forget(id);
      dropped.push(id);
    }
    for (const id of this.byId.keys()) {
      if (this.byId.size <= this.maxEntries) break;
      this.forget(id);
      dropped.push(id);
    }
    return { dropped };
  }

  list(customerId: string): RegisteredPortalSession[] {
    const now = epochNow();
    this.sweep(now);
    const mine = this.byCustomer.get(customerId);
    if (!mine) return [];
    return [...mine.values()].filter((entry) => !this.expired(entry, now)).map(copy);
  }

  remove(portalSessionIds: readonly string[]): void {
    for (const id of portalSessionIds) this.forget(id);
  }

  private expired(entry: RegisteredPortalSession, now: number): boolean {
    return entry.rememberedAt + this.ttlMs <= now;
  }

  /** Forgets the expired entries at the front (the oldest); a later one behind a clock step back waits its turn. */
  private sweep(now: number): void {
    for (const entry of this.byId.values()) {
      if (!this.expired(entry, now)) break;
      this.forget(entry.id);
    }
  }

  private forget(id: string): void {
    const entry = this.byId.get(id);
    if (!entry) return;
    this.byId.delete(id);
    const mine = this.byCustomer.get(entry.customerId);
    mine?.delete(id);
    if (mine?.size === 0) this.byCustomer.delete(entry.customerId);
  }
}

function copy(entry: RegisteredPortalSession): RegisteredPortalSession {
  const { id, customerId, businessEntityId, rememberedAt } = entry;
  return businessEntityId === undefined
    ? { id, customerId, rememberedAt }
    : { id, customerId, businessEntityId, rememberedAt };
}
