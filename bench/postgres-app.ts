/**
 * An app process of `npm run bench:postgres`: the emulator and the middleware in one process, its deferred
 * queue on the PostgreSQL store (`STORE=postgres`) or in memory (`STORE=memory`); the bench runs one of
 * each, the same code (both hold a pg Pool), so that only the store differs. The store's pool is wrapped to
 * count what reaches the database. `POST /logout` logs out the portal session named in the request's cookie
 * (`p=<id>`); `POST /seed?n=N` opens N portal sessions and answers their IDs; `GET /queries` answers the
 * store's transactions and statements so far. Prints {"port"} once listening.
 */
import express from 'express';
import type { AddressInfo } from 'node:net';
import { Pool } from 'pg';
import pino from 'pino';
import { chargebeePortalLogout, type DeferredLogoutStore } from '../src';
import { PostgresDeferredLogoutStore } from '../src/postgres';
import { ChargebeeEmulator } from '../src/testing';
import { watchedPool } from '../test/helpers/postgres-suite';

async function main(): Promise<void> {
  const apiKey = 'test_bench_postgres';
  const emulator = await ChargebeeEmulator.start({ sites: { 'acme-test': { apiKey } }, recordLimit: 100 });
  const pool = new Pool({ connectionString: process.env.DATABASE_URL, max: 5 });
  pool.on('error', () => undefined);
  await pool.query('SELECT 1'); // both processes hold a connected pool
  const counts = { transactions: 0, statements: 0 };
  const counting = watchedPool(
    pool,
    () => counts.statements++,
    () => counts.transactions++,
  );
  const store: DeferredLogoutStore | undefined =
    process.env.STORE === 'postgres'
      ? new PostgresDeferredLogoutStore(counting, { table: 'bench_healthy_jobs' })
      : undefined;
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
  app.get('/queries', (_req, res) => void res.json(counts));
  const server = app.listen(0, '127.0.0.1', () =>
    process.stdout.write(`${JSON.stringify({ port: (server.address() as AddressInfo).port })}\n`),
  );
}

main().catch((error: unknown) => {
  process.stderr.write(`postgres-app: ${(error as Error).message}\n`);
  process.exit(1);
});
