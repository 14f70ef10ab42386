import { MemoryPortalSessionRegistry } from '../src';
import { describeRegistryContract, SITE_A } from './contracts/registry';
import { checkCustomerId, customerIdProblem, isValidCustomerId } from '../src/base/identifiers';

const entry = (id: string, customerId = 'cus_1', extra: { businessEntityId?: string; rememberedAt?: number } = {}) => ({
  id,
  customerId,
  site: SITE_A,
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

describe('MemoryPortalSessionRegistry (beyond the contract of test/contracts/registry.ts)', () => {
  it('counts what it keeps', () => {
    const registry = new MemoryPortalSessionRegistry({ maxEntries: 3 });
    for (const id of ['a1', 'b1', 'a2', 'c1']) registry.add(entry(id));
    expect(registry.size).toBe(3);
  });

  it('forgets portal sessions once their time to live has passed', async () => {
    const registry = new MemoryPortalSessionRegistry({ ttlMs: 150 });
    registry.add(entry('old'));
    await new Promise((resolve) => setTimeout(resolve, 200));
    registry.add(entry('new'));
    expect(registry.list(SITE_A, 'cus_1').map((e) => e.id)).toEqual(['new']);
    expect(registry.size).toBe(1);
  });

  it('leaves out an entry remembered longer ago than the time to live even before a sweep reaches it', () => {
    const registry = new MemoryPortalSessionRegistry({ ttlMs: 60_000 });
    registry.add(entry('fresh', 'cus_1'));
    registry.add(entry('stale', 'cus_1', { rememberedAt: Date.now() - 61_000 })); // a clock stepped back
    expect(registry.list(SITE_A, 'cus_1').map((e) => e.id)).toEqual(['fresh']);
  });

  it('hands out copies: changing a listed entry changes nothing kept', () => {
    const registry = new MemoryPortalSessionRegistry();
    const added = entry('p1');
    registry.add(added);
    added.id = 'changed';
    registry.list(SITE_A, 'cus_1')[0].id = 'changed-too';
    expect(registry.list(SITE_A, 'cus_1')[0].id).toBe('p1');
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

describeRegistryContract('MemoryPortalSessionRegistry', {
  make: (options) => new MemoryPortalSessionRegistry(options),
});
