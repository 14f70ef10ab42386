import { hashPortalSessionId } from '../base/identifiers';
import type { Log } from '../base/logging';
import { epochNow } from '../base/time';
import type { Pump } from './pump';
import type { Source, StoreLink } from './spill';
import { isPendingSchedule, type DeferredLogoutJob } from './store';

/**
 * `close()`: the queue takes no more jobs and drains what would die with the process. A store that dies
 * with the process (the in-memory one) is drained: every backed-off job is tried now, rate ignored, a 429's
 * pause kept, until it is empty or the time is up. A shared store is not drained: its jobs are handed over
 * to the other instances; only those kept in memory while it did not answer are moved to it, or drained
 * when it still does not answer. Nothing in a shared store is ever deleted here. What is left is logged
 * with its count and ID hashes.
 */

/** Most ID hashes listed in the shutdown log line. */
const MAX_LOGGED_HASHES = 100;
/** Longest wait, after the drain, for the attempts under way to settle and be counted. */
const SETTLE_MS = 1000;

export interface ClosingQueue {
  link: StoreLink;
  pump: Pump;
  /** The sites of the jobs this process queued. */
  sites: ReadonlySet<string>;
  counts: { lost: number };
  log: Log;
  stats: () => object;
}

export async function shutDown(
  q: ClosingQueue,
  lost: (job: DeferredLogoutJob) => void,
  timeoutMs: number,
): Promise<void> {
  const { link, pump, log } = q;
  const deadline = epochNow() + timeoutMs;
  pump.limitTo(deadline);
  if (link.spill && link.spill.size() > 0) await link.moveToStore(lost, deadline);
  // What dies with the process: the store itself, or the jobs a shared store never took.
  const source: Source = link.spill ?? link.store;
  if (!link.spill || link.spill.size() > 0) {
    // A backed-off logout is late, and goes now; a scheduled logout not due yet is not late, and waits.
    const sites = link.spill ? link.spill.sites() : (storeSites(link.store) ?? q.sites);
    for (const site of sites) {
      try {
        await link.call(() => source.wakeSite(site), Math.max(1, Math.min(link.timeoutMs, deadline - epochNow())));
      } catch (error) {
        link.failed(error);
      }
    }
    await pump.drain(deadline);
  }
  await pump.stop(Math.max(deadline, epochNow()) + SETTLE_MS);

  const left = await leftovers(link, source);
  const notDue = left.jobs.filter((job) => isPendingSchedule(job) && job.notBefore > epochNow());
  if (notDue.length > 0)
    log.warn(
      {
        chargebeePortalLogout: {
          scheduled: notDue.length,
          idHashes: notDue.slice(0, MAX_LOGGED_HASHES).map((j) => hashPortalSessionId(j.portalSessionId)),
        },
      },
      `${notDue.length} scheduled logouts not due yet end with this process's memory; those portal sessions stay open until logged out (a durable store keeps them)`,
    );
  const undrained = Math.max(0, left.count - notDue.length);
  if (undrained > 0) {
    q.counts.lost += undrained;
    const hashes = left.jobs
      .filter((job) => !notDue.includes(job))
      .slice(0, MAX_LOGGED_HASHES)
      .map((j) => hashPortalSessionId(j.portalSessionId));
    log.error(
      { chargebeePortalLogout: { left: undrained, idHashes: hashes } },
      `deferred-logout queue closed with ${undrained} logouts not drained; those portal sessions may stay open`,
    );
  }
  const shared = link.spill ? await leftovers(link, link.store) : { count: 0, jobs: [] };
  if (shared.count > 0) {
    log.warn(
      {
        chargebeePortalLogout: {
          left: shared.count,
          idHashes: shared.jobs.slice(0, MAX_LOGGED_HASHES).map((j) => hashPortalSessionId(j.portalSessionId)),
        },
      },
      `deferred-logout queue closed; ${shared.count} logouts left in the shared store for another instance (handed over)`,
    );
  } else if (undrained === 0) {
    log.info({ chargebeePortalLogout: { deferred: q.stats() } }, 'deferred-logout queue closed, nothing left');
  }
}

/** The sites of a store that can tell them (the in-memory one). */
function storeSites(store: Source): Iterable<string> | undefined {
  const sites = (store as { sites?: () => Iterable<string> }).sites;
  return typeof sites === 'function' ? sites.call(store) : undefined;
}

async function leftovers(link: StoreLink, store: Source): Promise<{ count: number; jobs: DeferredLogoutJob[] }> {
  try {
    const timeoutMs = Math.min(link.timeoutMs, 1000);
    const count = await link.call(() => store.size(), timeoutMs);
    const list = store.list?.bind(store);
    const jobs = count > 0 && list ? await link.call(() => list(MAX_LOGGED_HASHES * 10), timeoutMs) : [];
    return { count, jobs };
  } catch (error) {
    link.failed(error);
    return { count: 0, jobs: [] };
  }
}
