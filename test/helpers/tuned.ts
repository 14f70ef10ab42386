import type { ChargebeePortalLogoutOptions, PortalLogoutMiddleware } from '../../src';
import { createPortalLogout } from '../../src/middleware/middleware';
import type { Tuning } from '../../src/options/tuning';

/**
 * The middleware's options plus the package's fixed figures (`tuning`: backoffs, attempt time, sockets,
 * ...), which an app cannot set and the tests scale down so that the suites run in seconds.
 */
export interface TestOptions extends ChargebeePortalLogoutOptions {
  tuning?: Partial<Tuning>;
}

/** The middleware as `chargebeePortalLogout` builds it, with `options.tuning` applied. */
export function tunedPortalLogout(options: TestOptions): PortalLogoutMiddleware {
  const { tuning, ...rest } = options;
  return createPortalLogout(rest, tuning);
}

/** Short attempts and backoffs for the suites. */
export const FAST_TUNING: Partial<Tuning> = {
  attemptTimeoutMs: 250,
  retryBaseDelayMs: 10,
  retryMaxDelayMs: 40,
  queueBaseDelayMs: 20,
  queueMaxDelayMs: 100,
};

/** A background backoff of a minute: a deferred logout stays in the queue for the rest of the test. */
export const QUIET_QUEUE: Partial<Tuning> = { queueBaseDelayMs: 60_000, queueMaxDelayMs: 60_000 };

/** `base` and `extra` merged, their tunings too. */
export function withOptions(base: Partial<TestOptions>, extra: Partial<TestOptions>): Partial<TestOptions> {
  return { ...base, ...extra, tuning: { ...base.tuning, ...extra.tuning } };
}
