/**
 * The contract of a registry of open portal sessions (src/registry/registry.ts), as tests that every
 * registry must pass: the in-memory one, the Redis one and the PostgreSQL one run the same file.
 */
import type { PortalSessionRegistry, RegisteredPortalSession } from '../../src/registry/registry';

export interface RegistryFactory {
  /** A fresh, empty registry with these bounds. */
  make(options: {
    maxPerCustomer?: number;
    maxEntries?: number;
    ttlMs?: number;
  }): Promise<PortalSessionRegistry> | PortalSessionRegistry;
}

export const SITE_A = 'aaaaaaaaaaaaaaaa';
export const SITE_B = 'bbbbbbbbbbbbbbbb';

let clock = 0;
/** An entry of site A for `cus_1`, remembered a little later than the one before. */
export function entry(id: string, extra: Partial<RegisteredPortalSession> = {}): RegisteredPortalSession {
  return { id, customerId: 'cus_1', site: SITE_A, rememberedAt: Date.now() - 10_000 + ++clock, ...extra };
}

const ids = (entries: RegisteredPortalSession[]) => entries.map((e) => e.id);

export function describeRegistryContract(
  name: string,
  factory: RegistryFactory,
  describeIt: jest.Describe = describe,
): void {
  describeIt(`${name}: the registry contract`, () => {
    it("lists a customer's portal sessions of a site, oldest first, with their entity, and nothing of another customer or site", async () => {
      const registry = await factory.make({});
      await registry.add(entry('p1', { businessEntityId: 'acme-us' }));
      await registry.add(entry('p2', { customerId: 'cus_2' }));
      await registry.add(entry('p3'));
      // Customer IDs of another site may collide: cus_1 there is someone else.
      await registry.add(entry('p4', { site: SITE_B }));
      expect(await registry.list(SITE_A, 'cus_1')).toEqual([
        { id: 'p1', customerId: 'cus_1', site: SITE_A, businessEntityId: 'acme-us', rememberedAt: expect.any(Number) },
        { id: 'p3', customerId: 'cus_1', site: SITE_A, rememberedAt: expect.any(Number) },
      ]);
      expect(ids(await registry.list(SITE_B, 'cus_1'))).toEqual(['p4']);
      expect(ids(await registry.list(SITE_A, 'cus_2'))).toEqual(['p2']);
      expect(await registry.list(SITE_A, 'cus_unknown')).toEqual([]);
    });

    it('forgets removed portal sessions of a site, whatever their customer, and leaves the same IDs of another site', async () => {
      const registry = await factory.make({});
      await registry.add(entry('p1'));
      await registry.add(entry('p2', { customerId: 'cus_2' }));
      await registry.add(entry('p3'));
      await registry.add(entry('p1', { site: SITE_B }));
      await registry.remove(SITE_A, ['p1', 'p2', 'never_added']);
      expect(ids(await registry.list(SITE_A, 'cus_1'))).toEqual(['p3']);
      expect(await registry.list(SITE_A, 'cus_2')).toEqual([]);
      expect(ids(await registry.list(SITE_B, 'cus_1'))).toEqual(['p1']);
    });

    it('keeps one entry per portal session of a site: remembered again, it moves to the newest place (and customer)', async () => {
      const registry = await factory.make({});
      await registry.add(entry('p1'));
      await registry.add(entry('p2'));
      await registry.add(entry('p1'));
      expect(ids(await registry.list(SITE_A, 'cus_1'))).toEqual(['p2', 'p1']);
      await registry.add(entry('p2', { customerId: 'cus_2' }));
      expect(ids(await registry.list(SITE_A, 'cus_1'))).toEqual(['p1']);
      expect(ids(await registry.list(SITE_A, 'cus_2'))).toEqual(['p2']);
    });

    it("drops a customer's oldest portal sessions past maxPerCustomer, and says which", async () => {
      const registry = await factory.make({ maxPerCustomer: 3 });
      for (const id of ['p1', 'p2', 'p3']) expect((await registry.add(entry(id))).dropped).toEqual([]);
      await registry.add(entry('other', { customerId: 'cus_2' }));
      await registry.add(entry('p_b', { site: SITE_B }));
      expect((await registry.add(entry('p4'))).dropped).toEqual(['p1']);
      expect(ids(await registry.list(SITE_A, 'cus_1'))).toEqual(['p2', 'p3', 'p4']);
      expect(ids(await registry.list(SITE_A, 'cus_2'))).toEqual(['other']);
      expect(ids(await registry.list(SITE_B, 'cus_1'))).toEqual(['p_b']);
    });

    it('drops the oldest portal sessions of all past maxEntries', async () => {
      const registry = await factory.make({ maxEntries: 3 });
      await registry.add(entry('p1'));
      await registry.add(entry('p2', { customerId: 'cus_2' }));
      await registry.add(entry('p3', { site: SITE_B }));
      expect((await registry.add(entry('p4'))).dropped).toEqual(['p1']);
      expect(ids(await registry.list(SITE_A, 'cus_1'))).toEqual(['p4']);
    });

    it('forgets portal sessions remembered longer ago than ttlMs', async () => {
      const registry = await factory.make({ ttlMs: 60_000 });
      await registry.add(entry('p_old', { rememberedAt: Date.now() - 120_000 }));
      await registry.add(entry('p_new'));
      expect(ids(await registry.list(SITE_A, 'cus_1'))).toEqual(['p_new']);
    });
  });
}
