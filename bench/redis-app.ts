/**
 * An app process of `npm run bench:redis`: the emulator and the middleware in one process, its deferred
 * queue on the Redis store (`STORE=redis`) or in memory (`STORE=memory`); the bench runs one of each, the
 * same code, so that only the store differs. `POST /logout` logs out the portal session named in the
 * request's cookie (`p=<id>`); `POST /seed?n=N` opens N portal sessions and answers their IDs. Prints
 * {"port"} once listening.
 */
import express from 'express';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import { createClient } from 'redis';
import { chargebeePortalLogout, type DeferredLogoutStore } from '../src';
import { RedisDeferredLogoutStore } from '../src/redis';
import { ChargebeeEmulator } from '../src/testing';

async function main(): Promise<void> {
  const apiKey = 'test_bench_redis';
  const emulator = await ChargebeeEmulator.start({ sites: { 'acme-test': { apiKey } }, recordLimit: 100 });
  // Both processes hold a connected client, so that only the store differs.
  const client = createClient({ url: process.env.REDIS_URL });
  client.on('error', () => undefined);
  await client.connect();
  const store: DeferredLogoutStore | undefined =
    process.env.STORE === 'redis' ? new RedisDeferredLogoutStore(client, { prefix: '{bench-healthy}:' }) : undefined;
  const portalLogout = chargebeePortalLogout({
    apiKey,
    baseUrl: emulator.baseUrl(),
    store: (req) => [/(?:^|;\s*)p=([\w-]+)/.exec(req.headers.cookie ?? '')?.[1] ?? ''],
    ...(store ? { deferred: { store } } : {}),
    logger: pino({ level: 'warn' }),
  });
  const app = express();
  app.post('/logout', portalLogout, (_req, res) => void res.json({ result: res.locals.chargebeePortalLogout?.result }));
  app.post('/seed', (req, res) => {
    const ids: string[] = [];
    for (let i = 0; i < Number(req.query.n); i++) {
      const portal = emulator.createSession({ customerId: `cus_${i}` });
      emulator.openSession(portal.id);
      ids.push(portal.id);
    }
    res.json(ids);
  });
  const server = app.listen(0, '127.0.0.1', () =>
    process.stdout.write(`${JSON.stringify({ port: (server.address() as AddressInfo).port })}\n`),
  );
}

main().catch((error: unknown) => {
  process.stderr.write(`redis-app: ${(error as Error).message}\n`);
  process.exit(1);
});
