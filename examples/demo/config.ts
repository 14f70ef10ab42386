/**
 * The demo's configuration, read from the environment once at start. A bad value throws a
 * {@link ConfigError} whose one-line message names the variable; server.ts prints it and exits 1.
 */
import express from 'express';
import { ChargebeeClient } from '../../src';
import { isValidBusinessEntityId } from '../../src/base/identifiers'; // the rule the middleware applies; not exported

/** Where the demo's Chargebee calls go: the embedded emulator, or a site (real, a proxy, an emulator elsewhere). */
export type ChargebeeTarget =
  { kind: 'emulator' } | { kind: 'remote'; site?: string; baseUrl?: string; apiKey: string };

export interface DemoConfig {
  /** Port of the demo app on 127.0.0.1. `PORT`, default 3000; 0 picks a free one. */
  port: number;
  /** Express's `trust proxy` setting. `TRUST_PROXY`, default false. */
  trustProxy: boolean | number | string;
  chargebee: ChargebeeTarget;
  /** Entity of portal sessions remembered without one. `CHARGEBEE_BUSINESS_ENTITY_ID`, default none. */
  businessEntityId?: string;
  /**
   * `REDIS_URL` (`redis://` or `rediss://`), default none: sessions (connect-redis) and deferred logouts
   * (the Redis store) in that Redis, so that several demo processes share sign-ins and the queue.
   */
  redisUrl?: string;
  /**
   * `DATABASE_URL` (`postgres://` or `postgresql://`), default none: sessions (connect-pg-simple), deferred
   * logouts and the registry of open portal sessions (the PostgreSQL store and registry) in that database,
   * so that several demo processes share sign-ins and the queue. Not with `REDIS_URL`.
   */
  databaseUrl?: string;
  /**
   * `SESSION_SECRET`: signs the session cookie. Default: {@link DEV_SESSION_SECRET} with `REDIS_URL` or
   * `DATABASE_URL` (so that every demo process accepts the others' cookies), otherwise random at each start.
   */
  sessionSecret?: string;
  /**
   * Portal sessions that end by themselves: `PORTAL_MAX_AGE_MS` (the maximum portal-session age) and
   * `PORTAL_IDLE_MS` (idle time of the sign-in), in milliseconds, default none. Short values (30000)
   * let you watch a portal session end on the emulator's page without signing out.
   */
  expiry?: { maxAgeMs?: number; idleMs?: number };
}

/** The development default of `SESSION_SECRET` when `REDIS_URL` or `DATABASE_URL` is set. Never use it outside a demo. */
export const DEV_SESSION_SECRET = 'chargebee-portal-logout-demo-development-secret';

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** `TRUST_PROXY` as Express reads it: true/false, a hop count, or addresses and names (`loopback, 10.0.0.0/8`). */
export function parseTrustProxy(value: string): boolean | number | string {
  const text = value.trim();
  if (/^true$/i.test(text)) return true;
  if (/^false$/i.test(text)) return false;
  if (/^\d+$/.test(text)) return Number(text);
  try {
    express().set('trust proxy', text); // compiles the list: an address that does not parse throws here
  } catch (error) {
    throw new ConfigError(
      `TRUST_PROXY: ${(error as Error).message} (use true, false, a hop count, or addresses such as "loopback, 10.0.0.0/8")`,
    );
  }
  return text;
}

