import { now as monotonicNow } from '../base/time';

/**
 * A circuit breaker for one Chargebee client (one site and key). After `failureThreshold` failures in a
 * row it opens: callers skip the call (the middleware defers the logout) for `coolOffMs`. Then it lets
 * one probe through (half-open); the probe's success closes it, its failure opens it again. The middleware
 * records one result per inline logout (all its attempts), and the successes of background attempts.
 */

export interface CircuitBreakerOptions {
  /** Consecutive failures that open the breaker. Default 5. */
  failureThreshold?: number;
  /** How long the breaker stays open before a probe. Default 30 000 ms. */
  coolOffMs?: number;
}

export const DEFAULT_CIRCUIT_BREAKER = { failureThreshold: 5, coolOffMs: 30_000 } as const;

export type CircuitState = 'closed' | 'open' | 'half_open';

export class CircuitBreaker {
  private readonly failureThreshold: number;
  private readonly coolOffMs: number;
  private failures = 0;
  private openedAt: number | undefined;
  private firstOpenedAt: number | undefined;
  private probing = false;
  /** Grows when the breaker opens or closes: a permit from another generation reports stale news. */
  private generation = 0;
  private closedPermit: CallPermit = { probe: false, generation: 0 };

  constructor(
    options: CircuitBreakerOptions = {},
    private readonly now: () => number = monotonicNow,
  ) {
    this.failureThreshold = options.failureThreshold ?? DEFAULT_CIRCUIT_BREAKER.failureThreshold;
    this.coolOffMs = options.coolOffMs ?? DEFAULT_CIRCUIT_BREAKER.coolOffMs;
  }

  get state(): CircuitState {
    if (this.openedAt === undefined) return 'closed';
    return this.now() - this.openedAt >= this.coolOffMs ? 'half_open' : 'open';
  }

  /** When a probe will be let through (ms, on this breaker's clock); `undefined` when closed. */
  get retryAt(): number | undefined {
    return this.openedAt === undefined ? undefined : this.openedAt + this.coolOffMs;
  }

  /**
   * When the breaker opened after last being closed (ms, on this breaker's clock); failed probes that open it
   * again keep this time. `undefined` when closed. For health checks: how long Chargebee has been out.
   */
  get openSince(): number | undefined {
    return this.openedAt === undefined ? undefined : this.firstOpenedAt;
  }

  /**
   * May a call be made now? Closed: yes. Open: no. Half-open: yes for one probe at a time. A permit must
   * be handed back to {@link record} once the call is over.
   */
  acquire(): CallPermit | undefined {
    const state = this.state;
    if (state === 'closed') {
      // One permit per generation while closed: a healthy call allocates nothing.
      if (this.closedPermit.generation !== this.generation)
        this.closedPermit = { probe: false, generation: this.generation };
      return this.closedPermit;
    }
    if (state === 'open' || this.probing) return undefined;
    this.probing = true;
    return { probe: true, generation: this.generation };
  }

  /**
   * True while a permit is still current: the breaker has not opened (or closed) since it was given. A
   * logout retrying under an older permit should stop and defer.
   */
  isCurrent(permit: CallPermit): boolean {
    return permit.generation === this.generation && (permit.probe || this.state === 'closed');
  }

  /**
   * The result of a call: `'failure'` for a failure another attempt may cure (no answer, 429, 5xx),
   * `'success'` for any other answer (Chargebee is up, even if it said 404), `'neutral'` for a call that
   * proved nothing either way. Calls made without a permit (the deferred queue's) count as well.
   */
  record(result: 'success' | 'failure' | 'neutral', permit?: CallPermit): void {
    if (permit?.probe) this.probing = false;
    // A call that started before the breaker last opened or closed tells nothing about now.
    if (result === 'neutral' || (permit && permit.generation !== this.generation)) return;
    if (result === 'success') {
      if (this.openedAt !== undefined) this.generation += 1;
      this.failures = 0;
      this.openedAt = undefined;
      return;
    }
    this.failures += 1;
    // A failed probe reopens for a full cool-off.
    if (permit?.probe || (this.openedAt === undefined && this.failures >= this.failureThreshold)) {
      if (this.openedAt === undefined) this.firstOpenedAt = this.now();
      this.openedAt = this.now();
      this.generation += 1;
    }
  }
}

/** Leave to make one call; `probe` when it is the half-open breaker's test call. */
export interface CallPermit {
  readonly probe: boolean;
  readonly generation: number;
}
