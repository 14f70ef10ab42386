import { MemoryPortalSessionRegistry } from '../src';
import { checkCustomerId, customerIdProblem, isValidCustomerId } from '../src/base/identifiers';

const entry = (id: string, customerId = 'cus_1', extra: { businessEntityId?: string; rememberedAt?: number } = {}) => ({
  id,
  customerId,
  rememberedAt: extra.rememberedAt ?? Date.now(),
  ...(extra.businessEntityId === undefined ? {} : { businessEntityId: extra.businessEntityId }),
});

describe('customer IDs', () => {
  it.each(['cus_1', 'AzZlGhSHQjA1b3c', 'user@example.com', 'a', 'x'.repeat(50), 'acme.42-b_c'])('accepts %s', (id) => {
    expect(isValidCustomerId(id)).toBe(true);
  });

  it.each([
    ['empty', '', 'must not be empty'],
    ['51 characters', 'x'.repeat(51), 'at most 50'],
    ['a space', 'cus 1', 'whitespace'],
    ['a tab', 'cus\t1', 'whitespace'],
    ['a newline', 'cus\n1', 'whitespace'],
    ['a NUL', 'cus\u00001', 'control'],
    ['a DEL', 'cus\u007f1', 'control'],
    ['non-ASCII', 'cüs_1', 'ASCII'],
    ['a number', 42, 'must be a string'],
    ['null', null, 'got null'],
  ])('refuses %s with a reason', (_name, value, reason) => {
    expect(isValidCustomerId(value)).toBe(false);
    expect(customerIdProblem(value)).toContain(reason);
    expect(() => checkCustomerId(value, 'logoutCustomer')).toThrow(
      new RegExp(`^logoutCustomer: the customer ID .*${reason}`),
    );
  });
});

describe('MemoryPortalSessionRegistry', () => {
  it("lists a customer's portal sessions oldest first, with their entity, and no other customer's", () => {
    const registry = new MemoryPortalSessionRegistry();
    registry.add(entry('p1', 'cus_1', { businessEntityId: 'acme-us' }));
    registry.add(entry('p2', 'cus_2'));
    registry.add(entry('p3', 'cus_1'));
    expect(registry.list('cus_1')).toEqual([
      expect.objectContaining({ id: 'p1', customerId: 'cus_1', businessEntityId: 'acme-us' }),
      { id: 'p3', customerId: 'cus_1', rememberedAt: expect.any(Number) },
    ]);
    expect(registry.list('cus_2').map((e) => e.id)).toEqual(['p2']);
    expect(registry.list('cus_unknown')).toEqual([]);
  });

  it('forgets removed portal sessions by ID alone, whatever their customer', () => {
    const registry = new MemoryPortalSessionRegistry();
    registry.add(entry('p1', 'cus_1'));
    registry.add(entry('p2', 'cus_2'));
    registry.add(entry('p3', 'cus_1'));
    registry.remove(['p1', 'p2', 'never-added']);
    expect(registry.list('cus_1').map((e) => e.id)).toEqual(['p3']);
    expect(registry.list('cus_2')).toEqual([]);
    expect(registry.size).toBe(1);
  });

  it('keeps one entry per portal session: remembered again, it moves to the newest place (and customer)', () => {
    const registry = new MemoryPortalSessionRegistry();
    registry.add(entry('p1', 'cus_1'));
    registry.add(entry('p2', 'cus_1'));
    registry.add(entry('p1', 'cus_1'));
    expect(registry.list('cus_1').map((e) => e.id)).toEqual(['p2', 'p1']);
    registry.add(entry('p2', 'cus_2'));
    expect(registry.list('cus_1').map((e) => e.id)).toEqual(['p1']);
    expect(registry.list('cus_2').map((e) => e.id)).toEqual(['p2']);
    expect(registry.size).toBe(2);
  });

  it("drops a customer's oldest portal sessions past maxPerCustomer and says which", () => {
    const registry = new MemoryPortalSessionRegistry({ maxPerCustomer: 3 });
    for (const id of ['p1', 'p2', 'p3']) expect(registry.add(entry(id)).dropped).toEqual([]);
    registry.add(entry('other', 'cus_2'));
    expect(registry.add(entry('p4')).dropped).toEqual(['p1']);
    expect(registry.list('cus_1').map((e) => e.id)).toEqual(['p2', 'p3', 'p4']);
    expect(registry.list('cus_2').map((e) => e.id)).toEqual(['other']);
  });

  it('drops the oldest portal sessions of any customer past maxEntries', () => {
    const registry = new MemoryPortalSessionRegistry({ maxEntries: 3 });
    registry.add(entry('a1', 'cus_a'));
    registry.add(entry('b1', 'cus_b'));
    registry.add(entry('a2', 'cus_a'));
    expect(registry.add(entry('c1', 'cus_c')).dropped).toEqual(['a1']);
    expect(registry.size).toBe(3);
    expect(registry.list('cus_a').map((e) => e.id)).toEqual(['a2']);
  });

  it('forgets portal sessions once their time to live has passed', async () => {
    const registry = new MemoryPortalSessionRegistry({ ttlMs: 150 });
    registry.add(entry('old'));
    await new Promise((resolve) => setTimeout(resolve, 200));
    registry.add(entry('new'));
    expect(registry.list('cus_1').map((e) => e.id)).toEqual(['new']);
    expect(registry.size).toBe(1);
  });

  it('leaves out an entry remembered longer ago than the time to live even before a sweep reaches it', () => {
    const registry = new MemoryPortalSessionRegistry({ ttlMs: 60_000 });
    registry.add(entry('fresh', 'cus_1'));
    registry.add(entry('stale', 'cus_1', { rememberedAt: Date.now() - 61_000 })); // a clock stepped back
    expect(registry.list('cus_1').map((e) => e.id)).toEqual(['fresh']);
  });

  it('hands out copies: changing a listed entry changes nothing kept', () => {
    const registry = new MemoryPortalSessionRegistry();
    const added = entry('p1');
    registry.add(added);
    added.id = 'changed';
    registry.list('cus_1')[0].id = 'changed-too';
    expect(registry.list('cus_1')[0].id).toBe('p1');
  });

  it.each([
    [{ maxPerCustomer: 0 }, 'maxPerCustomer'],
    [{ maxPerCustomer: 1.5 }, 'maxPerCustomer'],
    [{ maxEntries: -1 }, 'maxEntries'],
    [{ ttlMs: 0 }, 'ttlMs'],
    [{ ttlMs: '1d' }, 'ttlMs'],
  ])('refuses the option %p with a TypeError naming it', (options, name) => {
    expect(() => new MemoryPortalSessionRegistry(options as never)).toThrow(
      new RegExp(`^MemoryPortalSessionRegistry: option ${name} must be a whole number`),
    );
  });
});
