/**
 * examples/opentelemetry/: the Node SDK with the http instrumentation and the Prometheus exporter, in a
 * process of its own (see the fixture), against the emulator: GET /metrics shows the package's metrics
 * after a few logouts, and the traces put the Chargebee calls under the logout span, under the request.
 */
import { join } from 'node:path';
import request from 'supertest';
import { ChargebeeEmulator } from '../../src/testing';
import { startChildApp } from '../helpers/child-app';

const API_KEY = 'test_OTELKEY_2';
let emulator: ChargebeeEmulator;
let child: Awaited<ReturnType<typeof startChildApp>>;

beforeAll(async () => {
  emulator = await ChargebeeEmulator.start({ sites: { 'acme-test': { apiKey: API_KEY } } });
  child = await startChildApp(join(__dirname, 'fixtures/opentelemetry-app.ts'), 'OTEL_APP_CONFIG', {
    baseUrl: emulator.baseUrl('acme-test'),
    apiKey: API_KEY,
  });
}, 20_000);
afterAll(async () => {
  await child?.stop();
  await emulator.close();
});

interface ExportedSpan {
  name: string;
  kind: number;
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  attributes: Record<string, unknown>;
}

/** Signs in, opens the billing portal `portals` times, and signs out. */
async function session(email: string, portals: number): Promise<string[]> {
  const agent = request.agent(child.url);
  await agent.post('/login').type('form').send({ email }).expect(303);
  const ids: string[] = [];
  for (let i = 0; i < portals; i++) {
    const created = await agent.post('/billing/portal').expect(303);
    const portal = emulator.sessions().find((s) => s.access_url === created.headers.location)!;
    emulator.openSession(portal.id);
    ids.push(portal.id);
  }
  await agent.post('/logout').expect(303);
  return ids;
}

it("serves the package's metrics on GET /metrics after a few logouts", async () => {
  const ids = [...(await session('ann@example.com', 2)), ...(await session('bob@example.com', 1))];
  await session('cy@example.com', 0);
  for (const id of ids) expect(emulator.getSession(id)?.status).toBe('logged_out');

  const res = await request(child.url).get('/metrics').expect(200);
  expect(res.headers['content-type']).toMatch(/^text\/plain/);
  /** The value of the one sample of `name` whose labels include each of `labels`. */
  const sample = (name: string, labels: Record<string, string> = {}): number => {
    const found = res.text
      .split('\n')
      .filter((line) => line.startsWith(`${name}{`))
      .filter((line) => Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`)));
    expect(found).toHaveLength(1);
    return Number(found[0].slice(found[0].lastIndexOf(' ') + 1));
  };
  const ns = 'chargebee_portal_logout';
  expect(sample(`${ns}_portal_sessions_total`, { [`${ns}_status`]: 'logged_out', [`${ns}_background`]: 'false' })).toBe(
    3,
  );
  expect(sample(`${ns}_logout_duration_count`, { [`${ns}_result`]: 'ended' })).toBe(2);
  expect(sample(`${ns}_logout_duration_count`, { [`${ns}_result`]: 'nothing_remembered' })).toBe(1);
  expect(sample(`${ns}_logout_duration_bucket`, { [`${ns}_result`]: 'ended', le: '10' })).toBe(2);
  expect(sample(`${ns}_chargebee_call_duration_count`, { http_response_status_code: '200' })).toBe(3);
  expect(sample(`${ns}_portal_session_attempts_sum`, { [`${ns}_status`]: 'logged_out' })).toBe(3);
  expect(sample(`${ns}_deferred_queue_depth`)).toBe(0);
  expect(sample(`${ns}_deferred_queue_oldest_job_age`)).toBe(0);
  const site = emulator.baseUrl('acme-test').replace('http://', '').replace('/api/v2', '');
  expect(sample(`${ns}_circuit_state`, { [`${ns}_site`]: site, [`${ns}_circuit_state`]: 'closed' })).toBe(1);
  expect(res.text).toMatch(new RegExp(`^# UNIT ${ns}_logout_duration s$`, 'm'));
  const text = res.text;
  for (const secret of [API_KEY, 'ann@example.com', ...ids]) expect(text).not.toContain(secret);
});

it('puts the Chargebee calls under the logout span, under the request, with the real http instrumentation', async () => {
  const [id] = await session('dee@example.com', 1);
  const spans = (await request(child.url).get('/test/spans').expect(200)).body as ExportedSpan[];
  const logout = spans.filter((s) => s.name === 'chargebee_portal_logout.logout').at(-1)!;
  expect(logout.attributes['chargebee_portal_logout.portal_session.count']).toBe(1);
  const server = spans.find((s) => s.spanId === logout.parentSpanId)!;
  expect(server).toMatchObject({ kind: 1, attributes: expect.objectContaining({ 'http.request.method': 'POST' }) });
  expect(server.name).toMatch(/^POST/);
  const calls = spans.filter((s) => s.parentSpanId === logout.spanId);
  expect(calls).toHaveLength(1);
  expect(calls[0]).toMatchObject({ kind: 2, traceId: logout.traceId });
  expect(String(calls[0].attributes['url.full'])).toContain('/portal_sessions/');
  expect(emulator.getSession(id)?.status).toBe('logged_out');
});

it('serves the health check as JSON', async () => {
  const res = await request(child.url).get('/healthz/chargebee').expect(200);
  expect(res.body).toMatchObject({ status: 'ok', problems: [], stats: { queue: { depth: 0 } } });
});
