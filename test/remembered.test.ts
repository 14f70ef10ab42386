import { addRemembered, toRememberedList } from '../src/remembered/list';

describe('toRememberedList', () => {
  it('reads a single ID, an array of IDs and an array of records', () => {
    expect(toRememberedList('portal_1')).toEqual([{ id: 'portal_1' }]);
    expect(toRememberedList(['portal_1', 'portal_2'])).toEqual([{ id: 'portal_1' }, { id: 'portal_2' }]);
    expect(toRememberedList([{ id: 'portal_1', businessEntityId: 'acme-eu' }])).toEqual([
      { id: 'portal_1', businessEntityId: 'acme-eu' },
    ]);
  });

  it('reads nothing stored as an empty list', () => {
    expect(toRememberedList(undefined)).toEqual([]);
    expect(toRememberedList(null)).toEqual([]);
  });

  it('drops an invalid business-entity ID but keeps the entry', () => {
    expect(toRememberedList([{ id: 'portal_1', businessEntityId: 'x\r\ny' }])).toEqual([{ id: 'portal_1' }]);
  });

  it('keeps IDs unjudged, for the caller to validate', () => {
    expect(toRememberedList(['../x'])).toEqual([{ id: '../x' }]);
  });

  it('gives undefined for shapes it cannot read', () => {
    expect(toRememberedList(42)).toBeUndefined();
    expect(toRememberedList([1, 2])).toBeUndefined();
    expect(toRememberedList({ foo: 'bar' })).toBeUndefined();
  });
});

describe('addRemembered', () => {
  it('appends and keeps the newest max entries', () => {
    let list = addRemembered([], { id: 'a' }, 2);
    list = addRemembered(list, { id: 'b' }, 2);
    list = addRemembered(list, { id: 'c' }, 2);
    expect(list).toEqual([{ id: 'b' }, { id: 'c' }]);
  });

  it('moves a repeated ID to the end instead of keeping two', () => {
    expect(addRemembered([{ id: 'a' }, { id: 'b' }], { id: 'a', businessEntityId: 'e' }, 5)).toEqual([
      { id: 'b' },
      { id: 'a', businessEntityId: 'e' },
    ]);
  });
});
