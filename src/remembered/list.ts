import { isValidBusinessEntityId } from '../identifiers';

/** A portal session the app remembered for the current user, as kept in the session or cookie. */
export interface RememberedPortalSession {
  /** The portal-session ID Chargebee returned. */
  id: string;
  /** The business entity the portal session was created for, when the site has several. */
  businessEntityId?: string;
}

/** Default number of portal sessions kept per app session; the oldest are dropped past it. */
export const DEFAULT_MAX_REMEMBERED = 10;

/**
 * Reads whatever a store held into a list of entries, without judging the IDs: a string, an
 * `{id, businessEntityId}` object, or an array of either. Anything else gives `undefined` (unreadable).
 * Entity IDs that are not valid are dropped here, so a tampered entity never reaches a header.
 */
export function toRememberedList(value: unknown): Array<{ id: unknown; businessEntityId?: string }> | undefined {
  if (value === undefined || value === null) return [];
  const items: unknown[] = Array.isArray(value) ? value : [value];
  const list: Array<{ id: unknown; businessEntityId?: string }> = [];
  for (const item of items) {
    if (typeof item === 'string') {
      list.push({ id: item });
    } else if (typeof item === 'object' && item !== null && 'id' in item) {
      const entity = (item as { businessEntityId?: unknown }).businessEntityId;
      list.push(isValidBusinessEntityId(entity) ? { id: item.id, businessEntityId: entity } : { id: item.id });
    } else {
      return undefined;
    }
  }
  return list;
}

/** Adds `entry` to `list` (replacing an entry with the same ID) and keeps at most `max`, newest last. */
export function addRemembered(
  list: readonly RememberedPortalSession[],
  entry: RememberedPortalSession,
  max: number,
): RememberedPortalSession[] {
  const next = list.filter((item) => item.id !== entry.id);
  next.push(
    entry.businessEntityId === undefined
      ? { id: entry.id }
      : { id: entry.id, businessEntityId: entry.businessEntityId },
  );
  return next.slice(-max);
}
