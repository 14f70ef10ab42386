/** Checks the emulator's options once, at start, into the settings it runs with. */
import type { EmulatorOptions, EmulatorRateLimit, EmulatorSiteConfig } from './types';

export interface SiteState {
  name: string;
  keys: Set<string>;
  firstKey: string;
  /** Exact `Authorization` values of the keys, so the usual request skips Base64 decoding. */
  authHeaders: Set<string>;
  /** The limit configured at start; `reset()` restores it. */
  rateLimit: Required<EmulatorRateLimit> | undefined;
}

export interface Config {
  sites: Map<string, SiteState>;
  host: string;
  port: number;
  recordLimit: number;
  publicUrl: string | undefined;
  idempotencyWindowMs: number;
  idempotencyCacheLimit: number;
}

export const DEFAULT_SITES: Record<string, EmulatorSiteConfig> = { 'acme-test': { apiKey: 'test_emulator_key' } };
export const DEFAULT_RATE_LIMIT_WINDOW_MS = 60_000;
/** Path segments that would make API paths ambiguous with the emulator's own routes. */
const RESERVED_SITE_NAMES = new Set(['portal', '_emulator', 'api', 'favicon.ico']);
const SITE_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]*$/;

export function isNonNegativeInteger(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0;
}

/** Checks a rate limit given as an option, to `setRateLimit()` or to the control API; `name` prefixes errors. */
export function checkRateLimit(limit: unknown, name: string): Required<EmulatorRateLimit> {
  if (typeof limit !== 'object' || limit === null)
    throw new TypeError(`${name} must be an object { requests, windowMs }`);
  const { requests, windowMs = DEFAULT_RATE_LIMIT_WINDOW_MS } = limit as Record<string, unknown>;
  if (!isNonNegativeInteger(requests))
    throw new TypeError(`${name}.requests must be a non-negative integer, got ${String(requests)}`);
  if (!isNonNegativeInteger(windowMs) || windowMs === 0)
    throw new TypeError(`${name}.windowMs must be a positive integer of milliseconds, got ${String(windowMs)}`);
  return { requests, windowMs };
}

function checkSite(name: string, site: EmulatorSiteConfig | undefined): SiteState {
  if (!SITE_NAME.test(name) || RESERVED_SITE_NAMES.has(name)) {
    throw new TypeError(
      `options.sites: "${name}" is not a usable site name (letters, digits, "_" and "-"; not ${[...RESERVED_SITE_NAMES].join(', ')})`,
    );
  }
  const keys = Array.isArray(site?.apiKey) ? site.apiKey : [site?.apiKey];
  if (keys.length === 0 || !keys.every((k): k is string => typeof k === 'string' && k.length > 0 && !k.includes(':'))) {
    throw new TypeError(
      `options.sites["${name}"].apiKey must be a non-empty string without ":" or a non-empty array of them`,
    );
  }
  return {
    name,
    keys: new Set(keys),
    firstKey: keys[0],
    authHeaders: new Set(keys.map((k) => `Basic ${Buffer.from(`${k}:`).toString('base64')}`)),
    rateLimit:
      site?.rateLimit === undefined ? undefined : checkRateLimit(site.rateLimit, `options.sites["${name}"].rateLimit`),
  };
}

function checkPublicUrl(publicUrl: unknown): string {
  let parsed: URL | undefined;
  try {
    parsed = new URL(String(publicUrl));
  } catch {
    parsed = undefined;
  }
  if (typeof publicUrl !== 'string' || !parsed || (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')) {
    throw new TypeError(`options.publicUrl must be an absolute http(s) URL, got ${String(publicUrl)}`);
  }
  return publicUrl.replace(/\/+$/, '');
}

/** Bad options throw a `TypeError` naming the option. */
export function normaliseOptions(options: EmulatorOptions): Config {
  if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object');
  const siteEntries = Object.entries(options.sites ?? DEFAULT_SITES);
  if (siteEntries.length === 0) throw new TypeError('options.sites must name at least one site');
  const sites = new Map<string, SiteState>(siteEntries.map(([name, site]) => [name, checkSite(name, site)]));
  const port = options.port ?? 0;
  if (!isNonNegativeInteger(port) || port > 65535)
    throw new TypeError(`options.port must be an integer from 0 to 65535, got ${String(port)}`);
  const recordLimit = options.recordLimit ?? 10_000;
  if (!isNonNegativeInteger(recordLimit))
    throw new TypeError(`options.recordLimit must be a non-negative integer, got ${String(recordLimit)}`);
  const idempotencyWindowMs = options.idempotencyWindowMs ?? 30 * 60 * 1000;
  if (!isNonNegativeInteger(idempotencyWindowMs))
    throw new TypeError('options.idempotencyWindowMs must be a non-negative integer');
  const idempotencyCacheLimit = options.idempotencyCacheLimit ?? 50_000;
  if (!isNonNegativeInteger(idempotencyCacheLimit))
    throw new TypeError('options.idempotencyCacheLimit must be a non-negative integer');
  const host = options.host ?? '127.0.0.1';
  if (typeof host !== 'string' || host === '') throw new TypeError('options.host must be a non-empty string');
  const publicUrl = options.publicUrl === undefined ? undefined : checkPublicUrl(options.publicUrl);
  return { sites, host, port, recordLimit, publicUrl, idempotencyWindowMs, idempotencyCacheLimit };
}
