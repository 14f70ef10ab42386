import { createHash } from 'node:crypto';

/**
 * The drain's share of Chargebee's rate limit: a token bucket per Chargebee site, plus a pause per site
 * when Chargebee answered 429 with `Retry-After`. Chargebee limits each site (150 requests a minute on test
 * sites and small plans), so background logouts after an outage must leave most of it to the app.
 */

/** Default background logout requests per minute per site: a fifth of a 150/min site. */
export const DEFAULT_DRAIN_RATE_PER_MINUTE = 30;
/** Most requests the drain makes at once after a quiet time. */
export const MAX_DRAIN_BURST = 10;

/** The rate a drain may use, per Chargebee site. */
export interface DrainRate {
  /** Requests per minute. */
  perMinute: number;
  /** Most requests at once after a quiet time (the bucket's size). */
  burst: number;
}

/** No limit on requests; a 429's pause still holds. */
export const NO_RATE_LIMIT: Readonly<DrainRate> = { perMinute: 0, burst: 0 };

/** The rate for `perMinute`: a burst of about ten seconds' worth, 1 to {@link MAX_DRAIN_BURST}. */
export function drainRate(perMinute: number): DrainRate {
  return { perMinute, burst: Math.min(MAX_DRAIN_BURST, Math.max(1, Math.ceil(perMinute / 6))) };
}

/**
 * A short tag of a Chargebee site (its base URL), safe in a Redis key or a log line: the rate limit is the
 * site's, whatever business entity or API key a logout uses.
 */
export function siteKey(baseUrl: string): string {
  return createHash('sha256').update(baseUrl).digest('hex').slice(0, 16);
}

/** Token buckets and pauses per site, in this process's memory. Time is passed in. */
export class SiteRateLimiter {
  private readonly sites = new Map<string, { tokens: number; at: number; pausedUntil: number }>();
  private limit: DrainRate | undefined;

  /** @param rate `undefined` (or 0 per minute): pauses only. */
  constructor(rate: DrainRate | undefined) {
    this.rate = rate;
  }

  get rate(): DrainRate | undefined {
    return this.limit;
  }

  set rate(rate: DrainRate | undefined) {
    this.limit = rate !== undefined && rate.perMinute > 0 ? rate : undefined;
  }

  private state(site: string, now: number) {
    let s = this.sites.get(site);
    if (!s) {
      s = { tokens: this.rate?.burst ?? 0, at: now, pausedUntil: 0 };
      this.sites.set(site, s);
    } else if (this.rate && now > s.at) {
      s.tokens = Math.min(this.rate.burst, s.tokens + ((now - s.at) * this.rate.perMinute) / 60_000);
      s.at = now;
    }
    return s;
  }

  /** Takes one request for `site`: 0 when granted, otherwise the milliseconds until one may be granted. */
  take(site: string, now: number): number {
    const s = this.state(site, now);
    if (s.pausedUntil > now) return s.pausedUntil - now;
    if (!this.rate) return 0;
    if (s.tokens >= 1) {
      s.tokens -= 1;
      return 0;
    }
    return Math.ceil(((1 - s.tokens) * 60_000) / this.rate.perMinute);
  }

  /** Requests `site` could take now without waiting. */
  available(site: string, now: number): number {
    const s = this.state(site, now);
    if (s.pausedUntil > now) return 0;
    return this.rate ? Math.floor(s.tokens) : Infinity;
  }

  /**
   * Requests that some site seen so far could take now (the bucket's size before any site is seen), and
   * otherwise the milliseconds until one could: bounds a take from a store that does not limit the rate.
   */
  allowance(now: number): { requests: number; waitMs: number } {
    if (this.sites.size === 0) return { requests: this.rate?.burst ?? Infinity, waitMs: 0 };
    let requests = 0;
    let waitMs = Infinity;
    for (const site of this.sites.keys()) {
      const available = this.available(site, now);
      requests = Math.max(requests, available);
      if (available === 0) {
        const s = this.state(site, now);
        const refill = this.rate ? Math.ceil(((1 - s.tokens) * 60_000) / this.rate.perMinute) : 0;
        waitMs = Math.min(waitMs, Math.max(s.pausedUntil - now, refill));
      }
    }
    return { requests, waitMs: requests > 0 ? 0 : waitMs };
  }

  /** Stops granting requests for `site` until `until`. */
  pause(site: string, until: number, now: number): void {
    const s = this.state(site, now);
    s.pausedUntil = Math.max(s.pausedUntil, until);
  }

  /** When the pause of `site` ends; 0 when it is not paused. */
  pausedUntil(site: string): number {
    return this.sites.get(site)?.pausedUntil ?? 0;
  }

  /** The latest pause of any site, 0 when none. */
  latestPause(): number {
    let until = 0;
    for (const s of this.sites.values()) until = Math.max(until, s.pausedUntil);
    return until;
  }
}
