import type { Request, Response } from 'express';
import { isValidPortalSessionId } from '../base/identifiers';
import { errorFields, type Log } from '../base/logging';
import type { PortalLogoutReason } from '../base/outcome';
import { settle, type Settled } from '../base/time';
import { readRememberedList, rememberedEntry, type RememberedEntry, type RememberedPortalSession } from './list';
import type { InternalStore, StoreRead, StoreWrite } from './store';

/**
 * The store's side of a logout: reading the remembered portal sessions before, forgetting the ended ones
 * after. The store may be the app's (it may throw, reject or never settle): every call is bounded by the
 * logout's deadline.
 */

export type RememberedLoad =
  { ok: true; entries: RememberedEntry[]; rewrite: boolean } | { ok: false; reason: PortalLogoutReason; error: Error };

function failure(settled: Exclude<Settled<unknown>, { status: 'ok' }>): { reason: PortalLogoutReason; error: Error } {
  if (settled.status === 'timeout')
    return { reason: 'store_timeout', error: new Error('The portal-session store did not answer within the budget') };
  const error = settled.error instanceof Error ? settled.error : new Error('The portal-session store failed');
  return { reason: 'store_error', error };
}

/**
 * Reads the remembered entries: each malformed item of a list is skipped (logged as a count), an entry
 * repeated is taken once, and past `maxRemembered` the oldest are ignored. `rewrite` says the stored value
 * should be written back cleaned, whatever the logout's result. A store that answers at once (the built-in
 * ones) gives the result at once, without a promise.
 */
export function loadRemembered(
  store: InternalStore,
  req: Request,
  deadline: number,
  maxRemembered: number,
  log: Log,
): RememberedLoad | Promise<RememberedLoad> {
  const reading = settle<StoreRead>(() => store.read(req), deadline);
  return reading instanceof Promise
    ? reading.then((settled) => entriesOf(settled, store, maxRemembered, log))
    : entriesOf(reading, store, maxRemembered, log);
}

function entriesOf(settled: Settled<StoreRead>, store: InternalStore, maxRemembered: number, log: Log): RememberedLoad {
  if (settled.status !== 'ok') {
    const { reason, error } = failure(settled);
    log.error(
      { err: errorFields(error), chargebeePortalLogout: { result: 'failed', store: store.kind, reason } },
      'could not read the remembered portal sessions',
    );
    return { ok: false, reason, error };
  }
  let problem = settled.value?.problem;
  const read = readRememberedList(settled.value?.value);
  if (read === undefined) problem = 'stored value has an unexpected shape';
  if (problem)
    log.warn(
      { chargebeePortalLogout: { store: store.kind, problem } },
      'remembered portal sessions unreadable; counted as none',
    );
  const skipped = read?.skipped ?? 0;
  if (skipped > 0)
    log.warn(
      { chargebeePortalLogout: { store: store.kind, skipped } },
      `${skipped} malformed remembered entries skipped; the others are logged out`,
    );
  let entries = read?.entries ?? [];
  if (entries.length > 1) {
    const seen = new Set<unknown>();
    entries = entries.filter((entry) => !seen.has(entry.id) && seen.add(entry.id));
  }
  let rewrite = problem !== undefined || skipped > 0;
  if (entries.length > maxRemembered) {
    log.warn(
      { chargebeePortalLogout: { remembered: entries.length, max: maxRemembered } },
      'more portal sessions remembered than are kept per app session; the oldest are ignored',
    );
    entries = entries.slice(-maxRemembered);
    rewrite = true;
  }
  return { ok: true, entries, rewrite };
}

/** The valid entries of a stored value, as a store writes them. */
export function validEntries(value: unknown): RememberedPortalSession[] {
  return (readRememberedList(value)?.entries ?? [])
    .filter((entry): entry is RememberedPortalSession => isValidPortalSessionId(entry.id))
    .map((entry) => rememberedEntry(entry.id, entry.businessEntityId));
}

/** Logs the oldest entries a store dropped to fit (the cookie store's size limit). */
export function logDropped(written: unknown, store: InternalStore, log: Log): void {
  const dropped = (written as StoreWrite | undefined)?.dropped;
  if (typeof dropped === 'number' && dropped > 0)
    log.warn(
      { chargebeePortalLogout: { store: store.kind, dropped } },
      `the ${dropped} oldest remembered portal sessions were dropped to keep the cookie under 4096 bytes`,
    );
}

/**
 * After a logout: writes back what the store holds now, less the IDs this logout ended (and anything
 * invalid). The store is read again first, so a portal session remembered while the logout ran survives.
 * Gives why it could not, or `undefined`: at once for a store that answers at once, else a promise.
 */
export function forgetEnded(
  store: InternalStore,
  req: Request,
  res: Response,
  ended: ReadonlySet<unknown>,
  deadline: number,
  maxRemembered: number,
  log: Log,
): PortalLogoutReason | undefined | Promise<PortalLogoutReason | undefined> {
  const write = store.write?.bind(store);
  if (!write) return undefined;
  const written = (settled: Settled<unknown>): PortalLogoutReason | undefined => {
    if (settled.status === 'ok') {
      logDropped(settled.value, store, log);
      return undefined;
    }
    const { reason, error } = failure(settled);
    log.warn(
      { err: errorFields(error), chargebeePortalLogout: { store: store.kind, reason } },
      'could not forget the ended portal sessions',
    );
    return reason;
  };
  const writeBack = (current: Settled<StoreRead>) => {
    if (current.status !== 'ok') return written(current);
    // An unreadable value (a tampered cookie) is replaced: what survives is only what reads as valid.
    const remaining = validEntries(current.value?.problem ? undefined : current.value?.value)
      .filter((entry) => !ended.has(entry.id))
      .slice(-maxRemembered);
    const writing = settle(() => write(req, res, remaining), deadline);
    return writing instanceof Promise ? writing.then(written) : written(writing);
  };
  const reading = settle<StoreRead>(() => store.read(req), deadline);
  return reading instanceof Promise ? reading.then(writeBack) : writeBack(reading);
}
