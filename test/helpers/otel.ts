import http from 'node:http';
import { context, metrics, SpanKind, trace, type Attributes } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import {
  AggregationTemporality,
  DataPointType,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
  type DataPoint,
  type Histogram,
  type MetricData,
} from '@opentelemetry/sdk-metrics';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
  type ReadableSpan,
} from '@opentelemetry/sdk-trace-base';

/** One metric data point, flattened for assertions. */
export interface Point {
  name: string;
  unit: string;
  attributes: Attributes;
  /** A counter's or a gauge's value. */
  value?: number;
  /** A histogram's figures. */
  histogram?: { count: number; sum: number; boundaries: number[] };
}

/**
 * The OpenTelemetry SDK as an app registers it, with in-memory exporters: a global tracer provider and an
 * AsyncLocalStorage context manager for the whole file, and a fresh global meter provider per test (so the
 * cumulative sums start from zero). The spans are reset after each test.
 *
 * `withHttpClientSpans` stands in for an http instrumentation (Jest's module loader keeps the real one from
 * patching `http`): every `http.request` made while it is on opens a CLIENT span in the active context, as
 * the instrumentation does.
 */
export function otelSuite(options: { withHttpClientSpans?: boolean } = {}) {
  const spanExporter = new InMemorySpanExporter();
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spanExporter)] });
  const contextManager = new AsyncLocalStorageContextManager();
  let metricExporter: InMemoryMetricExporter;
  let reader: PeriodicExportingMetricReader;
  let meterProvider: MeterProvider;
  const originalRequest = http.request;

  beforeAll(() => {
    context.setGlobalContextManager(contextManager.enable());
    trace.setGlobalTracerProvider(tracerProvider);
    if (options.withHttpClientSpans) {
      const tracer = tracerProvider.getTracer('http-client-stand-in');
      http.request = function instrumentedRequest(this: unknown, ...args: unknown[]) {
        const span = tracer.startSpan('POST', { kind: SpanKind.CLIENT }, context.active());
        const req = (originalRequest as (...a: unknown[]) => http.ClientRequest).apply(this, args);
        req.once('close', () => span.end());
        return req;
      } as typeof http.request;
    }
  });
  beforeEach(() => {
    metricExporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
    reader = new PeriodicExportingMetricReader({ exporter: metricExporter, exportIntervalMillis: 3_600_000 });
    meterProvider = new MeterProvider({ readers: [reader] });
    metrics.disable();
    metrics.setGlobalMeterProvider(meterProvider);
  });
  afterEach(async () => {
    spanExporter.reset();
    await meterProvider.shutdown();
  });
  afterAll(async () => {
    http.request = originalRequest;
    await tracerProvider.shutdown(); // spans that end later (sockets closing) are dropped, not exported
    trace.disable();
    metrics.disable();
    context.disable();
  });

  return {
    tracerProvider,
    get meterProvider() {
      return meterProvider;
    },
    spans: (): ReadableSpan[] => spanExporter.getFinishedSpans(),
    spansNamed: (name: string) => spanExporter.getFinishedSpans().filter((s) => s.name === name),
    /** Collects now; every data point of the package's metrics (and others), cumulative since the test began. */
    async points(): Promise<Point[]> {
      await reader.forceFlush();
      const exported = metricExporter.getMetrics();
      const last = exported[exported.length - 1];
      metricExporter.reset();
      return (last?.scopeMetrics ?? []).flatMap((s) => s.metrics).flatMap(flatten);
    },
  };
}

function flatten(metric: MetricData): Point[] {
  const { name, unit } = metric.descriptor;
  if (metric.dataPointType === DataPointType.HISTOGRAM) {
    return (metric.dataPoints as Array<DataPoint<Histogram>>).map((p) => ({
      name,
      unit,
      attributes: p.attributes,
      histogram: { count: p.value.count, sum: p.value.sum ?? NaN, boundaries: p.value.buckets.boundaries },
    }));
  }
  return (metric.dataPoints as Array<DataPoint<number>>).map((p) => ({
    name,
    unit,
    attributes: p.attributes,
    value: p.value,
  }));
}

/** The points of one metric whose attributes include `attributes`. */
export function pointsOf(points: Point[], name: string, attributes: Attributes = {}): Point[] {
  return points.filter((p) => p.name === name && Object.entries(attributes).every(([k, v]) => p.attributes[k] === v));
}

/** The sum of a counter's points (or the count of a histogram's) matching `attributes`. */
export function total(points: Point[], name: string, attributes: Attributes = {}): number {
  return pointsOf(points, name, attributes).reduce((sum, p) => sum + (p.value ?? p.histogram?.count ?? 0), 0);
}
