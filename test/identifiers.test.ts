import { hashPortalSessionId, isValidBusinessEntityId, isValidPortalSessionId } from '../src/base/identifiers';

describe('isValidPortalSessionId', () => {
  it.each(['portal_AzZlGhSHQjA1b3c', 'a', 'A-b_9', 'x'.repeat(70)])('accepts %s', (id) => {
    expect(isValidPortalSessionId(id)).toBe(true);
  });

  it.each([
    ['empty', ''],
    ['71 characters', 'x'.repeat(71)],
    ['a slash', 'portal/../x'],
    ['a dot-dot', '..'],
    ['an encoded slash', 'portal%2Fx'],
    ['a space', 'portal x'],
    ['unicode', 'portäl'],
    ['a newline', 'portal\nx'],
    ['a query', 'portal?x=1'],
  ])('refuses %s', (_name, id) => {
    expect(isValidPortalSessionId(id)).toBe(false);
  });

  it.each([[undefined], [null], [42], [{ id: 'x' }], [['x']]])('refuses the non-string %p', (value) => {
    expect(isValidPortalSessionId(value)).toBe(false);
  });
});

describe('isValidBusinessEntityId', () => {
  it('accepts letters, digits, _ and - up to 100 characters', () => {
    expect(isValidBusinessEntityId('acme-us_2')).toBe(true);
    expect(isValidBusinessEntityId('e'.repeat(100))).toBe(true);
  });

  it('refuses header-breaking, long or non-string values', () => {
    for (const value of ['', 'a\r\nx-evil: 1', 'e'.repeat(101), 'ac me', 'é', 7, undefined]) {
      expect(isValidBusinessEntityId(value)).toBe(false);
    }
  });
});

describe('hashPortalSessionId', () => {
  it('gives 12 hex characters that do not contain the ID', () => {
    const hash = hashPortalSessionId('portal_secret123');
    expect(hash).toMatch(/^[0-9a-f]{12}$/);
    expect(hash).not.toContain('secret');
  });

  it('is stable for one ID and differs between IDs', () => {
    expect(hashPortalSessionId('portal_a')).toBe(hashPortalSessionId('portal_a'));
    expect(hashPortalSessionId('portal_a')).not.toBe(hashPortalSessionId('portal_b'));
  });

  it('hashes values that are not strings without throwing', () => {
    expect(hashPortalSessionId({ a: 1 })).toMatch(/^[0-9a-f]{12}$/);
    expect(hashPortalSessionId(undefined)).toMatch(/^[0-9a-f]{12}$/);
  });
});

describe('hashPortalSessionId on values that are not strings', () => {
  it('never throws, whatever a store held', () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    for (const value of [10n, cyclic, Object.create(null), Symbol('x'), undefined, () => 1]) {
      expect(hashPortalSessionId(value)).toMatch(/^[0-9a-f]{12}$/);
    }
  });
});
