import { createHash } from 'node:crypto';

/**
 * The drain's share of Chargebee's rate limit: a token bucket per Chargebee site, plus a pause per site
 * when Chargebee answered 429 with `Retry-After`. Chargebee limits each site (150 requests a minute on test
 * sites and small plans), so background logouts after an outage must leave most of it to the app.
 *
 * The stores apply it (the queue never limits by itself): the in-memory store with {@link SiteRateLimiter},
 * a shared store in one atomic step of its own (the same bucket, written in its language), so that every
 * instance shares one budget.
 */

/** Default background logout requests per minute per site: a fifth of a 150/min site. */
export const DEFAULT_DRAIN_RATE_PER_MINUTE = 30;
/** Most requests the drain makes at once after a quiet time. */
export const MAX_DRAIN_BURST = 10;

/** The rate a drain may use, per Chargebee site. */
export interface DrainRate {
  /** Requests per minute; 0 for no limit (a 429's pause still holds). */
  perMinute: number;
  /** Most requests at once after a quiet time (the bucket's size). */
  burst: number;
}

/** No limit on requests; a 429's pause still holds. */
export const NO_RATE_LIMIT: Readonly<DrainRate> = { perMinute: 0, burst: 0 };

/** The rate for `perMinute` (`undefined`: no limit): a burst of about ten seconds' worth, 1 to {@link MAX_DRAIN_BURST}. */
export function drainRate(perMinute: number | undefined): DrainRate {
  if (perMinute === undefined || perMinute <= 0) return NO_RATE_LIMIT;
  return { perMinute, burst: Math.min(MAX_DRAIN_BURST, Math.max(1, Math.ceil(perMinute / 6))) };
}

/**
 * A short tag of a Chargebee site (its base URL), safe in a store key or a log line: the rate limit is the
 * site's, whatever business entity or API key a logout uses.
 */
export function siteKey(baseUrl: string): string {
  return createHash('sha256').update(baseUrl).digest('hex').slice(0, 16);
}

/** Token buckets and pauses per site, in this process's memory. Time (ms) is passed in. */
export class SiteRateLimiter {
  private readonly sites = new Map<string, { tokens: number; at: number; pausedUntil: number }>();
  private rate: DrainRate = NO_RATE_LIMIT;

  /** Uses `rate` from now on (a store is told the rate at each take). */
  use(rate: DrainRate): void {
    this.rate = rate;
  }

  private state(site: string, now: number) {
    let s = this.sites.get(site);
    if (!s) {
      s = { tokens: this.rate.burst, at: now, pausedUntil: 0 };
      this.sites.set(site, s);
    } else if (now > s.at) {
      if (this.rate.perMinute > 0)
        s.tokens = Math.min(this.rate.burst, s.tokens + ((now - s.at) * this.rate.perMinute) / 60_000);
      s.at = now;
    }
    return s;
  }

  /** Milliseconds until `site` may make a request (0: now), taking nothing. */
  wait(site: string, now: number): number {
    const s = this.state(site, now);
    if (s.pausedUntil > now) return s.pausedUntil - now;
    return tokenWait(s.tokens, this.rate.perMinute);
  }

  /** Takes one request for `site`; call only when {@link wait} is 0. */
  take(site: string, now: number): void {
    if (this.rate.perMinute > 0) this.state(site, now).tokens -= 1;
  }

  /** Stops granting requests for `site` until `until`. */
  pause(site: string, until: number, now: number): void {
    const s = this.state(site, now);
    s.pausedUntil = Math.max(s.pausedUntil, until);
  }
}

/** Milliseconds until a bucket holding `tokens` has one again, at `perMinute` (0: now, or no limit). */
export function tokenWait(tokens: number, perMinute: number): number {
  if (perMinute <= 0 || tokens >= 1) return 0;
  return Math.ceil(((1 - tokens) * 60_000) / perMinute);
}
