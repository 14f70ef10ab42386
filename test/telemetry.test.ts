/**
 * OpenTelemetry: the spans and metrics of a healthy logout, a deferred one and its background completion,
 * and one that meets an open circuit breaker, read from the SDK's in-memory exporters; the options; and
 * the package without `@opentelemetry/api`.
 */
import * as api from '@opentelemetry/api';
import { context, metrics, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { InMemoryMetricExporter, MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import express from 'express';
import request from 'supertest';
import pino from 'pino';
import { chargebeePortalLogout, hashPortalSessionId, type PortalLogoutMiddleware } from '../src';
import { emulatorSuite, waitFor } from './helpers/harness';
import { otelSuite, pointsOf, total } from './helpers/otel';
import { Telemetry } from '../src/observability/telemetry';
import { linkFromTraceparent } from '../src/observability/tracing';
import { QUIET_QUEUE } from './helpers/tuned';

const API_KEY = 'test_TELEMETRYKEY_4';
const suite = emulatorSuite(API_KEY, 200);
const otel = otelSuite({ withHttpClientSpans: true });

const LOGOUT = 'chargebee_portal_logout.logout';
const ATTEMPT = 'chargebee_portal_logout.deferred_attempt';
const M = {
  portalSessions: 'chargebee_portal_logout.portal_sessions',
  logoutDuration: 'chargebee_portal_logout.logout.duration',
  callDuration: 'chargebee_portal_logout.chargebee.call.duration',
  attempts: 'chargebee_portal_logout.portal_session.attempts',
  depth: 'chargebee_portal_logout.deferred_queue.depth',
  age: 'chargebee_portal_logout.deferred_queue.oldest_job.age',
  circuit: 'chargebee_portal_logout.circuit.state',
};
const SITE = () =>
  suite.emulator
    .baseUrl('acme-test')
    .replace(/^http:\/\//, '')
    .replace(/\/api\/v2$/, '');

function newPortal(): string {
  const portal = suite.emulator.createSession({ customerId: 'cus_otel', email: 'otel.person@example.com' });
  suite.emulator.openSession(portal.id);
  return portal.id;
}

const clientSpans = () => otel.spans().filter((s) => s.kind === SpanKind.CLIENT);
const childrenOf = (spanId: string) => clientSpans().filter((s) => s.parentSpanContext?.spanId === spanId);

describe('a healthy logout', () => {
  it('makes one INTERNAL span with the result, the count, the entities and the ID hashes; the Chargebee calls are its children', async () => {
    const h = suite.setup();
    const ids = [newPortal(), newPortal()];
    h.remember([{ id: ids[0], businessEntityId: 'acme-us' }, { id: ids[1] }]);
    expect((await h.logout()).outcome.result).toBe('ended');

    const [span] = otel.spansNamed(LOGOUT);
    expect(otel.spansNamed(LOGOUT)).toHaveLength(1);
    expect(span.kind).toBe(SpanKind.INTERNAL);
    expect(span.instrumentationScope.name).toBe('chargebee-portal-logout');
    expect(span.attributes).toEqual({
      'chargebee_portal_logout.result': 'ended',
      'chargebee_portal_logout.portal_session.count': 2,
      'chargebee_portal_logout.deferred': false,
      'chargebee_portal_logout.portal_session.id_hashes': ids.map(hashPortalSessionId),
      'chargebee_portal_logout.business_entity.ids': ['acme-us'],
    });
    expect(span.status.code).toBe(SpanStatusCode.UNSET);
    const calls = childrenOf(span.spanContext().spanId);
    expect(calls).toHaveLength(2);
    expect(calls.every((c) => c.spanContext().traceId === span.spanContext().traceId)).toBe(true);
  });

  it('records the portal sessions, the logout duration, each call and the attempts, in UCUM units with explicit buckets', async () => {
    const h = suite.setup();
    h.remember([newPortal(), newPortal()]);
    await h.logout();
    const points = await otel.points();

    const ended = { 'chargebee_portal_logout.status': 'logged_out', 'chargebee_portal_logout.background': false };
    expect(pointsOf(points, M.portalSessions)).toEqual([
      { name: M.portalSessions, unit: '{portal_session}', attributes: ended, value: 2 },
    ]);
    const [duration] = pointsOf(points, M.logoutDuration);
    expect(duration).toMatchObject({ unit: 's', attributes: { 'chargebee_portal_logout.result': 'ended' } });
    expect(duration.histogram?.count).toBe(1);
    expect(duration.histogram?.sum).toBeGreaterThan(0);
    expect(duration.histogram?.sum).toBeLessThan(5); // seconds, not milliseconds
    expect(duration.histogram?.boundaries).toEqual([
      0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10,
    ]);
    expect(pointsOf(points, M.callDuration)).toEqual([
      expect.objectContaining({
        unit: 's',
        attributes: {
          'chargebee_portal_logout.site': SITE(),
          'chargebee_portal_logout.background': false,
          'http.response.status_code': 200,
        },
        histogram: expect.objectContaining({ count: 2 }),
      }),
    ]);
    expect(pointsOf(points, M.attempts)).toEqual([
      expect.objectContaining({ unit: '{attempt}', histogram: expect.objectContaining({ count: 2, sum: 2 }) }),
    ]);
  });

  it("reports the queue's depth and oldest age, and each site's circuit state, as gauges", async () => {
    const h = suite.setup({ circuitBreaker: { failureThreshold: 3 } });
    h.remember([newPortal()]);
    await h.logout();
    const points = await otel.points();
    expect(pointsOf(points, M.depth)).toEqual([{ name: M.depth, unit: '{job}', attributes: {}, value: 0 }]);
    expect(pointsOf(points, M.age)).toEqual([{ name: M.age, unit: 's', attributes: {}, value: 0 }]);
    const circuit = pointsOf(points, M.circuit, { 'chargebee_portal_logout.site': SITE() });
    expect(
      Object.fromEntries(circuit.map((p) => [p.attributes['chargebee_portal_logout.circuit.state'], p.value])),
    ).toEqual({ closed: 1, open: 0, half_open: 0 });
  });

  it("runs under the request's span, and calls the app's next handler outside the logout span", async () => {
    const portalLogout = chargebeePortalLogout({
      apiKey: API_KEY,
      baseUrl: suite.emulator.baseUrl('acme-test'),
      logger: pino({ level: 'silent' }),
      store: () => [id],
    });
    const id = newPortal();
    const tracer = trace.getTracer('server-stand-in');
    let activeInHandler: string | undefined;
    const app = express();
    app.post(
      '/logout',
      (_req, _res, next) => {
        const server = tracer.startSpan('POST /logout', { kind: SpanKind.SERVER });
        context.with(trace.setSpan(context.active(), server), next);
        _res.once('finish', () => server.end());
      },
      portalLogout,
      (_req, res) => {
        activeInHandler = trace.getActiveSpan()?.spanContext().spanId;
        res.sendStatus(204);
      },
    );
    await request(app).post('/logout').expect(204);
    await portalLogout.close({ timeoutMs: 100 });
    await waitFor(() => otel.spansNamed('POST /logout').length === 1, 2000, 'the server span');
    const [server] = otel.spansNamed('POST /logout');
    const [logout] = otel.spansNamed(LOGOUT);
    expect(logout.parentSpanContext?.spanId).toBe(server.spanContext().spanId);
    expect(activeInHandler).toBe(server.spanContext().spanId);
    expect(childrenOf(logout.spanContext().spanId)).toHaveLength(1);
  });
});

describe('a deferred logout and its background completion', () => {
  it('marks the logout deferred, then traces each background attempt in a new trace linked to it, and counts the final result', async () => {
    const h = suite.setup({ tuning: { queueBaseDelayMs: 400, queueMaxDelayMs: 400 } });
    const id = newPortal();
    suite.emulator.injectFault({ match: { path: `/portal_sessions/${id}/logout` }, status: 503, times: 4 });
    h.remember([id]);
    const { outcome } = await h.logout();
    expect(outcome.portalSessions[0]).toMatchObject({ status: 'deferred', reason: 'attempts_exhausted', attempts: 4 });

    const [logout] = otel.spansNamed(LOGOUT);
    expect(logout.attributes).toMatchObject({
      'chargebee_portal_logout.result': 'deferred',
      'chargebee_portal_logout.deferred': true,
      'chargebee_portal_logout.portal_session.count': 1,
    });
    expect(logout.status.code).toBe(SpanStatusCode.UNSET);
    expect(childrenOf(logout.spanContext().spanId)).toHaveLength(4);

    // Before the background attempt: one job waiting, its age counted from the first attempt.
    const waiting = await otel.points();
    expect(total(waiting, M.depth)).toBe(1);
    expect(pointsOf(waiting, M.age)[0].value).toBeGreaterThan(0);
    expect(total(waiting, M.portalSessions, { 'chargebee_portal_logout.status': 'deferred' })).toBe(1);
    expect(pointsOf(waiting, M.portalSessions, { 'chargebee_portal_logout.status': 'deferred' })[0].attributes).toEqual(
      {
        'chargebee_portal_logout.status': 'deferred',
        'chargebee_portal_logout.background': false,
        'chargebee_portal_logout.reason': 'attempts_exhausted',
      },
    );
    expect(
      pointsOf(waiting, M.callDuration, { 'http.response.status_code': 503 }).map((p) => [
        p.attributes['error.type'],
        p.histogram?.count,
      ]),
    ).toEqual([['503', 4]]);

    await waitFor(() => h.finalFor(id) !== undefined, 5000, 'the background logout');
    await waitFor(() => otel.spansNamed(ATTEMPT).length === 1, 2000, 'the attempt span');
    const [attempt] = otel.spansNamed(ATTEMPT);
    expect(attempt.kind).toBe(SpanKind.INTERNAL);
    expect(attempt.parentSpanContext).toBeUndefined();
    expect(attempt.spanContext().traceId).not.toBe(logout.spanContext().traceId);
    expect(attempt.links.map((l) => l.context.spanId)).toEqual([logout.spanContext().spanId]);
    expect(attempt.attributes).toEqual({
      'chargebee_portal_logout.portal_session.id_hash': hashPortalSessionId(id),
      'chargebee_portal_logout.attempt': 5,
      'chargebee_portal_logout.reason': 'attempts_exhausted',
      'chargebee_portal_logout.status': 'logged_out',
    });
    expect(childrenOf(attempt.spanContext().spanId)).toHaveLength(1);

    const done = await otel.points();
    expect(total(done, M.depth)).toBe(0);
    expect(
      total(done, M.portalSessions, {
        'chargebee_portal_logout.status': 'logged_out',
        'chargebee_portal_logout.background': true,
      }),
    ).toBe(1);
    expect(
      total(done, M.callDuration, { 'chargebee_portal_logout.background': true, 'http.response.status_code': 200 }),
    ).toBe(1);
    expect(pointsOf(done, M.attempts, { 'chargebee_portal_logout.background': true })[0].histogram).toMatchObject({
      count: 1,
      sum: 5,
    });
  });

  it('gives a failed background attempt status ERROR and the error type, and the retry a span of its own', async () => {
    const h = suite.setup({ retry: false, tuning: { queueBaseDelayMs: 20, queueMaxDelayMs: 20 } });
    const id = newPortal();
    suite.emulator.injectFault({ match: { path: `/portal_sessions/${id}/logout` }, status: 502, times: 2 });
    h.remember([id]);
    await h.logout();
    await waitFor(() => h.finalFor(id) !== undefined, 5000, 'the background logout');
    await waitFor(() => otel.spansNamed(ATTEMPT).length === 2, 2000, 'two attempt spans');
    const [failed, succeeded] = otel.spansNamed(ATTEMPT);
    expect(failed.status).toEqual({ code: SpanStatusCode.ERROR, message: 'the attempt failed; it will be retried' });
    expect(failed.attributes['error.type']).toBe('502');
    expect(succeeded.status.code).toBe(SpanStatusCode.UNSET);
    expect(succeeded.attributes['chargebee_portal_logout.status']).toBe('logged_out');
    const [logout] = otel.spansNamed(LOGOUT);
    for (const s of [failed, succeeded]) expect(s.links[0].context.spanId).toBe(logout.spanContext().spanId);
  });
});

describe('an open circuit breaker', () => {
  it('defers without a call: the span, the counter with reason circuit_open and the gauge show it', async () => {
    const h = suite.setup({
      retry: false,
      circuitBreaker: { failureThreshold: 1, coolOffMs: 60_000 },
      tuning: QUIET_QUEUE,
    });
    const first = newPortal();
    suite.emulator.injectFault({ match: { path: `/portal_sessions/${first}/logout` }, status: 503 });
    h.remember([first]);
    await h.logout();
    const second = newPortal();
    h.remember([second]);
    const { outcome } = await h.logout();
    expect(outcome.portalSessions[0]).toMatchObject({ status: 'deferred', reason: 'circuit_open', attempts: 0 });

    const logouts = otel.spansNamed(LOGOUT);
    const last = logouts[logouts.length - 1];
    expect(last.attributes).toMatchObject({
      'chargebee_portal_logout.result': 'deferred',
      'chargebee_portal_logout.deferred': true,
      'chargebee_portal_logout.portal_session.id_hashes': [hashPortalSessionId(second)],
    });
    expect(childrenOf(last.spanContext().spanId)).toHaveLength(0);

    const points = await otel.points();
    expect(
      total(points, M.portalSessions, {
        'chargebee_portal_logout.status': 'deferred',
        'chargebee_portal_logout.reason': 'circuit_open',
      }),
    ).toBe(1);
    expect(pointsOf(points, M.attempts, { 'chargebee_portal_logout.status': 'deferred' })[0].histogram?.sum).toBe(1);
    const circuit = pointsOf(points, M.circuit, { 'chargebee_portal_logout.circuit.state': 'open' });
    expect(circuit).toEqual([expect.objectContaining({ value: 1 })]);
    expect(total(points, M.depth)).toBe(2);
  });

  it('fails the logout without a queue: status ERROR, error.type on the span, the duration and the counter', async () => {
    const h = suite.setup({
      retry: false,
      deferred: false,
      circuitBreaker: { failureThreshold: 1, coolOffMs: 60_000 },
    });
    const first = newPortal();
    suite.emulator.injectFault({ match: { path: `/portal_sessions/${first}/logout` }, status: 503 });
    h.remember([first]);
    await h.logout();
    h.remember([newPortal()]);
    expect((await h.logout()).outcome.result).toBe('failed');

    const [opened, skipped] = otel.spansNamed(LOGOUT);
    expect(opened.attributes['error.type']).toBe('503');
    expect(skipped.status).toEqual({
      code: SpanStatusCode.ERROR,
      message: '1 portal session(s) could not be logged out',
    });
    expect(skipped.attributes['error.type']).toBe('ChargebeeCircuitOpenError');

    const points = await otel.points();
    expect(
      pointsOf(points, M.portalSessions, { 'chargebee_portal_logout.reason': 'circuit_open' })[0].attributes,
    ).toEqual({
      'chargebee_portal_logout.status': 'failed',
      'chargebee_portal_logout.background': false,
      'chargebee_portal_logout.reason': 'circuit_open',
      'error.type': 'ChargebeeCircuitOpenError',
    });
    expect(
      total(points, M.logoutDuration, {
        'chargebee_portal_logout.result': 'failed',
        'error.type': 'ChargebeeCircuitOpenError',
      }),
    ).toBe(1);
    expect(pointsOf(points, M.depth)).toEqual([]); // no queue, no queue gauges
  });
});

describe('the telemetry option', () => {
  it('false records no span and no metric', async () => {
    const h = suite.setup({ telemetry: false });
    h.remember([newPortal()]);
    expect((await h.logout()).outcome.result).toBe('ended');
    expect(otel.spansNamed(LOGOUT)).toEqual([]);
    expect((await otel.points()).filter((p) => p.name.startsWith('chargebee_portal_logout.'))).toEqual([]);
    expect(clientSpans()).toHaveLength(1); // the call itself still happened
  });

  it('sends spans and metrics to the providers given instead of the global ones', async () => {
    const spans = new InMemorySpanExporter();
    const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] });
    const exporter = new InMemoryMetricExporter(0);
    const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 3_600_000 });
    const meterProvider = new MeterProvider({ readers: [reader] });
    const h = suite.setup({ telemetry: { tracerProvider, meterProvider } });
    h.remember([newPortal()]);
    await h.logout();
    expect(spans.getFinishedSpans().map((s) => s.name)).toEqual([LOGOUT]);
    expect(otel.spansNamed(LOGOUT)).toEqual([]);
    await reader.forceFlush();
    const names = exporter.getMetrics()[0].scopeMetrics.flatMap((s) => s.metrics.map((m) => m.descriptor.name));
    expect(names).toEqual(expect.arrayContaining([M.portalSessions, M.logoutDuration, M.callDuration, M.depth]));
    expect((await otel.points()).filter((p) => p.name.startsWith('chargebee_portal_logout.'))).toEqual([]);
    await meterProvider.shutdown();
  });

  it('creates its instruments for the meter provider the app registers after the middleware was made', async () => {
    metrics.disable(); // no provider yet: the middleware's first meter is the no-op one
    const h = suite.setup();
    h.remember([newPortal()]);
    await h.logout();
    metrics.setGlobalMeterProvider(otel.meterProvider);
    expect(total(await otel.points(), M.depth)).toBe(0); // gauges need a recording first
    h.remember([newPortal()]);
    await h.logout();
    const points = await otel.points();
    expect(total(points, M.portalSessions)).toBe(1);
    expect(pointsOf(points, M.depth)).toHaveLength(1);
  });

  it('keeps logging out when a provider throws', async () => {
    const throwing = {
      getTracer: () => ({
        startSpan: () => {
          throw new Error('tracer broken');
        },
      }),
    };
    const brokenMeter = {
      getMeter: () => {
        throw new Error('meter broken');
      },
    };
    const h = suite.setup({ telemetry: { tracerProvider: throwing, meterProvider: brokenMeter } });
    const id = newPortal();
    h.remember([id]);
    expect((await h.logout()).outcome.result).toBe('ended');
    expect(suite.emulator.getSession(id)?.status).toBe('logged_out');
    expect(await h.portalLogout.stats()).toMatchObject({ logouts: { ended: 1 } });
  });

  it('still records the metrics when only the tracer fails', async () => {
    const throwing = {
      getTracer: () => ({
        startSpan: () => {
          throw new Error('tracer broken');
        },
      }),
    };
    const h = suite.setup({ telemetry: { tracerProvider: throwing } });
    h.remember([newPortal()]);
    await h.logout();
    const points = await otel.points();
    expect(total(points, M.portalSessions, { 'chargebee_portal_logout.status': 'logged_out' })).toBe(1);
    expect(total(points, M.logoutDuration)).toBe(1);
    expect(otel.spansNamed(LOGOUT)).toEqual([]);
  });

  it('refuses a provider without its method, naming the option', () => {
    const base = { apiKey: API_KEY, site: 'acme-test' };
    expect(() => chargebeePortalLogout({ ...base, telemetry: { tracerProvider: {} as never } })).toThrow(
      /option telemetry\.tracerProvider must be an OpenTelemetry tracerProvider \(an object with getTracer\(\)\)/,
    );
    expect(() => chargebeePortalLogout({ ...base, telemetry: 'on' as never })).toThrow(
      /option telemetry must be false or an object/,
    );
    expect(() => chargebeePortalLogout({ ...base, telemetry: { meter: {} } as never })).toThrow(
      /unknown option telemetry\.meter/,
    );
  });
});

