import { deadlineIn, remaining, within } from '../base/time';
import { OptionCheck } from '../base/validate';
import { POSTGRES, transaction, type PostgresPoolLike, type Transaction, type TransactionOptions } from './connection';
import { DEFAULT_SCHEMA, identifier, quoted } from './options';

/**
 * The tables of the PostgreSQL store and registry, as SQL: run on first use by default, and shipped for
 * migration tools (`POSTGRES_SCHEMA_SQL`, or `postgresSchemaSql()` for other names). Every statement is
 * idempotent (`IF NOT EXISTS`). Times are `timestamptz` on the database's clock.
 */

/** Default table of the deferred-logout store; its drain-rate table is `<table>_sites`. */
export const DEFAULT_JOBS_TABLE = 'chargebee_portal_logout_jobs';
/** Default table of the registry of open portal sessions. */
export const DEFAULT_REGISTRY_TABLE = 'chargebee_portal_logout_portal_sessions';

/** Names of the tables, as the options give them (checked identifiers). */
export interface PostgresTableNames {
  /** Default `'public'`. */
  schema?: string;
  /** The deferred-logout store's table. Default `'chargebee_portal_logout_jobs'`. */
  jobsTable?: string;
  /** The registry's table. Default `'chargebee_portal_logout_portal_sessions'`. */
  registryTable?: string;
}

/** The qualified, quoted names of the store's tables and the unqualified names of their indexes. */
export function jobsNames(schema: string, table: string) {
  const q = (name: string) => `${quoted(schema)}.${quoted(name)}`;
  return {
    schema,
    jobs: q(table),
    sites: q(`${table}_sites`),
    /** For `to_regclass`. */
    regclasses: [q(table), q(`${table}_sites`)],
    index: (suffix: string) => quoted(`${table}_${suffix}`),
  };
}

export function registryNames(schema: string, table: string) {
  const q = (name: string) => `${quoted(schema)}.${quoted(name)}`;
  return {
    schema,
    entries: q(table),
    regclasses: [q(table)],
    index: (suffix: string) => quoted(`${table}_${suffix}`),
  };
}

/** The deferred-logout store's tables and indexes, as statements. */
function jobsStatements(schema: string, table: string): string[] {
  const n = jobsNames(schema, table);
  return [
    `-- Deferred and scheduled logouts: one row per portal session.
CREATE TABLE IF NOT EXISTS ${n.jobs} (
  portal_session_id text PRIMARY KEY,
  -- The Chargebee site (a short hash of its base URL), '' for none: the drain rate is per site.
  site text NOT NULL,
  -- When it may be handed over: its notBefore, or while handed over the end of its lease.
  due_at timestamptz NOT NULL,
  first_attempt_at timestamptz NOT NULL,
  -- Since when it waits (its first attempt; a scheduled logout not tried yet: its due time), for stats().
  waiting_since timestamptz NOT NULL,
  -- A scheduled logout is never postponed past this time.
  latest_at timestamptz,
  attempts integer NOT NULL,
  reason text NOT NULL,
  pending_schedule boolean GENERATED ALWAYS AS (attempts = 0 AND reason IN ('portal_max_age', 'idle')) STORED,
  idempotency_key text NOT NULL,
  business_entity_id text,
  -- The chargebee-* headers of the logout: origin IP, device, email.
  headers jsonb NOT NULL,
  traceparent text,
  -- The taker's token while handed over (the fencing token of put-backs and give-ups).
  lease text,
  -- A new deferral came while it was handed over: its first attempt.
  renewed_at timestamptz,
  -- Past the queue's maximum age, a lease and a margin: deleted by any instance.
  expires_at timestamptz NOT NULL
);`,
    `CREATE INDEX IF NOT EXISTS ${n.index('due')} ON ${n.jobs} (site, due_at);`,
    `CREATE INDEX IF NOT EXISTS ${n.index('waiting')} ON ${n.jobs} (waiting_since);`,
    `CREATE INDEX IF NOT EXISTS ${n.index('expires')} ON ${n.jobs} (expires_at);`,
    `-- The drain rate of each Chargebee site: one token bucket for every instance, and a 429's pause.
CREATE TABLE IF NOT EXISTS ${n.sites} (
  site text PRIMARY KEY,
  tokens double precision,
  refilled_at timestamptz,
  paused_until timestamptz
);`,
  ];
}

/** The registry's table and indexes, as statements. */
function registryStatements(schema: string, table: string): string[] {
  const n = registryNames(schema, table);
  return [
    `-- Open portal sessions by customer, for logoutCustomer() and a sign-out everywhere.
CREATE TABLE IF NOT EXISTS ${n.entries} (
  site text NOT NULL,
  portal_session_id text NOT NULL,
  customer_id text NOT NULL,
  business_entity_id text,
  remembered_at timestamptz NOT NULL,
  -- The order of remembering, for entries remembered in the same millisecond.
  seq bigint GENERATED ALWAYS AS IDENTITY,
  PRIMARY KEY (site, portal_session_id)
);`,
    `CREATE INDEX IF NOT EXISTS ${n.index('customer')} ON ${n.entries} (site, customer_id, remembered_at, seq);`,
    `CREATE INDEX IF NOT EXISTS ${n.index('age')} ON ${n.entries} (remembered_at, seq);`,
  ];
}

