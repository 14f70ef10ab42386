/**
 * Recipe: OpenTelemetry, part 1: the SDK. The package itself uses only `@opentelemetry/api`; this is what the
 * app adds: the Node SDK, the http instrumentation (whose client spans of the Chargebee calls become children
 * of the package's logout span) and the Prometheus exporter, served by the app on `GET /metrics`.
 *
 * Start it before anything loads `http` (Express, axios), as OpenTelemetry advises: in a file of its own given
 * to `node --require ./instrumentation.js server.js`, whose whole content is `startOpenTelemetry();`.
 */
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { HttpInstrumentation } from '@opentelemetry/instrumentation-http';
import { NodeSDK } from '@opentelemetry/sdk-node';
import type { SpanProcessor } from '@opentelemetry/sdk-trace-base';

export interface OpenTelemetryOptions {
  /** Where spans go. Default: what `OTEL_TRACES_EXPORTER` says (OTLP to a local collector unless set). */
  spanProcessors?: SpanProcessor[];
}

export function startOpenTelemetry(options: OpenTelemetryOptions = {}) {
  // No server of its own (preventServerStart): the app serves the metrics on its own port, at GET /metrics.
  const prometheus = new PrometheusExporter({ preventServerStart: true });
  const sdk = new NodeSDK({
    serviceName: 'billing-app',
    metricReaders: [prometheus],
    ...(options.spanProcessors ? { spanProcessors: options.spanProcessors } : {}),
    instrumentations: [new HttpInstrumentation()],
  });
  sdk.start();
  return { sdk, prometheus };
}
