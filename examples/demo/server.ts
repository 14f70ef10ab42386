/**
 * `npm start`: the demo app on 127.0.0.1, with the Chargebee emulator in the same process unless
 * CHARGEBEE_SITE / CHARGEBEE_BASE_URL and CHARGEBEE_API_KEY are set. See config.ts for the variables.
 */
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { RedisStore } from 'connect-redis';
import pino, { type Logger } from 'pino';
import { createClient } from 'redis';
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