const withSchema = (schema: string, statements: string[]): string =>
  [...(schema === 'public' ? [] : [`CREATE SCHEMA IF NOT EXISTS ${quoted(schema)};`]), ...statements].join('\n') + '\n';

/** The deferred-logout store's tables (and the schema, when not `public`). */
export function jobsTablesSql(schema: string, table: string): string {
  return withSchema(schema, jobsStatements(schema, table));
}

/** The registry's table (and the schema, when not `public`). */
export function registryTableSql(schema: string, table: string): string {
  return withSchema(schema, registryStatements(schema, table));
}

/**
 * The SQL that creates every table of this package (the deferred-logout store's and the registry's) under
 * these names, for a migration tool. Idempotent. Give the names the store and registry get as options.
 */
export function postgresSchemaSql(names: PostgresTableNames = {}): string {
  const check = new OptionCheck('postgresSchemaSql');
  const schema = identifier(check, names.schema, 'schema', DEFAULT_SCHEMA);
  const jobs = identifier(check, names.jobsTable, 'jobsTable', DEFAULT_JOBS_TABLE);
  const registry = identifier(check, names.registryTable, 'registryTable', DEFAULT_REGISTRY_TABLE);
  return withSchema(schema, [...jobsStatements(schema, jobs), ...registryStatements(schema, registry)]);
}

/**
 * The SQL of {@link postgresSchemaSql} with the default names (schema `public`): what the store and the
 * registry create on first use, for a migration tool.
 */
export const POSTGRES_SCHEMA_SQL: string = postgresSchemaSql();

/** Key of the advisory lock under which instances create the tables, one at a time. */
const SCHEMA_LOCK = 'chargebee-portal-logout:schema';

/** How long the tables' setup may take, across the calls that wait for it. */
const SETUP_TIMEOUT_MS = 10_000;

/**
 * Makes sure the tables exist, once per store or registry: a look (no DDL, no lock) when they do; when a
 * table is missing, `sql` under a transaction-level advisory lock (instances starting together wait for
 * each other instead of racing on the catalog), or, with `create` false, an error that says what to run.
 * A failed attempt is tried again at the next call.
 */
export class TableSetup {
  private done = false;
  private pending: Promise<void> | undefined;

  constructor(
    private readonly pool: PostgresPoolLike,
    private readonly regclasses: readonly string[],
    private readonly sql: string,
    private readonly create: boolean,
    private readonly owner: string,
  ) {}

  /**
   * One transaction within `timeoutMs` in all, the tables made first on first use within the same deadline
   * (the setup itself may go on for up to 10 s for the next call, whatever this one's deadline).
   */
  async call<T>(
    timeoutMs: number,
    work: (tx: Transaction) => Promise<T>,
    options: TransactionOptions = {},
  ): Promise<T> {
    const deadline = deadlineIn(timeoutMs);
    const setup = this.ready(SETUP_TIMEOUT_MS);
    if (setup) await within(setup, deadline, POSTGRES);
    return transaction(this.pool, Math.max(1, remaining(deadline)), work, options);
  }

  /** Resolves once the tables exist; `timeoutMs` bounds each of its transactions. */
  private ready(timeoutMs: number): Promise<void> | undefined {
    if (this.done) return undefined;
    this.pending ??= this.setUp(timeoutMs).then(
      () => {
        this.done = true;
      },
      (error: unknown) => {
        this.pending = undefined;
        throw error;
      },
    );
    return this.pending;
  }

  private async setUp(timeoutMs: number): Promise<void> {
    const exists = async (query: (text: string, values?: unknown[]) => Promise<{ rows: unknown[] }>) => {
      const { rows } = await query('SELECT to_regclass(name) IS NOT NULL AS found FROM unnest($1::text[]) AS name', [
        this.regclasses,
      ]);
      return rows.every((row) => (row as { found: boolean }).found);
    };
    if (await transaction(this.pool, timeoutMs, ({ query }) => exists(query))) return;
    if (!this.create)
      throw new Error(
        `${this.owner}: its tables do not exist and createTables is false: create them first (POSTGRES_SCHEMA_SQL or postgresSchemaSql() from chargebee-portal-logout/postgres)`,
      );
    await transaction(this.pool, Math.max(timeoutMs, 5000), async ({ query }) => {
      await query('SELECT pg_advisory_xact_lock(hashtext($1))', [SCHEMA_LOCK]);
      if (await exists(query)) return;
      // DDL has no parameters: the names in it are checked identifiers, quoted.
      await query(this.sql);
    });
  }
}
