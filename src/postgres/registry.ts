import { checkCustomerId, isValidBusinessEntityId, isValidPortalSessionId } from '../base/identifiers';
import type { OptionCheck } from '../base/validate';
import {
  registryBounds,
  type PortalSessionRegistry,
  type RegisteredPortalSession,
  type RegistryAddResult,
  type RegistryBounds,
} from '../registry/registry';
import { at, fromOffset, offset, toOffset, type PostgresPoolLike, type Transaction } from './connection';
import { identifier, postgresCommon, type PostgresCommonOptions } from './options';
import { DEFAULT_REGISTRY_TABLE, registryNames, registryTableSql, TableSetup } from './schema';

/** Options of {@link PostgresPortalSessionRegistry}. */
export interface PostgresPortalSessionRegistryOptions extends RegistryBounds, PostgresCommonOptions {
  /**
   * The registry's table. Default `'chargebee_portal_logout_portal_sessions'`. Lower-case letters, digits
   * and `_` (at most 40).
   */
  table?: string;
  /** Most portal sessions kept in all, every customer and instance together; past it the oldest are dropped. Default 1 000 000. */
  maxEntries?: number;
}

export const DEFAULT_POSTGRES_REGISTRY_MAX_ENTRIES = 1_000_000;
/** Expired entries deleted per recording, at most: the sweep stays cheap, and keeps up with the arrivals. */
const SWEEP_LIMIT = 20;
/** Most IDs forgotten per statement. */
const REMOVE_BATCH = 1000;
/** Up to this bound, `maxEntries` is checked by an exact count; above it, once the table's estimate nears it. */
const EXACT_COUNT_LIMIT = 10_000;
/** Most entries past `maxEntries` deleted per recording (a bound lowered between runs is reached over time). */
const TRIM_LIMIT = 1000;
/** Sites are short hashes of a Chargebee base URL (`siteKey`). */
const SITE = /^[0-9A-Za-z_-]{1,64}$/;
/** First key of the registry's advisory locks (one per customer of a site): "cbpl". */
const LOCK_CLASS = 0x6362706c;

/**
 * The registry of open portal sessions by customer in PostgreSQL, shared by every instance of the app: a
 * portal session opened through one instance is ended by `logoutCustomer()` (or a sign-out everywhere) on
 * any other. Give it the app's `pg` Pool; it never ends it and adds no listener to it. Bounded per customer
 * (exactly: one recording per customer at a time, under a transaction-level advisory lock) and in all,
 * each entry kept for a time to live, on the database's clock.
 *
 * Warning: the table then holds portal-session IDs (bearer references to a customer's portal) and customer
 * IDs. Keep that database as private as your sessions.
 */
export class PostgresPortalSessionRegistry implements PortalSessionRegistry {
  readonly schema: string;
  readonly table: string;
  readonly maxPerCustomer: number;
  readonly maxEntries: number;
  readonly ttlMs: number;
  private readonly queryTimeoutMs: number;
  private readonly check: OptionCheck;
  private readonly names: ReturnType<typeof registryNames>;
  private readonly tables: TableSetup;

  constructor(pool: PostgresPoolLike, options: PostgresPortalSessionRegistryOptions = {}) {
    const owner = 'PostgresPortalSessionRegistry';
    const common = postgresCommon(owner, pool, options, ['table', 'maxEntries', 'maxPerCustomer', 'ttlMs']);
    this.check = common.check;
    const bounds = registryBounds(owner, options, DEFAULT_POSTGRES_REGISTRY_MAX_ENTRIES);
    this.maxPerCustomer = bounds.maxPerCustomer;
    this.maxEntries = bounds.maxEntries;
    this.ttlMs = bounds.ttlMs;
    this.schema = common.schema;
    this.table = identifier(this.check, options.table, 'table', DEFAULT_REGISTRY_TABLE);
    this.queryTimeoutMs = common.queryTimeoutMs;
    this.names = registryNames(this.schema, this.table);
    this.tables = new TableSetup(
      pool,
      this.names.regclasses,
      registryTableSql(this.schema, this.table),
      common.createTables,
      owner,
    );
  }

