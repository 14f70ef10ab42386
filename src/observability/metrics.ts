/**
 * The metrics: the instruments of one meter, what each records, and the observable gauges. The instruments
 * are made on first use for the meter provider in force, and made again when the global provider changes: a
 * meter taken before the app registered its SDK would stay a no-op for good. The API's no-op meter is
 * recognised once per provider and nothing is built for it, so that without an SDK `instruments()` answers
 * `undefined` and the caller skips every attribute object. No method throws: a faulty provider must not
 * change a logout.
 */
import type {
  Attributes,
  BatchObservableCallback,
  Counter,
  Histogram,
  Meter,
  MeterProvider,
  ObservableGauge,
} from '@opentelemetry/api';
import type { PortalSessionOutcome } from '../base/outcome';
import { VERSION } from '../base/version';
import {
  ATTEMPT_BUCKETS,
  ATTRIBUTES,
  CIRCUIT_STATES,
  DURATION_BUCKETS_S,
  INSTRUMENTATION_NAME,
  METRIC_NAMES,
  type CircuitState,
} from './names';

type Api = typeof import('@opentelemetry/api');
type Provider = Pick<MeterProvider, 'getMeter'>;

/** What the gauges read, when the SDK collects. */
export interface GaugeReading {
  /** Absent when the middleware has no deferred queue. */
  queue?: { depth: number; oldestJobAgeMs: number | undefined };
  circuits: Array<{ site: string; state: CircuitState }>;
}

/** The instruments made from one meter, and what they record. */
export class Instruments {
  private readonly portalSessions: Counter;
  private readonly logoutDuration: Histogram;
  private readonly callDuration: Histogram;
  private readonly attempts: Histogram;
  private gauges: ObservableGauge[] = [];
  private observer: BatchObservableCallback | undefined;

  constructor(
    readonly provider: Provider,
    private readonly meter: Meter,
  ) {
    const duration = (name: string, description: string) =>
      meter.createHistogram(name, {
        description,
        unit: 's',
        advice: { explicitBucketBoundaries: DURATION_BUCKETS_S },
      });
    this.portalSessions = meter.createCounter(METRIC_NAMES.portalSessions, {
      description:
        'Portal sessions handled, by status: at the logout (background false), and the final results of deferred logouts (background true)',
      unit: '{portal_session}',
    });
    this.logoutDuration = duration(METRIC_NAMES.logoutDuration, 'Time one logout took in the request, by result');
    this.callDuration = duration(METRIC_NAMES.callDuration, 'Time of one call to Chargebee (one attempt), by site');
    this.attempts = meter.createHistogram(METRIC_NAMES.attempts, {
      description: 'Calls made to Chargebee for one portal session: inline, or in all for a deferred one',
      unit: '{attempt}',
      advice: { explicitBucketBoundaries: ATTEMPT_BUCKETS },
    });
  }

  /** One logout's duration; `errorType` is given when it failed. */
  logout(result: string, durationMs: number, errorType: string | undefined): void {
    try {
      const attributes: Attributes = { [ATTRIBUTES.result]: result };
      if (errorType !== undefined) attributes[ATTRIBUTES.errorType] = errorType;
      this.logoutDuration.record(durationMs / 1000, attributes);
    } catch {
      // A faulty provider must not change the logout.
    }
  }

  /** One portal session handled, and the calls it took; `errorType` is given when it failed. */
  portalSession(outcome: PortalSessionOutcome, background: boolean, errorType: string | undefined): void {
    try {
      const attributes: Attributes = { [ATTRIBUTES.status]: outcome.status, [ATTRIBUTES.background]: background };
      if (outcome.reason) attributes[ATTRIBUTES.reason] = outcome.reason;
      if (outcome.businessEntityId) attributes[ATTRIBUTES.businessEntityId] = outcome.businessEntityId;
      if (errorType !== undefined) attributes[ATTRIBUTES.errorType] = errorType;
      this.portalSessions.add(1, attributes);
      if (outcome.attempts !== undefined)
        this.attempts.record(outcome.attempts, {
          [ATTRIBUTES.status]: outcome.status,
          [ATTRIBUTES.background]: background,
        });
    } catch {
      // A faulty provider must not change the logout.
    }
  }

