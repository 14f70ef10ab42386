/**
 * The benchmark's app process: one Express app (cookie-parser, express-session) with the logout routes
 * that bench/run.ts compares (route 2's code twice: 2′ is the A/A control). Every route reads the same
 * remembered IDs from `req.session`, forgets them, and ends with the same handler that destroys the app
 * session.
 *
 * Started by run.ts as `node --import tsx bench/app.ts <emulatorUrl> <site> <apiKey>` with an IPC
 * channel; it answers the commands in {@link AppCommand} and logs nothing to stdout but our middleware's
 * one line per logout (its default pino logger; run.ts sends stdout to /dev/null).
 */
import http from 'node:http';
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import axios from 'axios';
import Chargebee from 'chargebee';
import cookieParser from 'cookie-parser';
import express, { type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import session from 'express-session';
import type { ChargebeePortalLogoutOptions, RememberedPortalSession } from '../src';
import { internals, library } from './library';
import { ROUTES, type AppCommand, type AppReady, type AppStats, type RouteName, type RouteStats } from './protocol';

const SESSION_SECRET = randomBytes(16).toString('hex');
const SESSION_COOKIE = 'app.sid';
/** The timeout route 2 gives axios: the same as our middleware's default per-call timeout. */
const AXIOS_TIMEOUT_MS = internals.client.DEFAULT_TIMEOUT_MS;

const [emulatorUrl, site, apiKey] = process.argv.slice(2);
if (!emulatorUrl || !site || !apiKey || !process.send) {
  process.stderr.write('usage: node --import tsx bench/app.ts <emulatorUrl> <site> <apiKey> (with an IPC channel)\n');
  process.exit(2);
}
const baseUrl = `${emulatorUrl}/${site}/api/v2`;
const emulatorPort = Number(new URL(emulatorUrl).port);

let cpuSince = process.cpuUsage();
const stats = Object.fromEntries(ROUTES.map((r) => [r, newStats()])) as Record<RouteName, RouteStats>;
function newStats(): RouteStats {
  return { requests: 0, portalSessionsEnded: 0, portalSessionsFailed: 0, failureKinds: {} };
}
function count(route: RouteName, ended: number, failures: string[]): void {
  const s = stats[route];
  s.requests++;
  s.portalSessionsEnded += ended;
  s.portalSessionsFailed += failures.length;
  for (const kind of failures) s.failureKinds[kind] = (s.failureKinds[kind] ?? 0) + 1;
}

/** The ID lookup every route does: the list our middleware's default `'session'` store keeps. */
function rememberedIds(req: Request): string[] {
  return (req.session.chargebeePortalSessions ?? []).map((entry) => entry.id);
}

/** The origin headers a hand-written route would send: the client IP and its User-Agent. */
function originHeaders(req: Request): Record<string, string> {
  const headers: Record<string, string> = {};
  if (req.ip) headers['chargebee-request-origin-ip'] = req.ip;
  const device = req.get('user-agent');
  if (device) headers['chargebee-request-origin-device'] = device;
  return headers;
}

function failureKind(error: unknown): string {
  if (typeof error !== 'object' || error === null) return String(error);
  const e = error as {
    name?: string;
    code?: string;
    http_status_code?: number;
    api_error_code?: string;
    message?: string;
  };
  return [e.name, e.code ?? e.api_error_code, e.http_status_code].filter((x) => x !== undefined).join(':') || 'unknown';
}

// ---- route 1: the floor, no Chargebee call ----
const bareLogout: RequestHandler = (req, _res, next) => {
  rememberedIds(req);
  delete req.session.chargebeePortalSessions;
  count('bare', 0, []);
  next();
};

// ---- route 2: hand-written, one axios instance with a keep-alive agent ----
// Route 2′ (the A/A control) is this same code on a second path: the same function makes both, each with
// its own axios instance and agent (as route 4 has its own), counted under its own name.
function handWrittenAxiosLogout(route: 'axios' | 'axiosAA'): RequestHandler {
  const axiosClient = axios.create({
    baseURL: baseUrl,
    httpAgent: new http.Agent({ keepAlive: true }),
    auth: { username: apiKey, password: '' },
    timeout: AXIOS_TIMEOUT_MS,
    headers: { Accept: 'application/json', 'Content-Type': 'application/x-www-form-urlencoded' },
  });
  return (req, _res, next) => {
    const headers = originHeaders(req);
    const calls = rememberedIds(req).map((id) =>
      axiosClient.post(`/portal_sessions/${encodeURIComponent(id)}/logout`, '', { headers }),
    );
    void Promise.allSettled(calls).then((results) => {
      const failures = results.flatMap((r) =>
        r.status === 'rejected'
          ? [failureKind(r.reason)]
          : r.value.data?.portal_session?.status === 'logged_out'
            ? []
            : ['not logged_out'],
      );
      if (failures.length === 0) delete req.session.chargebeePortalSessions;
      count(route, results.length - failures.length, failures);
      next();
    });
  };
}
const axiosLogout = handWrittenAxiosLogout('axios');
const axiosAALogout = handWrittenAxiosLogout('axiosAA');

// ---- route 3: the official SDK, its defaults (80 s timeout, no retries), headers as 3rd argument ----
const chargebee = new Chargebee({
  site: '127.0.0.1',
  apiKey,
  protocol: 'http',
  hostSuffix: '',
  port: emulatorPort,
  // The SDK builds `{apiPath}/portal_sessions/...`; the emulator serves each site under `/{site}/api/v2`.
  // The typings allow only the API versions here, the SDK takes any path.
  apiPath: `/${site}/api/v2` as '/api/v2',
});
const sdkLogout: RequestHandler = (req, _res, next) => {
  const headers = originHeaders(req);
  // The typed signature is logout(id, headers), but at run time the 2nd argument is the form body.
  const logout = chargebee.portalSession.logout as unknown as (
    id: string,
    params: undefined,
    headers: Record<string, string>,
  ) => Promise<{ portal_session: { status: string } }>;
  const calls = rememberedIds(req).map((id) => logout(id, undefined, headers));
  void Promise.allSettled(calls).then((results) => {
    const failures = results.flatMap((r) =>
      r.status === 'rejected'
        ? [failureKind(r.reason)]
        : r.value.portal_session?.status === 'logged_out'
          ? []
          : ['not logged_out'],
    );
    if (failures.length === 0) delete req.session.chargebeePortalSessions;
    count('sdk', results.length - failures.length, failures);
    next();
  });
};

// ---- route 4: our middleware, its defaults ----
/** True when the middleware accepts `option` (versions without the reliability options can be benched too). */
function accepts(option: string, value: unknown): boolean {
  try {
    const probe = library.chargebeePortalLogout({ baseUrl, apiKey, [option]: value } as ChargebeePortalLogoutOptions);
    void Promise.resolve(probe.close()).catch(() => undefined);
    return true;
  } catch {
    return false;
  }
}
const features = {
  budgetMs: accepts('budgetMs', 3000),
  retry: accepts('retry', false),
  deferred: accepts('deferred', false),
  circuitBreaker: accepts('circuitBreaker', { failureThreshold: 5, coolOffMs: 30_000 }),
};
const logoutBudgetMs = features.budgetMs ? internals.retry.DEFAULT_BUDGET_MS : internals.client.DEFAULT_TIMEOUT_MS;

const portalLogout = library.chargebeePortalLogout({ baseUrl, apiKey });
const oursCount: RequestHandler = (_req, res, next) => {
  const outcome = res.locals.chargebeePortalLogout;
  const sessions = outcome?.portalSessions ?? [];
  // `deferred` (handed to the background queue) and `failed` both leave the portal session open for now.
  const failures = sessions
    .filter((o) => o.status !== 'logged_out')
    .map((o) => [o.status, (o as { reason?: string }).reason, o.error?.name].filter(Boolean).join(':'));
  count('ours', sessions.filter((o) => o.status === 'logged_out').length, failures);
  next();
};

/** The app's own logout, the same for every route. */
function endSession(req: Request, res: Response, next: NextFunction): void {
  req.session.destroy((err) => (err ? next(err) : res.status(200).type('text/plain').send('logged out')));
}

const store = new session.MemoryStore();
const app = express();
app.disable('x-powered-by');
app.use(cookieParser(SESSION_SECRET));
app.use(session({ name: SESSION_COOKIE, secret: SESSION_SECRET, store, resave: false, saveUninitialized: false }));
app.post('/logout/bare', bareLogout, endSession);
app.post('/logout/axios', axiosLogout, endSession);
app.post('/logout/axiosAA', axiosAALogout, endSession);
app.post('/logout/sdk', sdkLogout, endSession);
app.post('/logout/ours', portalLogout, oursCount, endSession);
app.use((err: Error, _req: Request, res: Response, _next: NextFunction) => {
  res.status(500).type('text/plain').send(`bench app error: ${err.message}`);
});

// ---- preparing logged-in users: portal sessions in the emulator, app sessions in the store ----
const controlAgent = new http.Agent({ keepAlive: true, maxSockets: 16 });

function createPortalSession(customerId: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const body = JSON.stringify({ site, customerId });
    const req = http.request(
      `${emulatorUrl}/_emulator/sessions`,
      {
        method: 'POST',
        agent: controlAgent,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
        timeout: 10_000,
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => {
          const id =
            res.statusCode === 200
              ? (JSON.parse(text) as { portal_session?: { id?: string } }).portal_session?.id
              : undefined;
          if (id) resolve(id);
          else
            reject(new Error(`emulator answered ${res.statusCode} to POST /_emulator/sessions: ${text.slice(0, 200)}`));
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error('POST /_emulator/sessions timed out')));
    req.on('error', reject);
    req.end(body);
  });
}

