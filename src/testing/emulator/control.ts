/**
 * The JSON control API under `/_emulator`, for tests and apps in other processes: sessions, the request
 * record (Authorization redacted), faults, the rate limit and reset.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { faultFromJson, type FaultList } from './faults';
import { jsonAnswer, readBody, safeDecode, send, type Answer } from './http';
import type { RateLimiter } from './rate-limit';
import { copySession, type SessionStore } from './state';
import type {
  CreateSessionInput,
  EmulatedPortalSession,
  EmulatorRateLimit,
  EmulatorRateLimitStats,
  RecordedRequest,
} from './types';

/** The emulator's public methods the control API calls (the emulator itself, typed by shape). */
export interface ControlledEmulator {
  readonly requests: RecordedRequest[];
  clearRequests(): void;
  logoutRequests(portalSessionId?: string): RecordedRequest[];
  sessions(site?: string): EmulatedPortalSession[];
  getSession(id: string): EmulatedPortalSession | undefined;
  createSession(input: CreateSessionInput): EmulatedPortalSession;
  clearFaults(): void;
  setRateLimit(site: string, limit: EmulatorRateLimit | undefined): void;
  rateLimitStats(site?: string): EmulatorRateLimitStats;
  reset(): void;
}

/** The emulator's parts the control API drives beyond its public methods. */
export interface ControlHost {
  emulator: ControlledEmulator;
  sessions: SessionStore;
  faults: FaultList;
  rateLimits: RateLimiter;
  siteNames(): string[];
  /** The configured site of that name, or the first one; throws for another name. */
  site(name?: string): string;
}

function controlError(status: number, message: string): Answer {
  return jsonAnswer(status, { error: message });
}

function asObject(value: unknown): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new TypeError('the body must be a JSON object');
  return value as Record<string, unknown>;
}

function optionalString(obj: Record<string, unknown>, key: string): string | undefined {
  const value = obj[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw new TypeError(`${key} must be a string`);
  return value;
}

function redactRequest(r: RecordedRequest): RecordedRequest {
  if (r.headers.authorization === undefined) return r;
  return { ...r, headers: { ...r.headers, authorization: '[redacted]' } };
}

export function handleControl(
  host: ControlHost,
  req: IncomingMessage,
  res: ServerResponse,
  pathname: string,
  query: string,
): void {
  const method = req.method ?? 'GET';
  const parts = pathname.split('/').slice(2); // after '/_emulator'
  if (method === 'GET' || method === 'HEAD' || method === 'DELETE') {
    // Drain any body so that the connection can be reused.
    req.resume();
    return send(res, safeAnswer(host, method, parts, query, undefined));
  }
  if (method !== 'POST') return send(res, controlError(405, `${method} is not supported by the control API`));
  // A JSON content type forces a CORS preflight, so a web page cannot drive the emulator.
  if (!/^application\/json\b/i.test(req.headers['content-type'] ?? '')) {
    req.resume();
    return send(
      res,
      controlError(
        415,
        'POST to /_emulator needs Content-Type: application/json (send {} when there is nothing to say)',
      ),
    );
  }
  readBody(req, (body) => {
    let value: unknown = {};
    if (body === undefined) return send(res, controlError(413, 'body too large'));
    if (body.trim() !== '') {
      try {
        value = JSON.parse(body);
      } catch {
        return send(res, controlError(400, 'the body is not valid JSON'));
      }
    }
    send(res, safeAnswer(host, method, parts, query, value));
  });
}

function safeAnswer(host: ControlHost, method: string, parts: string[], query: string, body: unknown): Answer {
  try {
    return answerControl(host, method, parts, query, body);
  } catch (err) {
    // Everything answerControl() throws comes from checking the caller's input.
    return controlError(400, err instanceof Error ? err.message : String(err));
  }
}

function rateLimitJson(host: ControlHost, site: string): Record<string, unknown> {
  return { limit: host.rateLimits.limit(site) ?? null, ...host.emulator.rateLimitStats(site) };
}

function answerControl(host: ControlHost, method: string, parts: string[], query: string, body: unknown): Answer {
  const { emulator } = host;
  const [resource = '', rawId, action] = parts;
  const id = rawId === undefined ? undefined : (safeDecode(rawId) ?? '');
  const params = new URLSearchParams(query);
  const route = `${method === 'HEAD' ? 'GET' : method} ${resource}${id !== undefined ? '/:id' : ''}${action !== undefined ? `/${action}` : ''}`;
  switch (route) {
    case 'GET sessions':
      return jsonAnswer(200, { sessions: emulator.sessions(params.get('site') ?? undefined) });
    case 'GET sessions/:id': {
      const session = emulator.getSession(id ?? '');
      return session ? jsonAnswer(200, { portal_session: session }) : controlError(404, 'no such portal session');
    }
    case 'POST sessions': {
      const input = asObject(body);
      const session = emulator.createSession({
        site: optionalString(input, 'site'),
        customerId: optionalString(input, 'customerId') ?? '',
        email: optionalString(input, 'email'),
        redirectUrl: optionalString(input, 'redirectUrl'),
      });
      return jsonAnswer(200, { portal_session: session });
    }
    case 'POST sessions/:id/open': {
      const stored = host.sessions.byId.get(id ?? '');
      if (!stored) return controlError(404, 'no such portal session');
      const outcome = host.sessions.open(stored, optionalString(asObject(body), 'ip') ?? '127.0.0.1');
      return outcome === 'logged_in'
        ? jsonAnswer(200, { portal_session: copySession(stored.data) })
        : controlError(409, `the access URL does not work: ${outcome}`);
    }
    case 'GET requests':
      return jsonAnswer(200, { requests: emulator.requests.map(redactRequest) });
    case 'DELETE requests':
      emulator.clearRequests();
      return jsonAnswer(200, { ok: true });
    case 'GET logout-requests':
      return jsonAnswer(200, { requests: emulator.logoutRequests(params.get('id') ?? undefined).map(redactRequest) });
    case 'GET faults':
      return jsonAnswer(200, { faults: host.faults.toJson() });
    case 'POST faults':
      return jsonAnswer(201, { id: host.faults.add(faultFromJson(asObject(body))) });
    case 'DELETE faults':
      emulator.clearFaults();
      return jsonAnswer(200, { ok: true });
    case 'DELETE faults/:id':
      return host.faults.remove(Number(id)) ? jsonAnswer(200, { ok: true }) : controlError(404, 'no such fault');
    case 'GET rate-limit':
      return jsonAnswer(200, {
        sites: Object.fromEntries(host.siteNames().map((site) => [site, rateLimitJson(host, site)])),
      });
    case 'GET rate-limit/:id':
      return jsonAnswer(200, { site: id, ...rateLimitJson(host, host.site(id)) });
    case 'POST rate-limit': {
      const { site: given, ...limit } = asObject(body);
      if (given !== undefined && typeof given !== 'string') throw new TypeError('site must be a string');
      const site = host.site(given);
      emulator.setRateLimit(site, limit as { requests: number; windowMs?: number });
      return jsonAnswer(200, { site, ...rateLimitJson(host, site) });
    }
    case 'DELETE rate-limit':
    case 'DELETE rate-limit/:id': {
      const only = id ?? params.get('site') ?? undefined;
      for (const site of only === undefined ? host.siteNames() : [host.site(only)])
        emulator.setRateLimit(site, undefined);
      return jsonAnswer(200, { ok: true });
    }
    case 'POST reset':
      emulator.reset();
      return jsonAnswer(200, { ok: true });
    default:
      return controlError(404, `no control route ${method} /_emulator/${parts.join('/')}`);
  }
}
