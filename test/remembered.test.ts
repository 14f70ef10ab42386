import { addRemembered, readRememberedList } from '../src/remembered/list';

const entriesOf = (value: unknown) => readRememberedList(value)?.entries;

describe('readRememberedList', () => {
  it('reads a single ID, an array of IDs and an array of records', () => {
    expect(entriesOf('portal_1')).toEqual([{ id: 'portal_1' }]);
    expect(entriesOf(['portal_1', 'portal_2'])).toEqual([{ id: 'portal_1' }, { id: 'portal_2' }]);
    expect(entriesOf([{ id: 'portal_1', businessEntityId: 'acme-eu' }])).toEqual([
      { id: 'portal_1', businessEntityId: 'acme-eu' },
    ]);
  });

  it('reads nothing stored as an empty list', () => {
    expect(entriesOf(undefined)).toEqual([]);
    expect(entriesOf(null)).toEqual([]);
  });

  it('drops an invalid business-entity ID but keeps the entry', () => {
    expect(entriesOf([{ id: 'portal_1', businessEntityId: 'x\r\ny' }])).toEqual([{ id: 'portal_1' }]);
  });

  it('keeps IDs unjudged, for the caller to validate', () => {
    expect(entriesOf(['../x'])).toEqual([{ id: '../x' }]);
  });

  it('gives undefined only for a value that is not a list or an ID at all', () => {
    expect(readRememberedList(42)).toBeUndefined();
    expect(readRememberedList(true)).toBeUndefined();
    expect(readRememberedList({ foo: 'bar' })).toBeUndefined();
  });

  it('skips the malformed items of a list one by one, counting them, and keeps the others', () => {
    expect(readRememberedList([{ id: 'portal_1' }, null])).toEqual({ entries: [{ id: 'portal_1' }], skipped: 1 });
    expect(readRememberedList([1, 'portal_2', {}, [], { id: 'portal_3', businessEntityId: 'e' }, true])).toEqual({
      entries: [{ id: 'portal_2' }, { id: 'portal_3', businessEntityId: 'e' }],
      skipped: 4,
    });
    expect(readRememberedList([1, 2])).toEqual({ entries: [], skipped: 2 });
  });

  it('skips an item whose id getter throws', () => {
    const hostile = {
      get id(): string {
        throw new Error('getter');
      },
    };
    expect(readRememberedList([hostile, 'portal_1'])).toEqual({ entries: [{ id: 'portal_1' }], skipped: 1 });
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
