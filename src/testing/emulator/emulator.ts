/**
 * A loopback emulator of Chargebee's portal-session endpoints, for tests, demos and benchmarks.
 * Plain `node:http` so that it stays fast under load; every record it keeps is bounded.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Readable } from 'node:stream';
import { answerApi, type ApiRequest, type ApiState } from './api';
import { handleControl, type ControlHost } from './control';
import { applyFault, type FaultHost } from './fault-answers';
import { FaultList } from './faults';
import { errorAnswer, readBody, send } from './http';
import { checkRateLimit, isNonNegativeInteger, normaliseOptions, type Config, type SiteState } from './options';
import { handleOverview, handlePortalPage, type PagesHost } from './pages';
import { RateLimiter } from './rate-limit';
import { copySession, IdempotencyCache, loggedOutId, RequestRecord, SessionStore } from './state';
import type {
  CreateSessionInput,
  EmulatedPortalSession,
  EmulatorFault,
  EmulatorOptions,
  EmulatorRateLimit,
  EmulatorRateLimitStats,
  RecordedRequest,
} from './types';

/**
 * Emulates `POST /portal_sessions`, `GET /portal_sessions/{id}` and `POST /portal_sessions/{id}/logout`
 * under `/{site}/api/v2`, the access-URL page, an overview page at `/` and a JSON control API under
 * `/_emulator`. Faults can be injected to test a client's timeouts, retries and error handling, and each
 * site can have a rate limit.
 */
export class ChargebeeEmulator {
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  private readonly faultHost: FaultHost;
  private readonly record: RequestRecord;
  private readonly store: SessionStore;
  private readonly api: ApiState;
  private readonly faults = new FaultList();
  private listeningUrl = '';
  private closing: Promise<void> | undefined;

