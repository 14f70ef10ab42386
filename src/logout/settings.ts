import type { Request } from 'express';
import type { ChargebeeClient } from '../chargebee/client';
import type { EventSuppression } from '../base/origin-headers';
import type { PortalSessionOutcome } from '../base/outcome';
import type { LogoutObserver } from '../observability/observer';
import type { DeferredLogoutStore } from '../queue/store';
import type { CircuitBreakerOptions } from '../reliability/circuit-breaker';
import type { RetryPolicy } from '../reliability/retry';

/**
 * What the logout layer works with: the app's options after validation, with the clients and the observer
 * built. `options/` makes it; nothing here reads an option as the app wrote it.
 */
export interface CoreSettings {
  /** The client of a business entity: its override, else the default one. */
  clientFor: (entityId: string | undefined) => ChargebeeClient;
  /** Every client in use, one per site and key. */
  clients: ChargebeeClient[];
  /** The drain-rate and registry tag of a client's Chargebee site (see `siteKey`), made once per client. */
  siteOf: (client: ChargebeeClient) => string;
  /** Longest time one Chargebee call may take. */
  timeoutMs: number;
  retry: RetryPolicy | false;
  deferred: false | DeferredSettings;
  circuitBreaker: false | Required<CircuitBreakerOptions>;
  onOutcome?: (outcome: PortalSessionOutcome, req: Request | undefined) => unknown;
  /** Counts for `stats()`, and OpenTelemetry when the app has it. */
  observer: LogoutObserver;
}

/** The `deferred` option after validation. */
export interface DeferredSettings {
  store: DeferredLogoutStore;
  maxAgeMs: number;
  baseDelayMs: number;
  maxDelayMs: number;
  concurrency: number;
  /** Background requests per minute per Chargebee site; `undefined`: no limit. */
  ratePerMinute: number | undefined;
}

/** The `expiry` option after validation; `undefined` when off. */
export interface ExpirySettings {
  /** Maximum portal-session age, ms; `undefined`: none. */
  maxAgeMs: number | undefined;
  /** Idle time after which an app session's portal sessions are logged out, ms; `undefined`: none. */
  idleMs: number | undefined;
  /** Least time between two writes of the activity hook per app session, ms. */
  activityIntervalMs: number;
}

/** What scheduled logouts need besides the expiry settings. */
export interface ExpiryContext {
  clientFor: CoreSettings['clientFor'];
  /** The drain-rate tag of a business entity's Chargebee site. */
  siteFor: (entityId: string | undefined) => string;
  suppressEvents: EventSuppression;
  /** Most portal sessions remembered per app session. */
  maxRemembered: number;
}