  /** One call to Chargebee: the HTTP status when it answered, the error type when it failed. */
  call(
    site: string,
    background: boolean,
    durationMs: number,
    httpStatus: number | undefined,
    errorType: string | undefined,
  ): void {
    try {
      const attributes: Attributes = { [ATTRIBUTES.site]: site, [ATTRIBUTES.background]: background };
      if (httpStatus !== undefined) attributes[ATTRIBUTES.httpStatusCode] = httpStatus;
      if (errorType !== undefined) attributes[ATTRIBUTES.errorType] = errorType;
      this.callDuration.record(durationMs / 1000, attributes);
    } catch {
      // A faulty provider must not change the logout.
    }
  }

  /** Registers the gauges with this meter, once. A failure leaves them out; the recordings above go on. */
  observe(read: () => Promise<GaugeReading>): void {
    if (this.gauges.length) return;
    try {
      const meter = this.meter;
      const depth = meter.createObservableGauge(METRIC_NAMES.queueDepth, {
        description: 'Deferred logouts waiting or under way',
        unit: '{job}',
      });
      const age = meter.createObservableGauge(METRIC_NAMES.queueOldestAge, {
        description: 'Time since the first attempt of the oldest deferred logout (0 when the queue is empty)',
        unit: 's',
      });
      const circuit = meter.createObservableGauge(METRIC_NAMES.circuitState, {
        description: 'Circuit breaker state per Chargebee site: 1 for the current state, 0 for the others',
        unit: '1',
      });
      const observer: BatchObservableCallback = async (result) => {
        const reading = await read();
        if (reading.queue) {
          result.observe(depth, reading.queue.depth);
          result.observe(age, (reading.queue.oldestJobAgeMs ?? 0) / 1000);
        }
        for (const c of reading.circuits) {
          for (const state of CIRCUIT_STATES)
            result.observe(circuit, c.state === state ? 1 : 0, {
              [ATTRIBUTES.site]: c.site,
              [ATTRIBUTES.circuitState]: state,
            });
        }
      };
      this.gauges = [depth, age, circuit];
      this.observer = observer;
      meter.addBatchObservableCallback(observer, this.gauges);
    } catch {
      // Without gauges: the counters and histograms still record.
    }
  }

  /** Removes the gauges' callback, so that a provider left behind no longer reads the queue. */
  unobserve(): void {
    try {
      if (this.observer) this.meter.removeBatchObservableCallback(this.observer, this.gauges);
    } catch {
      // Nothing more to undo.
    }
  }
}

/** The instruments of one middleware, for whichever meter provider is in force when something records. */
export class Metrics {
  /** The class of the API's no-op meter: the API has no other way to say that no SDK is registered. */
  private readonly noopMeter: new () => unknown;
  private current: Instruments | undefined;
  /** A provider whose meter is the API's no-op one: asked once, then skipped. */
  private noopProvider: unknown;
  private read: (() => Promise<GaugeReading>) | undefined;
  private closed = false;

  constructor(
    private readonly api: Api,
    private readonly given: Provider | undefined,
  ) {
    this.noopMeter = api.createNoopMeter().constructor as new () => unknown;
  }

  /**
   * The instruments of the meter provider in force (the one given, else the global one), with the gauges
   * registered once {@link observe} was called; `undefined` when nothing would record: the API's no-op
   * provider, a provider that throws, or after {@link close}.
   */
  instruments(): Instruments | undefined {
    if (this.closed) return undefined;
    const provider = this.given ?? this.api.metrics.getMeterProvider();
    const current = this.current;
    if (current?.provider === provider) return this.withGauges(current);
    if (provider === this.noopProvider) return undefined;
    current?.unobserve();
    this.current = undefined;
    try {
      const meter = provider.getMeter(INSTRUMENTATION_NAME, VERSION);
      if (meter instanceof this.noopMeter) {
        this.noopProvider = provider;
        return undefined;
      }
      this.current = new Instruments(provider, meter);
    } catch {
      return undefined;
    }
    return this.withGauges(this.current);
  }

  /** What the gauges read. Registered with the meter now, and again whenever the global provider changes. */
  observe(read: () => Promise<GaugeReading>): void {
    this.read = read;
    this.instruments();
  }

  /** Stops the gauges (their callback is removed) and every recording. */
  close(): void {
    this.closed = true;
    this.current?.unobserve();
  }

  private withGauges(instruments: Instruments): Instruments {
    if (this.read) instruments.observe(this.read);
    return instruments;
  }
}
