/**
 * `chargebee-portal-logout/postgres`: what an app with several instances keeps in PostgreSQL: the
 * deferred-logout queue (deferred and scheduled logouts) and the registry of open portal sessions by
 * customer. Needs the `pg` package (node-postgres 8), an optional peer dependency of this package: give the
 * store and the registry the app's `pg` Pool.
 */
export {
  PostgresDeferredLogoutStore,
  DEFAULT_POSTGRES_MAX_QUEUED,
  DEFAULT_POSTGRES_LEASE_MS,
  type PostgresDeferredLogoutStoreOptions,
} from './store';
export {
  PostgresPortalSessionRegistry,
  DEFAULT_POSTGRES_REGISTRY_MAX_ENTRIES,
  type PostgresPortalSessionRegistryOptions,
} from './registry';
export { DEFAULT_QUERY_TIMEOUT_MS, DEFAULT_SCHEMA, type PostgresCommonOptions } from './options';
export {
  POSTGRES_SCHEMA_SQL,
  postgresSchemaSql,
  DEFAULT_JOBS_TABLE,
  DEFAULT_REGISTRY_TABLE,
  type PostgresTableNames,
} from './schema';
export type { PostgresPoolLike, PostgresPoolClientLike, PostgresQueryResult } from './connection';
