import { isValidBusinessEntityId } from '../base/identifiers';

/** A portal session the app remembered for the current user, as kept in the session or cookie. */
export interface RememberedPortalSession {
  /** The portal-session ID Chargebee returned. */
  id: string;
  /** The business entity the portal session was created for, when the site has several. */
  businessEntityId?: string;
}

/** An entry with only the fields that are set (no `undefined` values, for stores that serialise). */
export function rememberedEntry(id: string, businessEntityId?: string): RememberedPortalSession {
  const entry: RememberedPortalSession = { id };
  if (businessEntityId !== undefined) entry.businessEntityId = businessEntityId;
  return entry;
}

/** A remembered entry as read from a store: the ID is not judged yet (an invalid one is reported, never sent). */
export interface RememberedEntry {
  id: unknown;
  businessEntityId?: string;
}

/** What a store held, read into entries; `skipped` counts the items of a list that were not entries at all. */
export interface RememberedRead {
  entries: RememberedEntry[];
  skipped: number;
}

function toEntry(item: unknown): RememberedEntry | undefined {
  if (typeof item === 'string') return { id: item };
  if (typeof item !== 'object' || item === null || Array.isArray(item) || !('id' in item)) return undefined;
  // Nothing else is read: what the user's own store holds (a cookie they may replay) names no customer.
  const entity = (item as { businessEntityId?: unknown }).businessEntityId;
  return { id: item.id, ...(isValidBusinessEntityId(entity) ? { businessEntityId: entity } : {}) };
}

/**
 * Reads whatever a store held into entries, without judging the IDs: a string, an `{ id, businessEntityId }`
 * object, or a list of either. In a list, an item that is neither (`null`, a number, `{}`) is skipped and
 * counted, and the others are kept. A value that is none of these at all gives `undefined` (unreadable).
 * Entity IDs that are not valid are dropped here, so a tampered entity never reaches a header.
 */
export function readRememberedList(value: unknown): RememberedRead | undefined {
  try {
    if (value === undefined || value === null) return { entries: [], skipped: 0 };
    if (!Array.isArray(value)) {
      const entry = toEntry(value);
      return entry ? { entries: [entry], skipped: 0 } : undefined;
    }
    const entries: RememberedEntry[] = [];
    let skipped = 0;
    for (const item of value) {
      let entry: RememberedEntry | undefined;
      try {
        entry = toEntry(item);
      } catch {
        entry = undefined; // a getter or proxy that throws
      }
      if (entry) entries.push(entry);
      else skipped += 1;
    }
    return { entries, skipped };
  } catch {
    return undefined;
  }
}

/** Adds `entry` to `list` (replacing an entry with the same ID) and keeps at most `max`, newest last. */
export function addRemembered(
  list: readonly RememberedPortalSession[],
  entry: RememberedPortalSession,
  max: number,
): RememberedPortalSession[] {
  const next = list.filter((item) => item.id !== entry.id);
  next.push(rememberedEntry(entry.id, entry.businessEntityId));
  return next.slice(-max);
}