/** Creates `count` app sessions with `perSession` portal sessions each; resolves with their Cookie headers. */
async function prepare(count: number, perSession: number): Promise<string[]> {
  const cookies = new Array<string>(count);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) {
      const i = next++;
      const remembered: RememberedPortalSession[] = [];
      for (let k = 0; k < perSession; k++) remembered.push({ id: await createPortalSession(`cus_bench_${i}_${k}`) });
      const sid = randomBytes(18).toString('base64url');
      const data = {
        cookie: { originalMaxAge: null, expires: null, httpOnly: true, path: '/' },
        chargebeePortalSessions: remembered,
      };
      await new Promise<void>((resolve, reject) =>
        store.set(sid, data as unknown as session.SessionData, (err) => (err ? reject(err) : resolve())),
      );
      cookies[i] =
        `${SESSION_COOKIE}=${encodeURIComponent(internals.cookieSignature.signCookieValue(sid, SESSION_SECRET))}`;
    }
  };
  await Promise.all(Array.from({ length: Math.min(16, count) }, worker));
  return cookies;
}

async function handle(command: AppCommand): Promise<unknown> {
  switch (command.cmd) {
    case 'prepare':
      return prepare(command.count, command.perSession);
    case 'stats': {
      const cpu = process.cpuUsage(cpuSince);
      cpuSince = process.cpuUsage();
      const snapshot: AppStats = { routes: structuredClone(stats), cpuUs: cpu.user + cpu.system };
      for (const route of ROUTES) stats[route] = newStats();
      return snapshot;
    }
    case 'close':
      // No time for the deferred queue to drain: the benchmark is over. (The argument is new; older close() ignores it.)
      await (portalLogout.close as (options?: { timeoutMs?: number }) => unknown)({ timeoutMs: 0 });
      setImmediate(() => process.exit(0));
      return true;
  }
}

const server = app.listen(0, '127.0.0.1', () => {
  const { port } = server.address() as AddressInfo;
  const ready: AppReady = { ready: true, url: `http://127.0.0.1:${port}`, features, logoutBudgetMs };
  process.send?.(ready);
});
server.keepAliveTimeout = 60_000;

process.on('message', (message: { id: number } & AppCommand) => {
  handle(message).then(
    (result) => process.send?.({ id: message.id, ok: true, result }),
    (error: unknown) =>
      process.send?.({ id: message.id, ok: false, error: error instanceof Error ? error.message : String(error) }),
  );
});
// The orchestrator going away must not leave this process behind; exiting (not dying) writes a CPU profile.
process.on('disconnect', () => process.exit(0));
process.once('SIGTERM', () => process.exit(0));
