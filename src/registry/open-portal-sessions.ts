import { errorFields, type Log } from '../base/logging';
import type { PortalLogoutReason } from '../base/outcome';
import { deadlineIn, settleWithin } from '../base/time';
import { hashPortalSessionId, isValidBusinessEntityId, isValidPortalSessionId } from '../base/identifiers';
import { scrub } from '../base/redact';
import { MAX_PER_CUSTOMER_LIMIT, type PortalSessionRegistry, type RegisteredPortalSession } from './registry';

/**
 * The middleware's side of the registry: every call bounded in time, every failure logged and turned into
 * a value (a registry is an outside party: Redis may be down, an app's table slow), every entry read back
 * checked before it reaches a URL or a header.
 */

/** The registry could not be used: it failed, or did not answer in time. Its message names no customer or ID. */
export class PortalSessionRegistryError extends Error {
  override name = 'PortalSessionRegistryError';
}

/** Least time given to forgetting ended portal sessions, even when the logout's budget is spent. */
const FORGET_MIN_MS = 1000;

type Answer<T> = { ok: true; value: T } | { ok: false; error: PortalSessionRegistryError; reason: PortalLogoutReason };

/** Calls the registry until `deadline` (on `now()`): a throw, a rejection or no answer becomes a value. */
async function ask<T>(what: string, fn: () => T | PromiseLike<T>, deadline: number): Promise<Answer<T>> {
  const settled = await settleWithin(fn, deadline);
  if (settled.status === 'ok') return { ok: true, value: settled.value };
  if (settled.status === 'timeout')
    return {
      ok: false,
      reason: 'registry_timeout',
      error: new PortalSessionRegistryError(`the portal-session registry did not ${what} within the budget`),
    };
  const { type, message } = errorFields(settled.error);
  return {
    ok: false,
    reason: 'registry_error',
    error: new PortalSessionRegistryError(`the portal-session registry could not ${what}: ${type}: ${message}`),
  };
}

/** Reads what a registry gave back into entries that are safe to send; anything else is left out. */
function checkedEntries(
  site: string,
  customerId: string,
  value: unknown,
): { entries: RegisteredPortalSession[]; invalid: number } {
  const entries: RegisteredPortalSession[] = [];
  let invalid = 0;
  for (const item of Array.isArray(value) ? (value as unknown[]) : []) {
    const e = item as Partial<RegisteredPortalSession> | null;
    if (
      typeof e !== 'object' ||
      e === null ||
      !isValidPortalSessionId(e.id) ||
      e.customerId !== customerId ||
      e.site !== site ||
      (e.businessEntityId !== undefined && !isValidBusinessEntityId(e.businessEntityId))
    ) {
      invalid += 1;
      continue;
    }
    const rememberedAt = typeof e.rememberedAt === 'number' ? e.rememberedAt : 0;
    entries.push(
      e.businessEntityId === undefined
        ? { id: e.id, customerId, site, rememberedAt }
        : { id: e.id, customerId, site, businessEntityId: e.businessEntityId, rememberedAt },
    );
  }
  if (!Array.isArray(value)) invalid += 1;
  // A registry of the app's own may keep more than any built-in one: the newest are ended, the rest logged.
  const over = Math.max(0, entries.length - MAX_PER_CUSTOMER_LIMIT);
  return { entries: entries.slice(over), invalid: invalid + over };
}

export class OpenPortalSessions {
  constructor(
    readonly registry: PortalSessionRegistry,
    private readonly log: Log,
    /** The keyed tag of a customer ID for log lines. */
    private readonly hashCustomer: (customerId: string) => string,
  ) {}

  /**
   * Records a portal session the app just remembered. A failure is logged, not thrown: the app session
   * remembers the portal session anyway, and its own logout still ends it.
   */
  async record(entry: RegisteredPortalSession, deadline: number, log: Log = this.log): Promise<void> {
    const added = await ask('record a portal session', () => this.registry.add(entry), deadline);
    if (!added.ok) {
      log.error(
        {
          chargebeePortalLogout: {
            idHash: hashPortalSessionId(entry.id),
            reason: scrub(added.error.message, [entry.customerId, entry.id]),
          },
        },
        'could not record the portal session in the registry; a sign-out everywhere will miss it',
      );
      return;
    }
    const dropped = Array.isArray(added.value?.dropped) ? added.value.dropped : [];
    if (dropped.length > 0)
      log.warn(
        {
          chargebeePortalLogout: {
            customerHash: this.hashCustomer(entry.customerId),
            dropped: dropped.length,
            droppedIdHashes: dropped.slice(0, 20).map(hashPortalSessionId),
          },
        },
        'the registry is full for this customer (or in all); the oldest portal sessions were dropped from it',
      );
  }

  /**
   * The registered portal sessions of a customer on these sites, each site's oldest first. An error when
   * the registry could not answer for one of them by `deadline` (the others' entries are still given).
   */
  async ofCustomer(
    sites: readonly string[],
    customerId: string,
    deadline: number,
    log: Log = this.log,
  ): Promise<{
    entries: RegisteredPortalSession[];
    failure?: { error: PortalSessionRegistryError; reason: PortalLogoutReason };
  }> {
    const answers = await Promise.all(
      sites.map((site) =>
        ask('list the portal sessions of a customer', () => this.registry.list(site, customerId), deadline),
      ),
    );
    const entries: RegisteredPortalSession[] = [];
    let failure: { error: PortalSessionRegistryError; reason: PortalLogoutReason } | undefined;
    let invalid = 0;
    answers.forEach((answer, i) => {
      if (!answer.ok) {
        failure ??= { error: answer.error, reason: answer.reason };
        return;
      }
      const checked = checkedEntries(sites[i], customerId, answer.value);
      entries.push(...checked.entries);
      invalid += checked.invalid;
    });
    if (invalid > 0)
      log.warn(
        { chargebeePortalLogout: { invalid } },
        `the registry gave back entries that are not valid portal sessions of the customer asked for, or more than ${MAX_PER_CUSTOMER_LIMIT}; they were ignored`,
      );
    if (failure) {
      // The registry's own message may quote the customer it was asked for.
      failure = { ...failure, error: new PortalSessionRegistryError(scrub(failure.error.message, [customerId])) };
      log.error(
        {
          chargebeePortalLogout: {
            customerHash: this.hashCustomer(customerId),
            reason: failure.reason,
            error: failure.error.message,
          },
        },
        "could not read the customer's portal sessions from the registry",
      );
    }
    return failure ? { entries, failure } : { entries };
  }

  /**
   * Portal sessions that ended (logged out, already out, unknown to Chargebee) leave the registry. Waits at most until `waitUntil` (on `now()`); the call itself goes
   * on in the background a little longer when that is too short, and a failure is logged.
   */
  async ended(bySite: ReadonlyMap<string, readonly string[]>, waitUntil: number, log: Log = this.log): Promise<void> {
    if (bySite.size === 0) return;
    const forgetting = Promise.all(
      [...bySite].map(async ([site, portalSessionIds]) => {
        const ids = [...new Set(portalSessionIds)];
        const removed = await ask(
          'forget ended portal sessions',
          () => this.registry.remove(site, ids),
          Math.max(waitUntil, deadlineIn(FORGET_MIN_MS)),
        );
        if (!removed.ok)
          log.warn(
            { chargebeePortalLogout: { portalSessions: ids.length, reason: scrub(removed.error.message, ids) } },
            'could not forget ended portal sessions in the registry; they expire there later',
          );
      }),
    );
    await settleWithin(() => forgetting, waitUntil);
  }
}
