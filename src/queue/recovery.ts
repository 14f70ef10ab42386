import type { Log } from '../base/logging';
import { after, epochNow, type Timer } from '../base/time';
import type { StoreLink } from './spill';

/**
 * A backlog's recovery: while Chargebee fails for a site, the jobs of that site back off (up to a minute
 * apart); when it answers again they should not wait out those backoffs. So while a site fails, one of its
 * backed-off jobs is made due every {@link PROBE_MS} (a probe, within the drain rate); the first answer for
 * the site, inline or in the background, makes all of its backed-off jobs due at once, on every instance
 * of a shared store. The drain rate still applies.
 */

/** How often a failing site's earliest backed-off job is tried, whatever its backoff. */
export const PROBE_MS = 2000;

export class SiteRecovery {
  /** The sites that failed and have not answered since, with the timer of their next probe. */
  private readonly failing = new Map<string, Timer>();
  private stopped = false;

  constructor(
    private readonly link: StoreLink,
    /** Wakes the pump at a time (epoch). */
    private readonly wake: (at: number) => void,
    private readonly log: Log,
  ) {}

  /** A call to `site` failed with a retryable error (inline or in the background). */
  failed(site: string): void {
    if (this.stopped || this.failing.has(site)) return;
    this.failing.set(
      site,
      after(PROBE_MS, () => void this.probe(site)),
    );
  }

  /**
   * Chargebee gave `site` an answer (not a retryable failure). `afterRetries`: the job that got it had been
   * tried before, so the site's backlog may be backing off even if this process saw no failure.
   */
  answered(site: string, afterRetries: boolean): void {
    const probe = this.failing.get(site);
    if (!probe && !afterRetries) return;
    probe?.cancel();
    this.failing.delete(site);
    void this.wakeAll(site);
  }

  stop(): void {
    this.stopped = true;
    for (const timer of this.failing.values()) timer.cancel();
    this.failing.clear();
  }

  private async probe(site: string): Promise<void> {
    const woken = await this.wakeUp(site, 1);
    if (this.stopped || !this.failing.has(site)) return;
    if (woken === 0) {
      // Nothing of the site backs off (or the store does not answer): a new failure starts probing again.
      this.failing.delete(site);
      return;
    }
    this.failing.set(
      site,
      after(PROBE_MS, () => void this.probe(site)),
    );
  }

  private async wakeAll(site: string): Promise<void> {
    const woken = await this.wakeUp(site, undefined);
    if (woken > 0)
      this.log.info(
        { chargebeePortalLogout: { site, due: woken } },
        `Chargebee answers again: ${woken} deferred logouts are due now, within the drain rate`,
      );
  }

  /** Makes up to `count` backed-off jobs of `site` due now, in the spill and the store; how many. */
  private async wakeUp(site: string, count: number | undefined): Promise<number> {
    let woken = this.link.spill?.wakeSite(site, count) ?? 0;
    if (this.link.reachable) {
      try {
        const answer: unknown = await this.link.call(() => this.link.store.wakeSite(site, count));
        woken += typeof answer === 'number' ? answer : 0;
        this.link.answered();
      } catch (error) {
        this.link.failed(error);
      }
    }
    if (woken > 0) this.wake(epochNow());
    return woken;
  }
}