  private constructor(private readonly config: Config) {
    this.record = new RequestRecord(config.recordLimit);
    this.store = new SessionStore(() => config.publicUrl ?? this.listeningUrl);
    this.api = {
      config,
      sessions: this.store,
      idempotency: new IdempotencyCache(config.idempotencyWindowMs, config.idempotencyCacheLimit),
      rateLimits: new RateLimiter(),
    };
    this.restoreRateLimits();
    this.faultHost = {
      timers: new Set<NodeJS.Timeout>(),
      streams: new Set<Readable>(),
      internalError: (res, err) => this.internalError(res, err),
    };
    this.server = createServer({ noDelay: true }, (req, res) => this.handle(req, res));
    this.server.on('connection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
    });
  }

  /** Starts an emulator and resolves once it listens. Bad options throw a `TypeError` naming the option. */
  static async start(options: EmulatorOptions = {}): Promise<ChargebeeEmulator> {
    const emulator = new ChargebeeEmulator(normaliseOptions(options));
    await emulator.listen();
    return emulator;
  }

  private listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.config.port, this.config.host, () => {
        this.server.off('error', reject);
        const { port } = this.server.address() as AddressInfo;
        const host = this.config.host.includes(':') ? `[${this.config.host}]` : this.config.host;
        this.listeningUrl = `http://${host}:${port}`;
        resolve();
      });
    });
  }

  /** The listening URL, e.g. `http://127.0.0.1:41234`. */
  get url(): string {
    return this.listeningUrl;
  }

  /** `${url}/${site}/api/v2`; the site defaults to the first configured one and is not checked. */
  baseUrl(site?: string): string {
    return `${this.listeningUrl}/${site ?? this.siteState(undefined).name}/api/v2`;
  }

  /** The first API key of a configured site. */
  apiKey(site?: string): string {
    return this.siteState(site).firstKey;
  }

  /** A copy of the recorded API requests, oldest first. Pages and the control API are not recorded. */
  get requests(): RecordedRequest[] {
    return this.record.toArray();
  }

  clearRequests(): void {
    this.record.clear();
  }

  /** Recorded `POST .../portal_sessions/{id}/logout` requests, optionally for one portal session. */
  logoutRequests(portalSessionId?: string): RecordedRequest[] {
    return this.record.toArray().filter((r) => {
      const id = loggedOutId(r);
      return id !== undefined && (portalSessionId === undefined || id === portalSessionId);
    });
  }

  /** Copies of the portal sessions of one site, or of all sites when `site` is omitted, oldest first. */
  sessions(site?: string): EmulatedPortalSession[] {
    const out: EmulatedPortalSession[] = [];
    for (const stored of this.store.byId.values()) {
      if (site === undefined || stored.site === site) out.push(copySession(stored.data));
    }
    return out;
  }

  getSession(id: string): EmulatedPortalSession | undefined {
    const stored = this.store.byId.get(id);
    return stored ? copySession(stored.data) : undefined;
  }

  /** Seeds a portal session as `POST /portal_sessions` would create it. */
  createSession(input: CreateSessionInput): EmulatedPortalSession {
    if (typeof input?.customerId !== 'string' || input.customerId === '')
      throw new TypeError('createSession: customerId must be a non-empty string');
    if (input.createdAt !== undefined && !isNonNegativeInteger(input.createdAt))
      throw new TypeError('createSession: createdAt must be Unix seconds');
    const site = this.siteState(input.site).name;
    return copySession(this.store.create({ ...input, site }).data);
  }

  /**
   * Does what opening the access URL does: `created` becomes `logged_in`. Throws when the URL would not
   * work (unknown ID, already used, logged out, expired), as the portal would refuse it.
   */
  openSession(id: string, ip = '127.0.0.1'): EmulatedPortalSession {
    const stored = this.store.byId.get(id);
    if (!stored) throw new Error(`openSession: no portal session "${id}"`);
    const outcome = this.store.open(stored, ip);
    if (outcome !== 'logged_in')
      throw new Error(
        `openSession: the access URL of "${id}" does not work: ${outcome} (status ${stored.data.status})`,
      );
    return copySession(stored.data);
  }

  /** Adds a fault; faults are tried in the order they were added and the first match applies. Returns its remover. */
  injectFault(fault: EmulatorFault): () => void {
    const id = this.faults.add(fault);
    return () => void this.faults.remove(id);
  }

  clearFaults(): void {
    this.faults.clear();
  }

  /**
   * Sets or (with `undefined`) removes the rate limit of a configured site, for the API requests that
   * follow; a new limit starts a new window. Throws a `TypeError` for a bad limit.
   */
  setRateLimit(site: string, limit: EmulatorRateLimit | undefined): void {
    const name = this.siteState(site).name;
    this.api.rateLimits.setLimit(name, limit === undefined ? undefined : checkRateLimit(limit, 'limit'));
  }

  /** Counts of the site's API requests that reached the rate limiter since start or `reset()`. */
  rateLimitStats(site?: string): EmulatorRateLimitStats {
    return this.api.rateLimits.stats(this.siteState(site).name);
  }

  /**
   * Forgets sessions, recorded requests, faults, idempotency keys and rate-limit counts, and restores the
   * rate limits given at start.
   */
  reset(): void {
    this.store.clear();
    this.api.idempotency.clear();
    this.record.clear();
    this.faults.clear();
    this.restoreRateLimits();
  }

  /** Stops listening and destroys every open socket, hung and trickling ones included. */
  close(): Promise<void> {
    if (!this.closing) {
      this.closing = new Promise<void>((resolve) => {
        for (const timer of this.faultHost.timers) clearTimeout(timer);
        this.faultHost.timers.clear();
        for (const stream of this.faultHost.streams) stream.destroy();
        this.faultHost.streams.clear();
        this.server.close(() => resolve());
        for (const socket of this.sockets) socket.destroy();
      });
    }
    return this.closing;
  }

  private restoreRateLimits(): void {
    this.api.rateLimits.clear();
    for (const site of this.config.sites.values()) this.api.rateLimits.setLimit(site.name, site.rateLimit);
  }

  private siteState(site: string | undefined): SiteState {
    if (site === undefined) return this.config.sites.values().next().value as SiteState;
    const state = this.config.sites.get(site);
    if (!state) throw new Error(this.unknownSite(site));
    return state;
  }

  private unknownSite(site: string): string {
    return `The emulator has no site "${site}"; configured: ${[...this.config.sites.keys()].join(', ')}`;
  }

  private get pagesHost(): PagesHost {
    return {
      url: this.listeningUrl,
      siteNames: this.config.sites.keys(),
      baseUrl: (site) => this.baseUrl(site),
      sessions: this.store,
      record: this.record,
    };
  }

  private get controlHost(): ControlHost {
    return {
      emulator: this,
      sessions: this.store,
      faults: this.faults,
      rateLimits: this.api.rateLimits,
      siteNames: () => [...this.config.sites.keys()],
      site: (name) => {
        if (name === undefined || this.config.sites.has(name)) return this.siteState(name).name;
        throw new TypeError(this.unknownSite(name));
      },
    };
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    try {
      const url = req.url ?? '/';
      const q = url.indexOf('?');
      const pathname = q === -1 ? url : url.slice(0, q);
      if (pathname === '/') return handleOverview(this.pagesHost, req, res);
      if (pathname.startsWith('/portal/')) return handlePortalPage(this.pagesHost, req, res, pathname);
      if (pathname === '/_emulator' || pathname.startsWith('/_emulator/'))
        return handleControl(this.controlHost, req, res, pathname, q === -1 ? '' : url.slice(q + 1));
      if (pathname === '/favicon.ico') {
        res.writeHead(404, { 'content-length': 0 });
        res.end();
        return;
      }
      this.handleApi(req, res, url, pathname);
    } catch (err) {
      this.internalError(res, err);
    }
  }

  private internalError(res: ServerResponse, err: unknown): void {
    const message = `Emulator error: ${err instanceof Error ? err.message : String(err)}`;
    if (!res.headersSent) send(res, errorAnswer(500, 'internal_error', message));
    else res.destroy();
  }

  private handleApi(req: IncomingMessage, res: ServerResponse, url: string, pathname: string): void {
    let site: string | undefined;
    let apiPath: string | undefined;
    const slash = pathname.indexOf('/', 1);
    if (slash > 1) {
      const rest = pathname.slice(slash);
      if (rest === '/api/v2' || rest.startsWith('/api/v2/')) {
        site = pathname.slice(1, slash);
        apiPath = rest.length === 7 ? '/' : rest.slice(7);
      }
    }
    const method = req.method ?? 'GET';
    readBody(req, (body) => {
      try {
        this.record.push({ method, path: url, site, headers: req.headers, body: body ?? '', at: Date.now() });
        const request: ApiRequest = { req, method, site, apiPath, body };
        const fault = this.faults.size > 0 ? this.faults.take(method, apiPath, site) : undefined;
        if (fault) applyFault(this.faultHost, fault, request, res, () => answerApi(this.api, request));
        else send(res, answerApi(this.api, request));
      } catch (err) {
        this.internalError(res, err);
      }
    });
  }
}
