/**
 * Per-request work: our middleware's own work per logout (ID lookup, origin headers, the outcome, the log
 * line) with the upstream call stubbed, in microseconds. Run by bench/run.ts (stdout to /dev/null, where
 * the default logger writes); sends its figures over IPC, or prints them when run alone.
 */
import http from 'node:http';
import { Readable } from 'node:stream';
import type { Request, Response } from 'express';
import axios, { type AxiosAdapter } from 'axios';
import pino from 'pino';
import type { PortalSession } from '../src';
import { internals, library } from './library';

/** Microseconds of CPU per logout, the harness's own (request objects, one event-loop turn) subtracted. */
export interface MicroResult {
  /** Our middleware with its defaults, `ChargebeeClient.logout` stubbed: the figure of the target. */
  middlewareUs: number;
  /** The same with a silent logger: what the one log line per logout costs is the difference. */
  middlewareSilentLogUs: number;
  /** Our middleware with only axios's transport stubbed: our client and axios's request pipeline included. */
  middlewareWithAxiosUs: number;
  /** A bare `axios.post` with the same transport stub: what any axios-based route pays per call. */
  plainAxiosUs: number;
  /**
   * Our client's overhead over a bare `axios.post` on the same stubbed transport:
   * `middlewareWithAxiosUs − middlewareUs − plainAxiosUs` (the figure of the target).
   */
  clientOverheadUs: number;
  /** The harness alone, already subtracted from the figures above. */
  harnessUs: number;
  iterations: number;
}

const ITERATIONS = 30_000;
const WARMUP = 5_000;
const MAX_MS_PER_CASE = 8_000;
const BASE_URL = 'http://127.0.0.1:9/acme-test/api/v2';
const ID = 'portal_AzZlGhSHQjA1b3cXyZ0123';

const session: PortalSession = {
  id: ID,
  token: 't',
  access_url: 'http://127.0.0.1:9/portal',
  status: 'logged_out',
  created_at: 0,
  customer_id: 'cus_1',
  logout_at: Math.floor(Date.now() / 1000),
};
const body = JSON.stringify({ portal_session: session });
/**
 * Every stub answers on a later turn of the event loop, as a socket would; without it pino's asynchronous
 * writes to stdout would never run within the loop, and the log line would look cheaper than it is.
 * The harness pays the same turn, and its time is subtracted.
 */
export const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));
/**
 * The transport under both axios routes: the answer arrives as a stream, as from a socket. Our client asks
 * for the stream (it bounds the body itself); for any other `responseType` the stub reads the stream into
 * text first, as axios's own http adapter does, so that both routes pay for the body.
 */
export const stubAdapter: AxiosAdapter = async (config) => {
  await nextTurn();
  const stream = Readable.from([Buffer.from(body)], { objectMode: false });
  if (config.responseType === 'stream') return { data: stream, status: 200, statusText: 'OK', headers: {}, config };
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return { data: Buffer.concat(chunks).toString('utf8'), status: 200, statusText: 'OK', headers: {}, config };
};

export type Middleware = (req: Request, res: Response, next: (err?: unknown) => void) => void;

function fakeRequest(): Request {
  return {
    ip: '::ffff:203.0.113.7',
    headers: { 'user-agent': 'Mozilla/5.0 (X11; Linux x86_64) bench/1.0', cookie: 'app.sid=s%3Aabc.def' },
    session: { chargebeePortalSessions: [{ id: ID }] },
  } as unknown as Request;
}

export function runOnce(middleware: Middleware): Promise<void> {
  const res = { locals: {} } as unknown as Response;
  return new Promise((resolve, reject) =>
    middleware(fakeRequest(), res, (err) => (err ? reject(err as Error) : resolve())),
  );
}

/**
 * Microseconds of this process's CPU time per call (user and system), after a warm-up; bounded by count and
 * by time. CPU time rather than wall time: on a shared machine the process is sometimes descheduled, which
 * wall time would count as our work.
 */
export async function perCall(fn: () => Promise<unknown>): Promise<number> {
  const warmupEnd = performance.now() + MAX_MS_PER_CASE / 4;
  for (let i = 0; i < WARMUP && performance.now() < warmupEnd; i++) await fn();
  const end = performance.now() + MAX_MS_PER_CASE;
  const cpu = process.cpuUsage();
  let n = 0;
  while (n < ITERATIONS && performance.now() < end) {
    await fn();
    n++;
  }
  const used = process.cpuUsage(cpu);
  return (used.user + used.system) / n;
}

export function withStubbedClient(options: { logger?: pino.Logger }): Middleware {
  const middleware = library.chargebeePortalLogout({ baseUrl: BASE_URL, apiKey: 'test_key', ...options });
  Object.assign(middleware.clientFor(), {
    logout: async () => {
      await nextTurn();
      return session;
    },
  });
  return middleware;
}

function withStubbedTransport(): Middleware {
  const middleware = library.chargebeePortalLogout({ baseUrl: BASE_URL, apiKey: 'test_key' });
  // The client keeps its axios instance private; the stub replaces only the transport under it.
  internals.client.transportOf(middleware.clientFor()).defaults.adapter = stubAdapter;
  return middleware;
}

export async function runMicro(): Promise<MicroResult> {
  const plain = axios.create({
    baseURL: BASE_URL,
    httpAgent: new http.Agent({ keepAlive: true }),
    auth: { username: 'test_key', password: '' },
    timeout: 5000,
    adapter: stubAdapter,
  });
  const noop: Middleware = (_req, _res, next) => void nextTurn().then(() => next());
  const ours = withStubbedClient({});
  const silent = withStubbedClient({ logger: pino({ level: 'silent' }) });
  const throughAxios = withStubbedTransport();
  const headers = {
    'chargebee-request-origin-ip': '203.0.113.7',
    'chargebee-request-origin-device': 'Mozilla/5.0 (X11; Linux x86_64) bench/1.0',
  };
  const harness = await perCall(() => runOnce(noop));
  const round2 = (us: number) => Math.round(us * 100) / 100;
  const net = (us: number) => round2(Math.max(0, us - harness));
  const middlewareUs = net(await perCall(() => runOnce(ours)));
  const middlewareSilentLogUs = net(await perCall(() => runOnce(silent)));
  const middlewareWithAxiosUs = net(await perCall(() => runOnce(throughAxios)));
  const plainAxiosUs = net(await perCall(() => plain.post(`/portal_sessions/${ID}/logout`, '', { headers })));
  return {
    middlewareUs,
    middlewareSilentLogUs,
    middlewareWithAxiosUs,
    plainAxiosUs,
    clientOverheadUs: round2(middlewareWithAxiosUs - middlewareUs - plainAxiosUs),
    harnessUs: round2(harness),
    iterations: ITERATIONS,
  };
}

if (require.main === module) {
  runMicro().then(
    (result) =>
      process.send
        ? process.send(result, () => process.exit(0))
        : process.stderr.write(`${JSON.stringify(result, null, 2)}\n`),
    (error: unknown) => {
      process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
      process.exit(1);
    },
  );
}
