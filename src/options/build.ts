import type { Request } from 'express';
import pino, { type Logger } from 'pino';
import { customerHasher } from '../base/identifiers';
import type { EventSuppression } from '../base/origin-headers';
import { siteKey } from '../reliability/rate-limit';
import { ChargebeeClient } from '../chargebee/client';
import type { CoreSettings, ExpirySettings } from '../logout/settings';
import { LogoutObserver } from '../observability/observer';
import { openTelemetryApi, Telemetry, type TelemetrySettings } from '../observability/telemetry';
import { MemoryDeferredLogoutStore } from '../queue/memory-store';
import { MemoryPortalSessionRegistry } from '../registry/memory';
import type { PortalSessionRegistry } from '../registry/registry';
import { cookieStore } from '../remembered/cookie-store';
import { sessionStore } from '../remembered/session-store';
import { customStore, type InternalStore } from '../remembered/store';
import { activityIntervalFor, concurrencyFor, type Tuning } from './tuning';
import type { RequestValue } from './types';
import type { ValidatedOptions } from './validate';

/**
 * What the middleware runs with, built once from the validated options: the Chargebee clients (one per
 * site and key), the stores, the registry, the observer and the logger.
 */
export interface Settings extends CoreSettings {
  store: InternalStore;
  maxRemembered: number;
  defaultEntity: RequestValue;
  budgetMs: number;
  skipCrossSiteGet: boolean;
  ip: RequestValue;
  /** The IP comes from `req.ip`, so Express's `trust proxy` setting decides it. */
  ipFromReq: boolean;
  device: RequestValue;
  email: RequestValue;
  suppressEvents: EventSuppression;
  failClosed: boolean;
  logger: Logger;
  /** Setup warnings, logged once when the middleware is created. */
  warnings: string[];
  /** `undefined` without a registry (`registry: false`, the default without `everywhere`). */
  registry: PortalSessionRegistry | undefined;
  /** Whether a logout also ends the customer's other portal sessions; `undefined` when never. */
  everywhere: ((req: Request) => unknown) | undefined;
  /** The signed-in user's customer ID, from the app. */
  customerId: ((req: Request) => unknown) | undefined;
  /** Scheduled logouts (maximum age, idle expiry); `undefined` when off. */
  expiry: ExpirySettings | undefined;
  /** The drain-rate and registry tag of a business entity's Chargebee site (see `siteKey`). */
  siteFor: (entityId: string | undefined) => string;
  /** The keyed tag of a customer ID for log lines (keyed by the API key: see `customerHasher`). */
  hashCustomer: (customerId: string) => string;
}

/** Builds the settings from validated options; `tuning` holds the figures an app cannot set. */
export function buildSettings(o: ValidatedOptions, tuning: Tuning): Settings {
  // One client per site and key, so that each has one keep-alive pool and one circuit breaker.
  const clients = new Map<string, ChargebeeClient>();
  const clientOf = (baseUrl: string, apiKey: string): ChargebeeClient => {
    const target = `${baseUrl}\n${apiKey}`;
    let client = clients.get(target);
    if (!client) {
      client = new ChargebeeClient({ baseUrl, apiKey, maxSockets: tuning.maxSockets });
      clients.set(target, client);
    }
    return client;
  };
  const defaultClient = clientOf(o.baseUrl, o.apiKey);
  const entityClients = new Map([...o.entities].map(([id, e]) => [id, clientOf(e.baseUrl, e.apiKey)]));

  const ratePerMinute = o.deferred === false ? undefined : o.deferred.ratePerMinute;
  const clientFor = (entityId: string | undefined): ChargebeeClient =>
    (entityId !== undefined && entityClients.get(entityId)) || defaultClient;
  const sites = new Map([...clients.values()].map((client) => [client, siteKey(client.baseUrl)]));
  const siteOf = (client: ChargebeeClient): string => sites.get(client) ?? siteKey(client.baseUrl);
  return {
    clientFor,
    siteOf,
    siteFor: (entityId) => siteOf(clientFor(entityId)),
    hashCustomer: customerHasher(o.apiKey),
    clients: [...clients.values()],
    timeoutMs: tuning.attemptTimeoutMs ?? o.budgetMs,
    retry:
      o.maxAttempts === 1
        ? false
        : { maxAttempts: o.maxAttempts, baseDelayMs: tuning.retryBaseDelayMs, maxDelayMs: tuning.retryMaxDelayMs },
    deferred:
      o.deferred === false
        ? false
        : {
            store: o.deferred.store ?? new MemoryDeferredLogoutStore(),
            maxAgeMs: o.deferred.maxAgeMs,
            baseDelayMs: tuning.queueBaseDelayMs,
            maxDelayMs: tuning.queueMaxDelayMs,
            concurrency: tuning.concurrency ?? concurrencyFor(ratePerMinute),
            ratePerMinute,
          },
    circuitBreaker: o.circuitBreaker,
    onOutcome: o.onOutcome,
    observer: new LogoutObserver(
      new Telemetry(
        o.telemetry === false ? null : openTelemetryApi(),
        (o.telemetry || undefined) as Exclude<TelemetrySettings, false> | undefined,
      ),
    ),
    store: storeOf(o.store),
    maxRemembered: tuning.maxRemembered,
    defaultEntity: o.defaultEntity,
    budgetMs: o.budgetMs,
    skipCrossSiteGet: o.skipCrossSiteGet,
    ip: o.originHeaders.ip ?? ((req) => req.ip),
    ipFromReq: o.originHeaders.ip === undefined,
    device: o.originHeaders.device ?? ((req) => req.headers['user-agent']),
    email: o.originHeaders.email ?? defaultEmail,
    suppressEvents: o.suppressEvents,
    failClosed: o.failClosed,
    logger: o.logger ?? defaultLogger(),
    warnings: o.warnings,
    registry: o.registry === true ? new MemoryPortalSessionRegistry() : o.registry || undefined,
    everywhere: o.everywhere,
    customerId: o.customerId,
    expiry: o.expiry && {
      ...o.expiry,
      activityIntervalMs:
        o.expiry.idleMs === undefined ? 0 : (tuning.activityIntervalMs ?? activityIntervalFor(o.expiry.idleMs)),
    },
  };
}

function storeOf(store: ValidatedOptions['store']): InternalStore {
  switch (store.kind) {
    case 'session':
      return sessionStore('chargebeePortalSessions');
    case 'cookie':
      return cookieStore(store.cookie);
    case 'custom':
      return customStore(store.store);
  }
}

function defaultEmail(req: Request): string | undefined {
  const user = (req as unknown as { user?: { email?: unknown } }).user;
  return typeof user?.email === 'string' ? user.email : undefined;
}

/**
 * Synchronous writes to stdout: one line per logout costs a write call instead of a thread-pool round trip
 * (about 35 µs less per logout in `npm run bench`), and the lines `close()` writes at shutdown are not lost
 * when the process exits right after.
 */
function defaultLogger(): Logger {
  return pino(pino.destination({ dest: 1, sync: true }));
}
