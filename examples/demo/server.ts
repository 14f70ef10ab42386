/**
 * `npm start`: the demo app on 127.0.0.1, with the Chargebee emulator in the same process unless
 * CHARGEBEE_SITE / CHARGEBEE_BASE_URL and CHARGEBEE_API_KEY are set. See config.ts for the variables.
 */
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import connectPgSimple from 'connect-pg-simple';
import { RedisStore } from 'connect-redis';
import session from 'express-session';
import { Pool } from 'pg';
import pino, { type Logger } from 'pino';
import { createClient } from 'redis';
import { PostgresDeferredLogoutStore, PostgresPortalSessionRegistry } from '../../src/postgres';
import { RedisDeferredLogoutStore, RedisPortalSessionRegistry } from '../../src/redis';
import { ChargebeeEmulator } from '../../src/testing';
import { createDemoApp } from './app';
import { ConfigError, readConfig, type DemoConfig } from './config';

const HOST = '127.0.0.1';

async function main(): Promise<void> {
  let config: DemoConfig;
  try {
    config = readConfig(process.env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`demo: ${error.message}\n`);
    process.exit(1);
  }

  // Readable lines on a terminal, JSON lines otherwise (a file, a log collector).
  const logger = process.stdout.isTTY
    ? pino({
        name: 'demo',
        transport: {
          target: 'pino-pretty',
          options: { ignore: 'pid,hostname,req,res,responseTime', translateTime: 'HH:MM:ss' },
        },
      })
    : pino({ name: 'demo' });

  let emulator: ChargebeeEmulator | undefined;
  let chargebee = config.chargebee.kind === 'remote' ? config.chargebee : undefined;
  if (!chargebee) {
    const apiKey = `test_demo_${randomBytes(12).toString('hex')}`;
    emulator = await ChargebeeEmulator.start({ sites: { 'acme-test': { apiKey } }, host: HOST });
    chargebee = { kind: 'remote', baseUrl: emulator.baseUrl(), apiKey };
  }
  const { site, baseUrl, apiKey } = chargebee;
  const redis = config.redisUrl ? await connectRedis(config.redisUrl, logger) : undefined;
  const postgres = config.databaseUrl ? await connectPostgres(config.databaseUrl, logger) : undefined;
  const sessionStore = postgres
    ? new (connectPgSimple(session))({ pool: postgres, createTableIfMissing: false })
    : undefined;
  const demo = createDemoApp({
    chargebee: { site, baseUrl, apiKey },
    businessEntityId: config.businessEntityId,
    trustProxy: config.trustProxy,
    emulatorUrl: emulator?.url,
    logger,
    sessionSecret: config.sessionSecret,
    expiry: config.expiry,
    // One client for all: sessions through connect-redis, deferred logouts and the registry of open portal
    // sessions (every device's, whichever process opened them) through this package.
    ...(redis
      ? {
          sessionStore: new RedisStore({ client: redis, prefix: 'demo:sess:' }),
          deferredStore: new RedisDeferredLogoutStore(redis),
          registry: new RedisPortalSessionRegistry(redis),
        }
      : {}),
    // One pool for all: sessions through connect-pg-simple, deferred logouts and the registry through this
    // package (their tables are made on first use, safely when several processes start at once).
    ...(postgres && sessionStore
      ? {
          sessionStore,
          deferredStore: new PostgresDeferredLogoutStore(postgres),
          registry: new PostgresPortalSessionRegistry(postgres),
        }
      : {}),
  });

  const server = demo.app.listen(config.port, HOST);
  server.once('error', (error: NodeJS.ErrnoException) => {
    const reason =
      error.code === 'EADDRINUSE' ? `port ${config.port} is in use; set PORT to another port` : error.message;
    process.stderr.write(`demo: PORT: ${reason}\n`);
    process.exit(1);
  });
  server.once('listening', () => {
    const { port } = server.address() as AddressInfo;
    const lines = [`Demo app:  http://${HOST}:${port}/   <- open this`];
    if (emulator)
      lines.push(`Chargebee emulator: ${emulator.url}/   (portal sessions and the headers each logout carried)`);
    else lines.push(`Chargebee: ${site ? `site ${site}` : baseUrl}`);
    if (redis)
      lines.push(`Sessions, deferred logouts, open portal sessions: Redis at ${redactedUrl(config.redisUrl!)}`);
    if (postgres)
      lines.push(`Sessions, deferred logouts, open portal sessions: PostgreSQL at ${redactedUrl(config.databaseUrl!)}`);
    if (config.expiry)
      lines.push(
        `Portal sessions end by themselves:${config.expiry.maxAgeMs ? ` ${config.expiry.maxAgeMs / 1000} s after opening` : ''}${config.expiry.maxAgeMs && config.expiry.idleMs ? ',' : ''}${config.expiry.idleMs ? ` ${config.expiry.idleMs / 1000} s idle` : ''}`,
      );
    process.stdout.write(`${lines.join('\n')}\nCtrl-C to stop.\n`);
  });

  let stopping = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) process.exit(1); // a second Ctrl-C: stop now
    stopping = true;
    process.stdout.write(`${signal}: stopping.\n`);
    server.close();
    server.closeAllConnections(); // browsers keep idle connections open; they would hold close() up
    void Promise.all([demo.close(), emulator?.close()])
      .then(() => redis?.close())
      .then(() => sessionStore?.close())
      .then(() => postgres?.end())
      .then(() => logger.flush(() => process.exit(0)));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

/** Connects the demo's one Redis client; its errors (Redis down, reconnecting) are logged, never thrown. */
async function connectRedis(url: string, logger: Logger) {
  const client = createClient({ url });
  let reported = false;
  client.on('error', (error: Error) => {
    if (reported) return;
    reported = true;
    logger.warn({ err: { type: error.name, message: error.message } }, 'demo: Redis connection failed; retrying');
  });
  client.on('ready', () => {
    reported = false;
  });
  await client.connect();
  return client;
}

/**
 * The demo's one PostgreSQL pool; its errors (an idle connection lost when the database restarts) are
 * logged, never thrown (pg's Pool emits 'error' for them: without a listener the process would exit). The
 * session table of connect-pg-simple is made here, once, before any request: its own createTableIfMissing
 * races when several processes start at once, so this takes a transaction-level advisory lock around it.
 */
async function connectPostgres(url: string, logger: Logger): Promise<Pool> {
  const pool = new Pool({ connectionString: url, max: 10, connectionTimeoutMillis: 5000 });
  let reported = false;
  pool.on('error', (error: Error) => {
    if (reported) return;
    reported = true;
    logger.warn({ err: { type: error.name, message: error.message } }, 'demo: a PostgreSQL connection failed');
  });
  pool.on('connect', () => {
    reported = false;
  });
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    await client.query("SELECT pg_advisory_xact_lock(hashtext('chargebee-portal-logout-demo:session-table'))");
    const { rows } = await client.query<{ found: boolean }>(`SELECT to_regclass('"session"') IS NOT NULL AS found`);
    if (!rows[0].found) await client.query(readFileSync(require.resolve('connect-pg-simple/table.sql'), 'utf8'));
    await client.query('COMMIT');
    client.release();
  } catch (error) {
    client.release(error as Error);
    throw error;
  }
  return pool;
}

/** The URL without its password, for the start banner. */
function redactedUrl(url: string): string {
  const parsed = new URL(url);
  if (parsed.password) parsed.password = '***';
  return parsed.href;
}

main().catch((error: unknown) => {
  process.stderr.write(`demo: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
