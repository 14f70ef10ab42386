/**
 * An app instance of `npm run bench:recovery` (bench/recovery.ts), run as a child process: the middleware as
 * `chargebeePortalLogout` builds it (default budget, retries, circuit breaker and queue backoffs: nothing of
 * the package's fixed figures changed), its deferred queue on the Redis store, in front of the emulator of
 * the bench process. POST /logout logs out the portal session named in the x-portal-session header.
 * Settings from the environment: REDIS_URL, PREFIX, BASE_URL, API_KEY, RATE (deferred.ratePerMinute).
 * Prints JSON lines on stdout: {"port"} once listening, {"final","status","at"} per deferred logout's final
 * result (ID hash, epoch ms), and {"woken","at"} when the queue logs that Chargebee answers again.
 */
import express from 'express';
import pino from 'pino';
import { createClient } from 'redis';
import { chargebeePortalLogout } from '../src';
import { RedisDeferredLogoutStore } from '../src/redis';
import { runFixture, serveInstance } from '../test/fixtures/serve';

const env = process.env;
const emit = (line: object) => process.stdout.write(`${JSON.stringify(line)}\n`);

/**
 * The middleware's log, read rather than written: the recovery's line becomes a {"woken"} line, errors go to
 * stderr, the rest (one line per logout) is dropped so that the bench's pipes carry little.
 */
const logSink = {
  write(line: string): void {
    if (line.includes('Chargebee answers again')) {
      const entry = JSON.parse(line) as { time: number; chargebeePortalLogout?: { due?: number } };
      emit({ woken: entry.chargebeePortalLogout?.due, at: entry.time });
    } else if (/"level":(50|60)/.test(line)) process.stderr.write(line);
  },
};

async function main(): Promise<void> {
  const client = createClient({ url: env.REDIS_URL });
  client.on('error', () => undefined);
  await client.connect();
  const store = new RedisDeferredLogoutStore(client, { prefix: env.PREFIX, maxQueued: 100_000 });
  const portalLogout = chargebeePortalLogout({
    apiKey: env.API_KEY ?? '',
    baseUrl: env.BASE_URL,
    store: (req) => [req.get('x-portal-session') ?? ''],
    deferred: { store, ratePerMinute: Number(env.RATE) },
    onOutcome: (outcome, req) => {
      if (!req) emit({ final: outcome.idHash, status: outcome.status, at: Date.now() });
    },
    logger: pino({ level: 'info' }, logSink),
  });
  const app = express();
  app.post('/logout', portalLogout, (_req, res) => void res.json(res.locals.chargebeePortalLogout));
  serveInstance(app, portalLogout, client);
}

runFixture('recovery-instance', main);
