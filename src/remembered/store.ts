import type { Request, Response } from 'express';
import type { RememberedPortalSession } from './list';

/**
 * Where remembered portal sessions live. The built-in stores are `'session'` (express-session) and
 * `'cookie'`; an app with its own session (cookie-session, `req.appSession`, a database) passes an object.
 */
export interface PortalSessionStore {
  /**
   * Returns the portal sessions remembered for this request: an ID, an array of IDs, or an array of
   * `{ id, businessEntityId }`. Every ID is validated before use, so this may return what it stored as is.
   */
  read(req: Request): unknown;
  /**
   * Saves the list: called by `remember()` with the new list, and after a logout with the portal sessions
   * still open (an empty list when all ended). Without it, `remember()` throws and nothing is forgotten.
   */
  write?(req: Request, res: Response, portalSessions: RememberedPortalSession[]): void | Promise<void>;
}

/** What a built-in store read: the value, or why it was unusable (logged; the value counts as absent). */
export interface StoreRead {
  value: unknown;
  problem?: string;
}

/** What a built-in store did on a write, when it had to change the list: the oldest entries it dropped. */
export interface StoreWrite {
  dropped: number;
}

/**
 * The shape the middleware works with: built-in stores report problems, custom ones are wrapped. Both
 * methods may be the app's: they may throw, reject or never settle, and are called within a deadline.
 */
export interface InternalStore {
  readonly kind: 'session' | 'cookie' | 'custom';
  read(req: Request): StoreRead | Promise<StoreRead>;
  write?(req: Request, res: Response, portalSessions: RememberedPortalSession[]): unknown;
}

/** Wraps an app's store or resolver function. */
export function customStore(store: PortalSessionStore): InternalStore {
  const write = store.write?.bind(store);
  const read = store.read.bind(store);
  return {
    kind: 'custom',
    read: (req) => {
      const value = read(req);
      return typeof (value as PromiseLike<unknown> | null)?.then === 'function'
        ? Promise.resolve(value).then((resolved) => ({ value: resolved }))
        : { value };
    },
    write,
  };
}