  async add(entry: RegisteredPortalSession): Promise<RegistryAddResult> {
    if (!isValidPortalSessionId(entry.id)) this.check.fail('add: the portal-session ID is not valid');
    checkCustomerId(entry.customerId, 'PostgresPortalSessionRegistry: add');
    if (typeof entry.site !== 'string' || !SITE.test(entry.site)) this.check.fail('add: the site is not valid');
    if (entry.businessEntityId !== undefined && !isValidBusinessEntityId(entry.businessEntityId))
      this.check.fail('add: the business-entity ID is not valid');
    if (!Number.isSafeInteger(Math.floor(entry.rememberedAt)) || entry.rememberedAt < 0)
      this.check.fail('add: rememberedAt must be a time in ms since the epoch');
    const entries = this.names.entries;
    /** The oldest time still kept: `now()` less the time to live in parameter `$n`. */
    const keptSince = (n: number) => `now() - $${n}::float8 * interval '1 millisecond'`;
    return this.call(async ({ query, base }) => {
      // One recording per customer of a site at a time: its bound is kept exactly.
      await query('SELECT pg_advisory_xact_lock($1::int, hashtext($2 || $3))', [
        LOCK_CLASS,
        `${entry.site} `,
        entry.customerId,
      ]);
      // Recorded, and expired entries deleted without a word (a few of all, and those of this customer), in
      // one statement; the sweeps leave this entry's row alone, which the recording writes.
      await query(
        `WITH kept AS (
           INSERT INTO ${entries} (site, portal_session_id, customer_id, business_entity_id, remembered_at)
           VALUES ($1, $2, $3, $4, ${at(5)})
           ON CONFLICT (site, portal_session_id) DO UPDATE SET customer_id = EXCLUDED.customer_id,
             business_entity_id = EXCLUDED.business_entity_id, remembered_at = EXCLUDED.remembered_at, seq = DEFAULT
           RETURNING 1
         ), old AS (
           DELETE FROM ${entries} e USING (
             SELECT site, portal_session_id FROM ${entries}
             WHERE remembered_at <= ${keptSince(6)} AND NOT (site = $1 AND customer_id = $3)
             ORDER BY remembered_at, seq LIMIT ${SWEEP_LIMIT} FOR UPDATE SKIP LOCKED
           ) AS old
           WHERE e.site = old.site AND e.portal_session_id = old.portal_session_id
           RETURNING 1
         ), mine AS (
           DELETE FROM ${entries} WHERE site = $1 AND customer_id = $3 AND portal_session_id <> $2
             AND remembered_at <= ${keptSince(6)}
           RETURNING 1
         )
         SELECT (SELECT count(*) FROM kept) AS kept`,
        [
          entry.site,
          entry.id,
          entry.customerId,
          entry.businessEntityId ?? null,
          toOffset(entry.rememberedAt, base),
          this.ttlMs,
        ],
      );
      const perCustomer = await query(
        `DELETE FROM ${entries} e USING (
           SELECT site, portal_session_id FROM ${entries} WHERE site = $1 AND customer_id = $2
           ORDER BY remembered_at DESC, seq DESC OFFSET $3::int
         ) AS past
         WHERE e.site = past.site AND e.portal_session_id = past.portal_session_id
         RETURNING e.portal_session_id, ${offset('e.remembered_at')} AS at_ms, e.seq::float8 AS seq`,
        [entry.site, entry.customerId, this.maxPerCustomer],
      );
      const overall = await query(
        `WITH estimate AS (
           SELECT COALESCE((SELECT reltuples FROM pg_class WHERE oid = $3::regclass), -1) AS rows
         ), counted AS (
           SELECT CASE WHEN $1::int <= ${EXACT_COUNT_LIMIT} OR estimate.rows < 0 OR estimate.rows >= $1::int * 0.9
             THEN (SELECT count(*) FROM (SELECT 1 FROM ${entries} LIMIT $1::int + $2::int) AS kept) ELSE 0 END AS n
           FROM estimate
         ), past AS (
           SELECT site, portal_session_id FROM ${entries} ORDER BY remembered_at, seq
           LIMIT GREATEST(0, (SELECT n FROM counted) - $1::int) FOR UPDATE SKIP LOCKED
         )
         DELETE FROM ${entries} e USING past
         WHERE e.site = past.site AND e.portal_session_id = past.portal_session_id
         RETURNING e.portal_session_id, ${offset('e.remembered_at')} AS at_ms, e.seq::float8 AS seq`,
        [this.maxEntries, TRIM_LIMIT, entries],
      );
      return { dropped: [...oldestFirst(perCustomer.rows), ...oldestFirst(overall.rows)] };
    });
  }

  async list(site: string, customerId: string): Promise<RegisteredPortalSession[]> {
    checkCustomerId(customerId, 'PostgresPortalSessionRegistry: list');
    if (typeof site !== 'string' || !SITE.test(site)) return [];
    return this.call(async ({ query, base }) => {
      const { rows } = await query(
        `SELECT portal_session_id, business_entity_id, ${offset('remembered_at')} AS at_ms
         FROM ${this.names.entries}
         WHERE site = $1 AND customer_id = $2 AND remembered_at > now() - $3::float8 * interval '1 millisecond'
         ORDER BY remembered_at, seq`,
        [site, customerId, this.ttlMs],
      );
      return rows.map((row) => {
        const entry: RegisteredPortalSession = {
          id: String(row.portal_session_id),
          customerId,
          site,
          rememberedAt: fromOffset(row.at_ms, base) ?? base,
        };
        if (typeof row.business_entity_id === 'string') entry.businessEntityId = row.business_entity_id;
        return entry;
      });
    });
  }

  async remove(site: string, portalSessionIds: readonly string[]): Promise<void> {
    const ids = portalSessionIds.filter(isValidPortalSessionId);
    if (ids.length === 0 || typeof site !== 'string' || !SITE.test(site)) return;
    for (let i = 0; i < ids.length; i += REMOVE_BATCH) {
      const batch = ids.slice(i, i + REMOVE_BATCH);
      await this.call(({ query }) =>
        query(`DELETE FROM ${this.names.entries} WHERE site = $1 AND portal_session_id = ANY($2::text[])`, [
          site,
          batch,
        ]),
      );
    }
  }

  /** Portal sessions kept, every site and customer together (expired ones not yet deleted included). */
  async size(): Promise<number> {
    return this.call(async ({ query }) => {
      const { rows } = await query(`SELECT count(*)::float8 AS n FROM ${this.names.entries}`);
      return Number(rows[0].n);
    });
  }

  /** One bounded transaction (the table made on first use within the same deadline). */
  private call<T>(work: (tx: Transaction) => Promise<T>): Promise<T> {
    return this.tables.call(this.queryTimeoutMs, work);
  }
}

/** The IDs of deleted rows, oldest remembered first. */
function oldestFirst(rows: Array<Record<string, unknown>>): string[] {
  return rows
    .map((row) => ({ id: String(row.portal_session_id), at: Number(row.at_ms), seq: Number(row.seq) }))
    .sort((a, b) => a.at - b.at || a.seq - b.seq)
    .map((row) => row.id);
}
