import { epochNow } from '../base/time';
import type { PortalLogoutOutcome, PortalSessionStatus } from '../base/outcome';

/** The snapshot `portalLogout.stats()` resolves with. Plain JSON: counts, states and ages, no ID or email. */
export interface PortalLogoutStats {
  /** When the counts started (the middleware's creation), ISO 8601. */
  since: string;
  /** Logouts since start, by result. */
  logouts: Record<PortalLogoutOutcome['result'], number>;
  /** Portal sessions since start, by their status at the logout (a deferred one counts as `deferred`). */
  portalSessions: Record<PortalSessionStatus, number>;
  /** Final results of deferred logouts since start, by status (scheduled logouts included). */
  deferredResults: Record<DeferredResultStatus, number>;
  /** The deferred-logout queue; `null` with `deferred: false`. */
  queue: DeferredQueueSnapshot | null;
  /** One entry per Chargebee site (and key) in use; empty with `circuitBreaker: false`. */
  circuits: CircuitSnapshot[];
}

/** Statuses a deferred logout can end with. */
export type DeferredResultStatus = 'logged_out' | 'already_logged_out' | 'not_found' | 'failed';

export interface DeferredQueueSnapshot {
  /** Jobs in the store, waiting or under way. `null` when the store could not be read. */
  depth: number | null;
  /** Background attempts under way in this process. */
  inFlight: number;
  /** Jobs kept in this process's memory while a shared store does not answer (counted in `depth` too). */
  inMemory: number;
  /** Time since the first attempt of the oldest job, in ms; `null` when the queue is empty or cannot tell. */
  oldestJobAgeMs: number | null;
  /** True for a shared store that outlives this process. */
  durable: boolean;
  /** Jobs accepted since start. */
  queued: number;
  /**
   * Scheduled logouts accepted since start (option `expiry`). Each waits in the queue, counted in `depth`,
   * until it is due; its final result counts in `deferredResults`.
   */
  scheduled: number;
  /** Jobs that reached a final answer from Chargebee since start. */
  done: number;
  /** Jobs given up at their maximum age since start. */
  expired: number;
  /** Logouts lost since start: store full, or not drained at shutdown. */
  lost: number;
}

export interface CircuitSnapshot {
  /** The site: `acme` for `https://acme.chargebee.com`, else host and path (`127.0.0.1:4100/acme-test`). */
  site: string;
  /** `open`: no call is made; `half_open`: the cool-off is over and one probe may go. */
  state: 'closed' | 'open' | 'half_open';
  /** How long it has been open (failed probes included) in ms; `null` when closed. */
  openForMs: number | null;
}

const RESULTS: ReadonlyArray<PortalLogoutOutcome['result']> = [
  'nothing_remembered',
  'ended',
  'deferred',
  'failed',
  'skipped_cross_site',
];
const STATUSES: readonly PortalSessionStatus[] = [
  'logged_out',
  'already_logged_out',
  'not_found',
  'invalid_id',
  'deferred',
  'failed',
];
const DEFERRED_STATUSES: readonly DeferredResultStatus[] = ['logged_out', 'already_logged_out', 'not_found', 'failed'];

function zeros<K extends string>(keys: readonly K[]): Record<K, number> {
  return Object.fromEntries(keys.map((k) => [k, 0])) as Record<K, number>;
}

/** Counts since start, kept whether or not OpenTelemetry is in use. */
export class OutcomeCounts {
  readonly since = new Date(epochNow()).toISOString();
  readonly logouts = zeros(RESULTS);
  readonly portalSessions = zeros(STATUSES);
  readonly deferredResults = zeros(DEFERRED_STATUSES);

  logout(outcome: PortalLogoutOutcome): void {
    this.logouts[outcome.result] = (this.logouts[outcome.result] ?? 0) + 1;
    for (const p of outcome.portalSessions) this.portalSessions[p.status] = (this.portalSessions[p.status] ?? 0) + 1;
  }

  deferredResult(status: PortalSessionStatus): void {
    const key = status as DeferredResultStatus;
    this.deferredResults[key] = (this.deferredResults[key] ?? 0) + 1;
  }

  snapshot(): Pick<PortalLogoutStats, 'since' | 'logouts' | 'portalSessions' | 'deferredResults'> {
    return {
      since: this.since,
      logouts: { ...this.logouts },
      portalSessions: { ...this.portalSessions },
      deferredResults: { ...this.deferredResults },
    };
  }
}

/** A short, non-secret name of a Chargebee site from a client's base URL (which holds no credentials). */
export function siteLabel(baseUrl: string): string {
  try {
    const url = new URL(baseUrl);
    const chargebee = /^([a-z0-9-]+)\.(?:[a-z0-9-]+\.)*chargebee\.com$/i.exec(url.hostname);
    if (chargebee) return chargebee[1].toLowerCase();
    return `${url.host}${url.pathname.replace(/\/api\/v2\/?$/, '').replace(/\/+$/, '')}`;
  } catch {
    return 'unknown';
  }
}
