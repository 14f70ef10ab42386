import { OptionCheck } from '../base/validate';
import type { PostgresPoolLike } from './connection';

/** Default longest time of one call to PostgreSQL (the wait for a pool client included), client and server side. */
export const DEFAULT_QUERY_TIMEOUT_MS = 1000;
/** Default schema of the tables. */
export const DEFAULT_SCHEMA = 'public';

/**
 * A schema or table name this package accepts: lower-case letters, digits and `_`, starting with a letter
 * or `_`, at most 40 characters (the tables' indexes add a suffix within PostgreSQL's 63). It is still
 * quoted in every statement; nothing else of an option ever reaches SQL text.
 */
const IDENTIFIER = /^[a-z_][a-z0-9_]{0,39}$/;

/** The settings every PostgreSQL store and registry takes, checked the same way. */
export interface PostgresCommonOptions {
  /**
   * Schema of the tables. Default `'public'`. Lower-case letters, digits and `_` (at most 40). With
   * `createTables`, a schema other than `public` is created when missing.
   */
  schema?: string;
  /**
   * Creates the tables (and their indexes) on first use when they are missing, safely when several
   * instances start at once (under a transaction-level advisory lock). Default `true`. Set `false` when a
   * migration tool creates them (the SQL is `POSTGRES_SCHEMA_SQL`, or `postgresSchemaSql()` for other
   * names) and the app's role may not run DDL.
   */
  createTables?: boolean;
  /**
   * Longest time of one call, whatever the pool's own settings: the wait for a pool client and every round
   * trip (client side), and `statement_timeout` of its transaction (server side). Default 1000 ms.
   */
  queryTimeoutMs?: number;
}

/** A schema or table name, checked; throws the setup error naming `name`. */
export function identifier(check: OptionCheck, value: unknown, name: string, fallback: string): string {
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || !IDENTIFIER.test(value))
    check.fail(
      `option ${name} must be a PostgreSQL name of lower-case letters, digits and _ (starting with a letter or _, at most 40 characters)`,
    );
  return value;
}

/** `"name"`: a name checked by {@link identifier}, quoted. */
export function quoted(name: string): string {
  return `"${name}"`;
}

/**
 * Checks the pool and the common options of a PostgreSQL store or registry (`owner` names it in errors):
 * a `pg` Pool (anything with `connect()`), an options object, the schema, a whole timeout.
 */
export function postgresCommon(
  owner: string,
  pool: unknown,
  options: unknown,
  known: readonly string[],
): {
  check: OptionCheck;
  options: Record<string, unknown>;
  schema: string;
  createTables: boolean;
  queryTimeoutMs: number;
} {
  const check: OptionCheck = new OptionCheck(owner);
  if (typeof (pool as Partial<PostgresPoolLike> | null | undefined)?.connect !== 'function')
    check.fail('pass a pg Pool (new Pool() from the pg package)');
  if (typeof options !== 'object' || options === null || Array.isArray(options))
    check.fail('options must be an object');
  const o = options as Record<string, unknown>;
  check.keys(o, new Set(['schema', 'createTables', 'queryTimeoutMs', ...known]));
  return {
    check,
    options: o,
    schema: identifier(check, o.schema, 'schema', DEFAULT_SCHEMA),
    createTables: check.boolean(o.createTables, 'createTables', true),
    queryTimeoutMs: check.whole(o.queryTimeoutMs, 'queryTimeoutMs', DEFAULT_QUERY_TIMEOUT_MS, 1, 600_000),
  };
}
