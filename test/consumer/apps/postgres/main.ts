// An app with several instances: the deferred-logout queue and the registry of open portal sessions on
// PostgreSQL through the `/postgres` entry point, typed against the app's own `pg` Pool (and its types), and
// the SQL for a migration tool. No database is needed: a Pool connects only when asked to.
import assert from 'node:assert/strict';
import { chargebeePortalLogout, type DeferredLogoutStore, type PortalSessionRegistry } from 'chargebee-portal-logout';
import {
  POSTGRES_SCHEMA_SQL,
  PostgresDeferredLogoutStore,
  PostgresPortalSessionRegistry,
  postgresSchemaSql,
  type PostgresDeferredLogoutStoreOptions,
} from 'chargebee-portal-logout/postgres';
import { Pool } from 'pg';

async function main(): Promise<void> {
  const pool = new Pool({ connectionString: 'postgres://app:secret@127.0.0.1:5432/app', max: 10 });
  pool.on('error', () => undefined);
  const options: PostgresDeferredLogoutStoreOptions = { schema: 'logout', maxQueued: 50_000, createTables: false };
  const store: DeferredLogoutStore = new PostgresDeferredLogoutStore(pool, options);
  assert.equal(store.durable, true);
  assert.equal(store.leaseMs, 30_000);
  const registry: PortalSessionRegistry = new PostgresPortalSessionRegistry(pool, { maxPerCustomer: 5 });
  assert.throws(() => new PostgresDeferredLogoutStore(pool, { table: 'jobs; DROP TABLE x' }), /option table/);
  // The SQL a migration tool runs: the default names, or the ones the app gives the store.
  assert.match(POSTGRES_SCHEMA_SQL, /CREATE TABLE IF NOT EXISTS "public"\."chargebee_portal_logout_jobs"/);
  assert.match(postgresSchemaSql({ schema: 'logout' }), /CREATE SCHEMA IF NOT EXISTS "logout"/);
  const portalLogout = chargebeePortalLogout({
    site: 'acme-test',
    apiKey: 'test_consumer',
    deferred: { store },
    registry,
    everywhere: true,
    customerId: () => 'cus_consumer',
  });
  assert.equal(typeof portalLogout, 'function');
  assert.equal(typeof portalLogout.logoutCustomer, 'function');
  const imported = await import('chargebee-portal-logout/postgres');
  assert.equal(imported.PostgresDeferredLogoutStore, PostgresDeferredLogoutStore);
  assert.equal(imported.PostgresPortalSessionRegistry, PostgresPortalSessionRegistry);
  assert.equal(imported.POSTGRES_SCHEMA_SQL, POSTGRES_SCHEMA_SQL);
  await portalLogout.close({ timeoutMs: 0 });
  await pool.end();
  console.log('postgres app: the /postgres entry point with a pg Pool, its SQL, require and import: ok');
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