describe('a logout that rejects (a bug in the logout itself)', () => {
  it('ends its span with status ERROR and the error type, and counts it as failed', async () => {
    const telemetry = new Telemetry(api, {});
    await expect(telemetry.logout(() => Promise.reject(new RangeError('bug')))).rejects.toThrow('bug');
    const [span] = otel.spansNamed(LOGOUT);
    expect(span.status).toEqual({ code: SpanStatusCode.ERROR, message: 'the logout failed unexpectedly' });
    expect(span.attributes).toEqual({ 'chargebee_portal_logout.result': 'failed', 'error.type': 'RangeError' });
    const points = await otel.points();
    expect(
      total(points, M.logoutDuration, { 'chargebee_portal_logout.result': 'failed', 'error.type': 'RangeError' }),
    ).toBe(1);
  });
});

describe('the link of a background attempt', () => {
  it('is left out for a job whose traceparent is malformed (a shared store holds any data)', async () => {
    for (const bad of [
      '',
      '00-abc',
      `01-${'a'.repeat(32)}-${'b'.repeat(16)}-01`,
      `00-${'0'.repeat(32)}-${'b'.repeat(16)}-01`,
      42,
    ])
      expect(linkFromTraceparent(api, bad)).toBeUndefined();
    const good = `00-${'a'.repeat(32)}-${'b'.repeat(16)}-01`;
    expect(linkFromTraceparent(api, good)?.context).toMatchObject({ traceId: 'a'.repeat(32), spanId: 'b'.repeat(16) });

    const telemetry = new Telemetry(api, {});
    const job = {
      portalSessionId: 'portal_x',
      headers: {},
      idempotencyKey: 'k',
      firstAttemptAt: Date.now(),
      attempts: 2,
      notBefore: 0,
      reason: 'budget_exhausted' as const,
      traceparent: '00-<script>-x-01',
    };
    await expect(telemetry.attempt(job, async () => 'done')).resolves.toBe('done');
    const [span] = otel.spansNamed(ATTEMPT);
    expect(span.links).toEqual([]);
  });
});

