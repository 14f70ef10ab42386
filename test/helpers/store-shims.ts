import { MemoryDeferredLogoutStore } from '../../src/queue/memory-store';
import type { DeferredLogoutStore } from '../../src/queue/store';

/**
 * A store for the queue's tests, over an in-memory one: every call goes through `guard` (which may throw
 * or count), `durable` makes it look shared, and `scheduling` gives it the expiry methods.
 */
export function shimStore(
  memory: MemoryDeferredLogoutStore,
  options: {
    guard?: (method: string) => void;
    durable?: boolean;
    scheduling?: boolean;
  } = {},
): DeferredLogoutStore {
  const guard = <T>(method: string, fn: () => T): T => {
    options.guard?.(method);
    return fn();
  };
  return {
    ...(options.durable ? { durable: true } : {}),
    add: (j) => guard('add', () => memory.add(j)),
    takeDue: (limit, rate) => guard('takeDue', () => memory.takeDue(limit, rate)),
    remove: (id) => guard('remove', () => memory.remove(id)),
    giveUp: (id, lease) => guard('giveUp', () => memory.giveUp(id, lease)),
    pauseSite: (site, until) => guard('pauseSite', () => memory.pauseSite(site, until)),
    wakeSite: (site, count) => guard('wakeSite', () => memory.wakeSite(site, count)),
    size: () => guard('size', () => memory.size()),
    list: (limit) => guard('list', () => memory.list(limit)),
    ...(options.scheduling && {
      schedule: (j) => guard('schedule', () => memory.schedule(j)),
      postpone: (ids, at) => guard('postpone', () => memory.postpone(ids, at)),
      cancel: (ids) => guard('cancel', () => memory.cancel(ids)),
    }),
  };
}

/** A durable store that throws "shared store down" until `answer()` is called. */
export function sharedStoreDown({ scheduling = false } = {}) {
  const memory = new MemoryDeferredLogoutStore(10);
  let failing = true;
  const shared = shimStore(memory, {
    durable: true,
    scheduling,
    guard: () => {
      if (failing) throw new Error('shared store down');
    },
  });
  return { memory, shared, answer: () => (failing = false) };
}
