import type { ChargebeeClient } from '../chargebee/client';
import type { PortalLogoutOutcome, PortalSessionOutcome } from '../base/outcome';
import type { CircuitBreaker } from '../reliability/circuit-breaker';
import type { DeferredLogoutJob } from '../queue/store';
import type { DeferredLogoutQueue, JobAttemptResult } from '../queue/queue';
import { OutcomeCounts, siteLabel, type CircuitSnapshot, type PortalLogoutStats } from './stats';
import type { GaugeReading, Telemetry } from './telemetry';
import { deadlineIn, epochNow, now as monotonicNow, settleWithin } from '../base/time';

/** Longest wait for a deferred-logout store's figures: a store that never answers must not hang a health check. */
export const STORE_READ_TIMEOUT_MS = 1000;

/** What the snapshot reads: the queue and the breakers of one middleware. */
export interface StatsSource {
  queue: DeferredLogoutQueue | undefined;
  breakers: ReadonlyMap<ChargebeeClient, CircuitBreaker>;
  clients: readonly ChargebeeClient[];
  circuitBreaker: boolean;
}

/**
 * What the logout core tells the outside: the counts behind `stats()`, and OpenTelemetry's spans and
 * metrics. The core calls it at a few places only: around a logout, around a Chargebee call, around a
 * background attempt, and with a deferred logout's final result.
 */
export class LogoutObserver {
  private readonly counts = new OutcomeCounts();
  private readonly sites = new Map<ChargebeeClient, string>();
  private source: StatsSource | undefined;

  constructor(readonly telemetry: Telemetry) {}

  /** Runs one logout inside its span and counts its outcome. */
  logout(work: () => Promise<PortalLogoutOutcome>): Promise<PortalLogoutOutcome> {
    return this.telemetry.logout(work).then(
      (outcome) => {
        this.counts.logout(outcome);
        return outcome;
      },
      (error: unknown) => {
        this.counts.logout({ result: 'failed', portalSessions: [], durationMs: 0 });
        throw error;
      },
    );
  }

  /** A logout that made no call at all (a cross-site GET). */
  skipped(outcome: PortalLogoutOutcome): void {
    this.counts.logout(outcome);
    this.telemetry.logoutSkipped(outcome);
  }

  /** One call to Chargebee, timed. */
  call<T>(client: ChargebeeClient, background: boolean, call: () => Promise<T>): Promise<T> {
    return this.telemetry.enabled ? this.telemetry.call(this.siteOf(client), background, call) : call();
  }

  /** Fields for a new deferred job: the trace context its attempts link to. */
  jobFields(): { traceparent?: string } {
    const traceparent = this.telemetry.traceparent();
    return traceparent === undefined ? {} : { traceparent };
  }

  /** One background attempt of the deferred queue. */
  attempt(job: DeferredLogoutJob, work: () => Promise<JobAttemptResult>): Promise<JobAttemptResult> {
    return this.telemetry.attempt(job, work);
  }

  /** The final result of a deferred logout. */
  deferredResult(job: DeferredLogoutJob, outcome: PortalSessionOutcome): void {
    this.counts.deferredResult(outcome.status);
    this.telemetry.deferredResult(job, outcome);
  }

  /** Connects the queue and the breakers, once they exist; the gauges start reading them. */
  watch(source: StatsSource): void {
    this.source = source;
    this.telemetry.observe(() => this.stats().then(gaugeReading));
  }

  /** The snapshot of `portalLogout.stats()`. */
  async stats(): Promise<PortalLogoutStats> {
    const source = this.source;
    const queue = source?.queue;
    const now = epochNow();
    let queueSnapshot: PortalLogoutStats['queue'] = null;
    if (queue) {
      const figures = await bounded(queue.figures());
      const depth = figures?.jobs;
      const oldest = figures?.oldestWaitingSince;
      const { queued, scheduled, done, expired, lost, inFlight, inMemory } = queue.stats;
      queueSnapshot = {
        depth: typeof depth === 'number' ? depth : null,
        inFlight,
        inMemory,
        oldestJobAgeMs: oldest === undefined ? null : Math.max(0, now - oldest),
        durable: queue.durable,
        queued,
        scheduled,
        done,
        expired,
        lost,
      };
    }
    const circuits: CircuitSnapshot[] =
      source && source.circuitBreaker
        ? source.clients.map((client) => {
            const breaker = source.breakers.get(client);
            const state = breaker?.state ?? 'closed';
            const since = breaker?.openSince;
            return {
              site: this.siteOf(client),
              state,
              openForMs: state === 'closed' || since === undefined ? null : Math.max(0, monotonicNow() - since),
            };
          })
        : [];
    return { ...this.counts.snapshot(), queue: queueSnapshot, circuits };
  }

  close(): void {
    this.telemetry.close();
  }

  private siteOf(client: ChargebeeClient): string {
    let site = this.sites.get(client);
    if (site === undefined) {
      site = siteLabel(client.baseUrl);
      this.sites.set(client, site);
    }
    return site;
  }
}

function gaugeReading(stats: PortalLogoutStats): GaugeReading {
  return {
    ...(stats.queue && stats.queue.depth !== null
      ? { queue: { depth: stats.queue.depth, oldestJobAgeMs: stats.queue.oldestJobAgeMs ?? undefined } }
      : {}),
    circuits: stats.circuits.map(({ site, state }) => ({ site, state })),
  };
}

/** A store's answer, or `undefined` when it throws, rejects or takes longer than {@link STORE_READ_TIMEOUT_MS}. */
async function bounded<T>(value: Promise<T>): Promise<T | undefined> {
  const settled = await settleWithin(() => value, deadlineIn(STORE_READ_TIMEOUT_MS));
  return settled.status === 'ok' ? settled.value : undefined;
}