describe('without @opentelemetry/api installed', () => {
  it('logs out as usual, keeps the counts, and refuses a provider option with a clear message', async () => {
    const id = newPortal();
    let isolated: typeof import('../src') | undefined;
    let portalLogout: PortalLogoutMiddleware | undefined;
    jest.isolateModules(() => {
      jest.doMock('@opentelemetry/api', () => {
        throw Object.assign(new Error("Cannot find module '@opentelemetry/api'"), { code: 'MODULE_NOT_FOUND' });
      });
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      isolated = require('../src') as typeof import('../src');
      portalLogout = isolated.chargebeePortalLogout({
        apiKey: API_KEY,
        baseUrl: suite.emulator.baseUrl('acme-test'),
        logger: pino({ level: 'silent' }),
        store: () => [id],
      });
    });
    jest.dontMock('@opentelemetry/api');
    const app = express().post('/logout', portalLogout!, (_req, res) => res.json(res.locals.chargebeePortalLogout));
    const res = await request(app).post('/logout').expect(200);
    await portalLogout!.close({ timeoutMs: 100 });
    expect(res.body.result).toBe('ended');
    expect(suite.emulator.getSession(id)?.status).toBe('logged_out');
    expect(otel.spansNamed(LOGOUT)).toEqual([]);
    expect((await portalLogout!.stats()).portalSessions.logged_out).toBe(1);
    expect(() =>
      isolated!.chargebeePortalLogout({
        apiKey: API_KEY,
        site: 'acme-test',
        telemetry: { tracerProvider: { getTracer: () => ({}) } },
      }),
    ).toThrow(/option telemetry\.tracerProvider needs @opentelemetry\/api/);
  });
});