export function readConfig(env: NodeJS.ProcessEnv = process.env): DemoConfig {
  const get = (name: string): string | undefined => {
    const value = env[name]?.trim();
    return value === '' ? undefined : value;
  };

  const portText = get('PORT') ?? '3000';
  const port = Number(portText);
  if (!/^\d+$/.test(portText) || port > 65535)
    throw new ConfigError(`PORT: "${portText}" is not a port number (0 to 65535)`);

  const trustProxy = parseTrustProxy(get('TRUST_PROXY') ?? 'false');

  const businessEntityId = get('CHARGEBEE_BUSINESS_ENTITY_ID');
  if (businessEntityId !== undefined && !isValidBusinessEntityId(businessEntityId)) {
    throw new ConfigError('CHARGEBEE_BUSINESS_ENTITY_ID: use letters, digits, "_" or "-" (at most 100)');
  }

  const site = get('CHARGEBEE_SITE');
  const baseUrl = get('CHARGEBEE_BASE_URL');
  const apiKey = get('CHARGEBEE_API_KEY');
  let chargebee: ChargebeeTarget = { kind: 'emulator' };
  if (site !== undefined || baseUrl !== undefined || apiKey !== undefined) {
    if (apiKey === undefined)
      throw new ConfigError(
        `CHARGEBEE_API_KEY: required with ${site !== undefined ? 'CHARGEBEE_SITE' : 'CHARGEBEE_BASE_URL'}`,
      );
    if (site === undefined && baseUrl === undefined)
      throw new ConfigError('CHARGEBEE_SITE: required with CHARGEBEE_API_KEY (or set CHARGEBEE_BASE_URL)');
    try {
      new ChargebeeClient({ site, baseUrl, apiKey }).close(); // the library's own checks of site, base URL and key
    } catch (error) {
      const message = (error as Error).message;
      const variable = /^option (\w+)/.exec(message)?.[1];
      const name =
        variable === 'baseUrl' ? 'CHARGEBEE_BASE_URL' : variable === 'apiKey' ? 'CHARGEBEE_API_KEY' : 'CHARGEBEE_SITE';
      throw new ConfigError(`${name}: ${message.replace(/^option \w+ /, '')}`);
    }
    chargebee = { kind: 'remote', site, baseUrl, apiKey };
  }
  const redisUrl = get('REDIS_URL');
  if (redisUrl !== undefined) {
    let protocol = '';
    try {
      protocol = new URL(redisUrl).protocol;
    } catch {
      // reported below
    }
    if (protocol !== 'redis:' && protocol !== 'rediss:')
      throw new ConfigError('REDIS_URL: use a redis:// or rediss:// URL, such as redis://127.0.0.1:6379');
  }
  const databaseUrl = get('DATABASE_URL');
  if (databaseUrl !== undefined) {
    let protocol = '';
    try {
      protocol = new URL(databaseUrl).protocol;
    } catch {
      // reported below
    }
    if (protocol !== 'postgres:' && protocol !== 'postgresql:')
      throw new ConfigError(
        'DATABASE_URL: use a postgres:// or postgresql:// URL, such as postgres://user:password@127.0.0.1:5432/app',
      );
    if (redisUrl !== undefined)
      throw new ConfigError('DATABASE_URL: set REDIS_URL or DATABASE_URL, not both (one shared store for the demo)');
  }
  const shared = redisUrl !== undefined || databaseUrl !== undefined;
  const sessionSecret = get('SESSION_SECRET') ?? (shared ? DEV_SESSION_SECRET : undefined);
  const duration = (name: string): number | undefined => {
    const text = get(name);
    if (text === undefined) return undefined;
    if (!/^\d+$/.test(text) || Number(text) < 1000 || Number(text) > 365 * 24 * 3600 * 1000)
      throw new ConfigError(`${name}: "${text}" is not a number of milliseconds from 1000 (such as 30000 for 30 s)`);
    return Number(text);
  };
  const maxAgeMs = duration('PORTAL_MAX_AGE_MS');
  const idleMs = duration('PORTAL_IDLE_MS');
  const expiry =
    maxAgeMs === undefined && idleMs === undefined
      ? undefined
      : { ...(maxAgeMs === undefined ? {} : { maxAgeMs }), ...(idleMs === undefined ? {} : { idleMs }) };
  return {
    port,
    trustProxy,
    chargebee,
    businessEntityId,
    redisUrl,
    ...(databaseUrl === undefined ? {} : { databaseUrl }),
    sessionSecret,
    ...(expiry ? { expiry } : {}),
  };
}
