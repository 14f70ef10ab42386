/** Chargebee's per-site rate limit, in fixed windows (see `EmulatorRateLimit`). */
import type { EmulatorRateLimit, EmulatorRateLimitStats } from './types';

interface SiteCounter extends EmulatorRateLimitStats {
  limit: Required<EmulatorRateLimit> | undefined;
  windowStart: number;
  inWindow: number;
}

export class RateLimiter {
  private readonly sites = new Map<string, SiteCounter>();

  private counter(site: string): SiteCounter {
    let counter = this.sites.get(site);
    if (!counter) {
      counter = { limit: undefined, windowStart: 0, inWindow: 0, accepted: 0, limited: 0 };
      this.sites.set(site, counter);
    }
    return counter;
  }

  /** A new limit starts a new window; the counts go on. */
  setLimit(site: string, limit: Required<EmulatorRateLimit> | undefined): void {
    const counter = this.counter(site);
    counter.limit = limit;
    counter.inWindow = 0;
    counter.windowStart = 0;
  }

  limit(site: string): Required<EmulatorRateLimit> | undefined {
    return this.sites.get(site)?.limit;
  }

  /** Counts one request: `0` when it may go on, else the seconds until the window ends (at least 1). */
  take(site: string, now = Date.now()): number {
    const counter = this.counter(site);
    const { limit } = counter;
    if (limit !== undefined) {
      if (counter.inWindow === 0 || now >= counter.windowStart + limit.windowMs) {
        counter.windowStart = now;
        counter.inWindow = 0;
      }
      counter.inWindow++;
      if (counter.inWindow > limit.requests) {
        counter.limited++;
        return Math.max(1, Math.ceil((counter.windowStart + limit.windowMs - now) / 1000));
      }
    }
    counter.accepted++;
    return 0;
  }

  stats(site: string): EmulatorRateLimitStats {
    const counter = this.sites.get(site);
    return { accepted: counter?.accepted ?? 0, limited: counter?.limited ?? 0 };
  }

  clear(): void {
    this.sites.clear();
  }
}
