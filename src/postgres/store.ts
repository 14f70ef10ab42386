import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { hashPortalSessionId, isValidPortalSessionId } from '../base/identifiers';
import { safeLog, type Log } from '../base/logging';
import { epochNow } from '../base/time';
import {
  scheduleLimit,
  type DeferredLogoutJob,
  type DeferredLogoutStore,
  type DueJobs,
  type StoreFigures,
} from '../queue/store';
import { NO_RATE_LIMIT, tokenWait, type DrainRate } from '../reliability/rate-limit';
import {
  at,
  fromOffset,
  offset,
  toOffset,
  type PostgresPoolLike,
  type Query,
  type Transaction,
  type TransactionOptions,
} from './connection';
import { storedSite } from '../queue/stored-fields';
import { isStorable, JOB_COLUMNS, jobValues, readJob } from './job-row';
import { identifier, postgresCommon, type PostgresCommonOptions } from './options';
import { DEFAULT_JOBS_TABLE, jobsNames, jobsTablesSql, TableSetup } from './schema';

export interface PostgresDeferredLogoutStoreOptions extends PostgresCommonOptions {
  /**
   * The jobs table. Default `'chargebee_portal_logout_jobs'`; the drain rate's table is `<table>_sites`.
   * Lower-case letters, digits and `_` (at most 40).
   */
  table?: string;
  /** Most jobs kept, all instances together; past it a deferral is refused and logged as lost. Default 100 000. */
  maxQueued?: number;
  /**
   * How long a job stays with the instance that took it before another may take it (the taker may have
   * died). Each attempt gets at most half of it. Default 30 000 ms.
   */
  leaseMs?: number;
}

export const DEFAULT_POSTGRES_MAX_QUEUED = 100_000;
export const DEFAULT_POSTGRES_LEASE_MS = 30_000;
/** Stored jobs outlive their maximum age by this much, so that a running queue gives them up (and logs it) first. */
const EXPIRY_MARGIN_MS = 60_000;
const DEFAULT_MAX_AGE_MS = 24 * 3600 * 1000;
/** How often an instance deletes expired jobs and idle drain-rate rows (within a take). */
const SWEEP_INTERVAL_MS = 60_000;
/** Most expired jobs deleted per sweep. */
const SWEEP_LIMIT = 500;
/** Up to this bound, `maxQueued` is checked by an exact count; above it, once the table's estimate nears half. */
const EXACT_COUNT_LIMIT = 10_000;
/** Counts walk the `waiting_since` index, never the jobs' rows. */
const INDEX_ONLY = { indexOnly: true } as const;
/**
 * For calls that hand a job over, end it or wake it, never keep one: a crash of the database that loses such a
 * commit costs at most a repeated attempt (delivery is at least once, with the same idempotency key), so they do
 * not wait for the write-ahead log's flush. Keeping a job (add, schedule, postpone) always waits for it.
 */
const ASYNC_COMMIT = { asyncCommit: true } as const;

/**
 * A site in line, for `takeDue`: whether any row is due (handed over or not), when the next waiting one is, and
 * its drain state (tokens left, or the burst for a site never used; ms left of a pause).
 */
interface SiteLine {
  site: string;
  due: boolean;
  nextMs: number | undefined;
  tokens: number;
  pausedMs: number;
}

/**
 * Deferred logouts in PostgreSQL, shared by every instance of the app: one row per portal session, handed
 * to one instance at a time with a lease (`FOR UPDATE SKIP LOCKED`, a fencing token checked on put-back and
 * give-up), handed out again if that instance dies, a drain rate per Chargebee site shared by all instances
 * (a token bucket row per site, spent in the transaction of the take), and the database's clock for every
 * due time and lease. Give it the app's `pg` Pool (the one connect-pg-simple uses); the store never ends
 * it and adds no listener to it.
 *
 * Warning: the table then holds what a logout needs: portal-session IDs (bearer references to a customer's
 * portal), the customer's IP address, device and email. Keep that database as private as your sessions.
 */
export class PostgresDeferredLogoutStore implements DeferredLogoutStore {
  readonly durable = true;
  readonly leaseMs: number;
  readonly maxQueued: number;
  readonly schema: string;
  readonly table: string;
  private readonly queryTimeoutMs: number;
  private readonly names: ReturnType<typeof jobsNames>;
  private readonly tables: TableSetup;
  private maxAgeMs = DEFAULT_MAX_AGE_MS;
  private nextSweepAt = 0;
  private log: Log | undefined;

  constructor(pool: PostgresPoolLike, options: PostgresDeferredLogoutStoreOptions = {}) {
    const common = postgresCommon('PostgresDeferredLogoutStore', pool, options, ['table', 'maxQueued', 'leaseMs']);
    const { check } = common;
    this.schema = common.schema;
    this.table = identifier(check, options.table, 'table', DEFAULT_JOBS_TABLE);
    this.queryTimeoutMs = common.queryTimeoutMs;
    this.maxQueued = check.whole(options.maxQueued, 'maxQueued', DEFAULT_POSTGRES_MAX_QUEUED, 1, 1_000_000_000);
    this.leaseMs = check.whole(options.leaseMs, 'leaseMs', DEFAULT_POSTGRES_LEASE_MS, 1000, 3_600_000);
    this.names = jobsNames(this.schema, this.table);
    this.tables = new TableSetup(
      pool,
      this.names.regclasses,
      jobsTablesSql(this.schema, this.table),
      common.createTables,
      'PostgresDeferredLogoutStore',
    );
  }

  attach(queue: { maxAgeMs: number; log: Logger }): void {
    this.maxAgeMs = queue.maxAgeMs;
    this.log = safeLog(queue.log);
  }

  /** Milliseconds a job is kept past its first attempt or due time, whichever is later. */
  private get ttlMs(): number {
    return this.maxAgeMs + this.leaseMs + EXPIRY_MARGIN_MS;
  }

  async add(job: DeferredLogoutJob): Promise<boolean> {
    if (!this.storable(job)) return false;
    const lease = job.lease;
    if (lease !== undefined) {
      // A put-back: kept only while the taker's lease is still the job's; a renewal meanwhile carries over.
      await this.call(({ query, base }) =>
        query(
          `UPDATE ${this.names.jobs} SET ${this.setJob(`GREATEST(${at(4)}, renewed_at)`)} WHERE portal_session_id = $1 AND lease = $13`,
          [...jobValues(job, base), this.ttlMs, lease],
        ),
      );
      return true;
    }
    return this.call(
      (tx) =>
        this.keep(tx, job, this.maxQueued, async (current) => {
          const { query, base } = tx;
          if (current.leased) {
            // Handed over: the taker's give-up will leave it due again, its maximum age counting from here.
            await query(
              `UPDATE ${this.names.jobs} SET renewed_at = GREATEST(renewed_at, ${at(2)}) WHERE portal_session_id = $1`,
              [job.portalSessionId, toOffset(job.firstAttemptAt, base)],
            );
          } else if (current.pendingSchedule) {
            await this.replace(tx, job);
          } else {
            // A deferral waiting already: the newest deferral's maximum age counts.
            const first = `GREATEST(first_attempt_at, ${at(2)})`;
            await query(
              `UPDATE ${this.names.jobs} SET first_attempt_at = ${first}, waiting_since = ${first},
              expires_at = GREATEST(due_at, ${first}) + $3::float8 * interval '1 millisecond'
             WHERE portal_session_id = $1`,
              [job.portalSessionId, toOffset(job.firstAttemptAt, base), this.ttlMs],
            );
          }
        }),
      INDEX_ONLY,
    );
  }

  /** Keeps a scheduled logout; see {@link DeferredLogoutStore.schedule}. */
  async schedule(job: DeferredLogoutJob): Promise<boolean> {
    if (!this.storable(job)) return false;
    return this.call(
      (tx) =>
        this.keep(tx, job, scheduleLimit(this.maxQueued), async (current) => {
          // A deferral under way, or a scheduled logout being tried: the portal session's logout is in hand.
          if (!current.leased && current.pendingSchedule) await this.replace(tx, job);
        }),
      INDEX_ONLY,
    );
  }

  /**
   * Inserts `job` when its portal session has none and the store holds fewer than `limit` (false when full);
   * otherwise calls `existing` with the row, locked for this transaction.
   */
  private async keep(
    { query, base }: Transaction,
    job: DeferredLogoutJob,
    limit: number,
    existing: (current: { leased: boolean; pendingSchedule: boolean }) => Promise<void>,
  ): Promise<boolean> {
    // The common case in one statement: a new row. A row of the portal session already there (seen by the
    // statement, or inserted by another instance meanwhile: the insert does nothing) is then locked and
    // handed to `existing`; two tries, for a row deleted between the two.
    for (let attempt = 0; attempt < 2; attempt++) {
      const inserted = await query(
        `WITH existing AS (
           SELECT EXISTS (SELECT 1 FROM ${this.names.jobs} WHERE portal_session_id = $1) AS found
         ), estimate AS (
           SELECT COALESCE((SELECT reltuples FROM pg_class WHERE oid = $14::regclass), -1) AS rows
         ), queued AS (
           SELECT CASE WHEN existing.found THEN 0
             WHEN $13::int <= ${EXACT_COUNT_LIMIT} OR estimate.rows < 0 OR estimate.rows >= $13::int / 2
             THEN (SELECT count(*) FROM (SELECT waiting_since FROM ${this.names.jobs} LIMIT $13::int) AS kept) ELSE 0 END AS n
           FROM existing, estimate
         ), inserted AS (
           INSERT INTO ${this.names.jobs} (portal_session_id, site, due_at, first_attempt_at, waiting_since, latest_at,
             attempts, reason, idempotency_key, business_entity_id, headers, traceparent, expires_at)
           SELECT $1, $2, ${at(3)}, ${at(4)}, ${this.waitingSince(at(4))}, ${at(5)}, $6::int, $7::text, $8, $9, $10::jsonb,
             $11, GREATEST(${at(3)}, ${at(4)}) + $12::float8 * interval '1 millisecond'
           FROM queued WHERE queued.n < $13::int
           ON CONFLICT (portal_session_id) DO NOTHING
           RETURNING 1
         )
         SELECT (SELECT n FROM queued)::float8 AS queued, (SELECT count(*) FROM inserted)::int AS inserted,
           (SELECT found FROM existing) AS found`,
        [...jobValues(job, base), this.ttlMs, limit, this.names.jobs],
      );
      const result = inserted.rows[0] as { queued: number; inserted: number; found: boolean };
      if (result.inserted > 0) return true;
      if (!result.found && result.queued >= limit) return false;
      const { rows } = await query(
        `SELECT lease IS NOT NULL AS leased, pending_schedule FROM ${this.names.jobs} WHERE portal_session_id = $1 FOR UPDATE`,
        [job.portalSessionId],
      );
      const current = rows[0] as { leased: boolean; pending_schedule: boolean } | undefined;
      if (current) {
        await existing({ leased: current.leased, pendingSchedule: current.pending_schedule });
        return true;
      }
    }
    return true; // another instance keeps a job of this portal session
  }

  /** Writes `job` over the row of its portal session, not handed over. */
  private async replace({ query, base }: Transaction, job: DeferredLogoutJob): Promise<void> {
    await query(`UPDATE ${this.names.jobs} SET ${this.setJob(at(4))} WHERE portal_session_id = $1`, [
      ...jobValues(job, base),
      this.ttlMs,
    ]);
  }

  /** `SET` of every column from the parameters of `jobValues` (and $12 the time to live), the first attempt as `first`. */
  private setJob(first: string): string {
    return `site = $2, due_at = ${at(3)}, first_attempt_at = ${first}, waiting_since = ${this.waitingSince(first)},
      latest_at = ${at(5)}, attempts = $6::int, reason = $7::text, idempotency_key = $8, business_entity_id = $9,
      headers = $10::jsonb, traceparent = $11, lease = NULL, renewed_at = NULL,
      expires_at = GREATEST(${at(3)}, ${first}) + $12::float8 * interval '1 millisecond'`;
  }

  /** Since when a job written from the parameters waits: its due time for a scheduled logout not tried yet. */
  private waitingSince(first: string): string {
    return `CASE WHEN $6::int = 0 AND $7::text IN ('portal_max_age', 'idle') THEN ${at(3)} ELSE ${first} END`;
  }

  /** Moves scheduled logouts later, in one statement; see {@link DeferredLogoutStore.postpone}. */
  async postpone(portalSessionIds: readonly string[], to: number): Promise<void> {
    const ids = portalSessionIds.filter(isValidPortalSessionId);
    if (ids.length === 0 || !Number.isFinite(to)) return;
    const target = `LEAST(${at(2)}, COALESCE(latest_at, 'infinity'::timestamptz))`;
    await this.call(({ query, base }) =>
      query(
        `UPDATE ${this.names.jobs} SET due_at = ${target}, waiting_since = ${target},
           expires_at = GREATEST(expires_at, ${target} + $3::float8 * interval '1 millisecond')
         WHERE portal_session_id = ANY($1::text[]) AND lease IS NULL AND pending_schedule AND ${target} > due_at`,
        [ids, toOffset(to, base), this.ttlMs],
      ),
    );
  }

  /** Deletes the jobs of ended portal sessions that are not handed over; see {@link DeferredLogoutStore.cancel}. */
  async cancel(portalSessionIds: readonly string[]): Promise<void> {
    const ids = portalSessionIds.filter(isValidPortalSessionId);
    if (ids.length === 0) return;
    await this.call(
      ({ query }) =>
        query(`DELETE FROM ${this.names.jobs} WHERE portal_session_id = ANY($1::text[]) AND lease IS NULL`, [ids]),
      ASYNC_COMMIT,
    );
  }

  async takeDue(limit: number, rate: DrainRate = NO_RATE_LIMIT): Promise<DueJobs> {
    const token = randomUUID();
    const perMinute = rate.perMinute > 0 ? rate.perMinute : 0;
    const burst = Math.max(1, rate.burst);
    const sweep = epochNow() >= this.nextSweepAt;
    // One transaction of two statements (three when sweeping): the sites' lines and drain state, then the take.
    const { jobs, malformed, nextAt } = await this.call(async ({ query, base }) => {
      if (sweep) await this.sweep(query);
      const lines = await this.lines(query, limit > 0 && perMinute > 0, perMinute, burst);
      // Per due site: held back (ms until it may make a request), or how many it may make now.
      const held = new Map<string, number>();
      const allowed = new Map<string, number>();
      for (const line of limit > 0 ? lines : []) {
        if (!line.due) continue;
        if (line.pausedMs > 0) held.set(line.site, line.pausedMs);
        else if (perMinute === 0) allowed.set(line.site, limit);
        else if (line.tokens >= 1) allowed.set(line.site, Math.min(limit, Math.floor(line.tokens)));
        else held.set(line.site, tokenWait(line.tokens, perMinute));
      }
      const { rows, stillDue } =
        allowed.size === 0
          ? { rows: [], stillDue: undefined }
          : await this.take(query, [...allowed], limit, token, perMinute > 0);
      const out: DeferredLogoutJob[] = [];
      const bad: string[] = [];
      const perSite = new Map<string, number>();
      for (const row of rows) {
        const job = readJob(row, base);
        if (job) out.push({ ...job, lease: token });
        else bad.push(String(row.portal_session_id));
        perSite.set(String(row.site), (perSite.get(String(row.site)) ?? 0) + 1);
      }
      if (bad.length > 0)
        await query(`DELETE FROM ${this.names.jobs} WHERE portal_session_id = ANY($1::text[]) AND lease = $2`, [
          bad,
          token,
        ]);
      // When to ask again: now when the limit was reached; else the next waiting job, or when a site that still
      // has due jobs may make a request (now, when they are another instance's take about to commit).
      let next = rows.length >= limit ? base : Infinity;
      for (const line of Number.isFinite(next) ? [] : lines) {
        if (line.nextMs !== undefined) next = Math.min(next, base + line.nextMs);
        const due = stillDue && allowed.has(line.site) ? stillDue.has(line.site) : line.due;
        if (!due) continue;
        const taken = perSite.get(line.site) ?? 0;
        const wait = held.get(line.site) ?? (perMinute > 0 ? tokenWait(line.tokens - taken, perMinute) : 0);
        next = Math.min(next, base + wait);
      }
      return { jobs: out, malformed: bad, nextAt: next };
    }, ASYNC_COMMIT);
    if (sweep) this.nextSweepAt = epochNow() + SWEEP_INTERVAL_MS;
    for (const id of malformed)
      this.log?.warn(
        { chargebeePortalLogout: { idHash: hashPortalSessionId(id), table: this.table } },
        'dropped a malformed deferred logout found in PostgreSQL',
      );
    return Number.isFinite(nextAt) ? { jobs, nextAt } : { jobs };
  }

  /**
   * Per site that has jobs (a loose index scan of `(site, due_at)`: one probe per site): whether any row is
   * due (a waiting job, or one whose lease ran out), when its next waiting job is due, and its drain state.
   * With `spend`, the bucket rows of the sites with due jobs are created or refilled to `now()` and locked
   * until the take commits (every instance spends the same tokens, one take at a time); otherwise only
   * their pauses are read.
   */
  private async lines(query: Query, spend: boolean, perMinute: number, burst: number): Promise<SiteLine[]> {
    const { jobs, sites } = this.names;
    const { rows } = await query(
      `WITH RECURSIVE listed(site) AS (
         (SELECT site FROM ${jobs} ORDER BY site LIMIT 1)
         UNION ALL
         SELECT (SELECT j.site FROM ${jobs} j WHERE j.site > listed.site ORDER BY j.site LIMIT 1)
         FROM listed WHERE listed.site IS NOT NULL
       ), line AS (
         SELECT listed.site,
           EXISTS (SELECT 1 FROM ${jobs} j WHERE j.site = listed.site AND j.due_at <= now()) AS due,
           (SELECT ${offset('min(j.due_at)')} FROM ${jobs} j
             WHERE j.site = listed.site AND j.lease IS NULL AND j.due_at > now()) AS next_ms
         FROM listed WHERE listed.site IS NOT NULL
       ), bucket AS (
         INSERT INTO ${sites} AS s (site, tokens, refilled_at)
         SELECT site, $1::float8, now() FROM line WHERE line.due AND $3::boolean ORDER BY site
         ON CONFLICT (site) DO UPDATE SET
           tokens = CASE WHEN s.tokens IS NULL OR s.refilled_at IS NULL THEN $1::float8
             ELSE LEAST($1::float8, s.tokens + GREATEST(0, extract(epoch FROM now() - s.refilled_at)::float8) * $2::float8 / 60)
           END,
           refilled_at = GREATEST(COALESCE(s.refilled_at, now()), now())
         RETURNING site, tokens
       )
       SELECT line.site, line.due, line.next_ms, bucket.tokens,
         COALESCE(${offset('paused.paused_until')}, 0) AS paused_ms
       FROM line
       LEFT JOIN bucket ON bucket.site = line.site
       LEFT JOIN ${sites} paused ON paused.site = line.site AND paused.paused_until > now()`,
      [burst, perMinute, spend],
    );
    return rows.map((row) => ({
      site: String(row.site),
      due: row.due === true,
      nextMs: row.next_ms === null ? undefined : Math.max(0, Number(row.next_ms)),
      tokens: typeof row.tokens === 'number' ? row.tokens : burst,
      pausedMs: Math.max(0, Number(row.paused_ms)),
    }));
  }

  /**
   * Hands over up to `limit` due jobs, earliest first, at most `n` of each site, each row once
   * (`FOR UPDATE SKIP LOCKED`: instances taking at once never wait for, nor get, each other's rows); spends
   * the tokens of the sites in the same statement. Also answers which of the sites still have due rows.
   */
  private async take(
    query: Query,
    open: Array<[site: string, n: number]>,
    limit: number,
    token: string,
    spend: boolean,
  ): Promise<{ rows: Array<Record<string, unknown>>; stillDue: Set<string> }> {
    const jobs = this.names.jobs;
    const { rows } = await query(
      `WITH allowed AS (
         SELECT * FROM unnest($1::text[], $2::int[]) AS a(site, n)
       ), picked AS (
         SELECT c.portal_session_id, c.due_at FROM allowed CROSS JOIN LATERAL (
           SELECT j.portal_session_id, j.due_at FROM ${jobs} j
           WHERE j.site = allowed.site AND j.due_at <= now()
           ORDER BY j.due_at LIMIT allowed.n
           FOR UPDATE SKIP LOCKED
         ) AS c
         ORDER BY c.due_at, c.portal_session_id LIMIT $3::int
       ), taken AS (
         UPDATE ${jobs} j SET lease = $4, due_at = now() + $5::float8 * interval '1 millisecond',
           expires_at = GREATEST(j.expires_at, now() + ($5::float8 + $6::float8) * interval '1 millisecond')
         FROM picked WHERE j.portal_session_id = picked.portal_session_id
         RETURNING j.*, picked.due_at AS taken_due_at
       ), spent AS (
         UPDATE ${this.names.sites} s SET tokens = s.tokens - t.n
         FROM (SELECT site, count(*) AS n FROM taken GROUP BY site) AS t
         WHERE $7::boolean AND s.site = t.site
       )
       SELECT ${JOB_COLUMNS.replace(`${offset('due_at')} AS due_ms`, `${offset('taken_due_at')} AS due_ms`)},
         ARRAY(SELECT a.site FROM allowed a WHERE EXISTS (
           SELECT 1 FROM ${jobs} j WHERE j.site = a.site AND j.due_at <= now()
             AND j.portal_session_id NOT IN (SELECT portal_session_id FROM picked))) AS still_due
       FROM taken ORDER BY taken_due_at, portal_session_id`,
      [open.map(([site]) => site), open.map(([, n]) => n), limit, token, this.leaseMs, this.ttlMs, spend],
    );
    const stillDue = new Set<string>(rows.length > 0 ? (rows[0].still_due as string[]) : []);
    return { rows, stillDue };
  }

  /** Deletes expired jobs (their queue is gone) and drain-rate rows unused for an hour (a full bucket again). */
  private async sweep(query: Query): Promise<void> {
    await query(
      `DELETE FROM ${this.names.jobs} WHERE portal_session_id IN (
         SELECT portal_session_id FROM ${this.names.jobs} WHERE expires_at < now()
         ORDER BY expires_at LIMIT ${SWEEP_LIMIT} FOR UPDATE SKIP LOCKED)`,
    );
    await query(
      `DELETE FROM ${this.names.sites} WHERE COALESCE(paused_until, '-infinity') < now() - interval '1 hour'
         AND COALESCE(refilled_at, '-infinity') < now() - interval '1 hour'`,
    );
  }

  /** Resolves `true` when the job went; `false` when it stays (renewed meanwhile, or no longer this taker's). */
  async giveUp(portalSessionId: string, lease: string | undefined): Promise<boolean> {
    if (lease === undefined || !isValidPortalSessionId(portalSessionId)) return false;
    return this.call(async ({ query }) => {
      const { rows } = await query(
        `WITH gone AS (
           DELETE FROM ${this.names.jobs} WHERE portal_session_id = $1 AND lease = $2 AND renewed_at IS NULL
           RETURNING 1
         ), renewed AS (
           UPDATE ${this.names.jobs} SET first_attempt_at = renewed_at, waiting_since = renewed_at, due_at = now(),
             lease = NULL, renewed_at = NULL,
             expires_at = GREATEST(expires_at, renewed_at + $3::float8 * interval '1 millisecond')
           WHERE portal_session_id = $1 AND lease = $2 AND renewed_at IS NOT NULL
         )
         SELECT count(*)::int AS gone FROM gone`,
        [portalSessionId, lease, this.ttlMs],
      );
      return Number(rows[0].gone) > 0;
    }, ASYNC_COMMIT);
  }

  async remove(portalSessionId: string): Promise<void> {
    if (!isValidPortalSessionId(portalSessionId)) return;
    await this.call(
      ({ query }) => query(`DELETE FROM ${this.names.jobs} WHERE portal_session_id = $1`, [portalSessionId]),
      ASYNC_COMMIT,
    );
  }

  async pauseSite(site: string, until: number): Promise<void> {
    if (!Number.isFinite(until)) return;
    await this.call(
      ({ query, base }) =>
        query(
          `INSERT INTO ${this.names.sites} AS s (site, paused_until) VALUES ($1, ${at(2)})
         ON CONFLICT (site) DO UPDATE SET paused_until = GREATEST(s.paused_until, EXCLUDED.paused_until)`,
          [storedSite(site), toOffset(until, base)],
        ),
      ASYNC_COMMIT,
    );
  }

  async wakeSite(site: string, count?: number): Promise<number> {
    const limit = count === undefined || !Number.isFinite(count) ? null : Math.max(0, Math.floor(count));
    if (limit === 0) return 0;
    return this.call(async ({ query }) => {
      const { rowCount } = await query(
        `WITH woken AS (
           SELECT portal_session_id FROM ${this.names.jobs}
           WHERE site = $1 AND lease IS NULL AND NOT pending_schedule AND due_at > now()
           ORDER BY due_at LIMIT $2::int FOR UPDATE SKIP LOCKED
         )
         UPDATE ${this.names.jobs} j SET due_at = now(),
           expires_at = GREATEST(j.expires_at, now() + $3::float8 * interval '1 millisecond')
         FROM woken WHERE j.portal_session_id = woken.portal_session_id`,
        [storedSite(site), limit, this.ttlMs],
      );
      return rowCount ?? 0;
    }, ASYNC_COMMIT);
  }

  async size(): Promise<number> {
    return this.call(async ({ query }) => {
      const { rows } = await query(`SELECT count(waiting_since)::float8 AS n FROM ${this.names.jobs}`);
      return Number(rows[0].n);
    }, INDEX_ONLY);
  }

  /** Jobs kept and the oldest waiting since, from the `waiting_since` index (no job's data is read). */
  async figures(): Promise<StoreFigures> {
    return this.call(async ({ query, base }) => {
      const { rows } = await query(
        `SELECT (SELECT count(waiting_since) FROM ${this.names.jobs})::float8 AS n,
           (SELECT ${offset('min(waiting_since)')} FROM ${this.names.jobs}) AS oldest_ms`,
      );
      return { jobs: Number(rows[0].n), oldestWaitingSince: fromOffset(rows[0].oldest_ms, base) };
    }, INDEX_ONLY);
  }

  /** Up to `limit` jobs in line order (handed-over ones at the end of their lease), for the shutdown log. */
  async list(limit = 1000): Promise<DeferredLogoutJob[]> {
    return this.call(async ({ query, base }) => {
      const { rows } = await query(
        `SELECT ${JOB_COLUMNS} FROM ${this.names.jobs} ORDER BY due_at, portal_session_id LIMIT $1::int`,
        [Math.max(1, Math.floor(limit))],
      );
      return rows.map((row) => readJob(row, base)).filter((job): job is DeferredLogoutJob => job !== undefined);
    });
  }

  /** Whether the store may keep `job`; a job that is not one the queue writes is refused, and logged. */
  private storable(job: DeferredLogoutJob): boolean {
    if (isStorable(job)) return true;
    this.log?.error({}, 'the PostgreSQL store refused a job that is not well-formed');
    return false;
  }

  /** One bounded transaction (the tables made on first use within the same deadline). */
  private call<T>(work: (tx: Transaction) => Promise<T>, options: TransactionOptions = {}): Promise<T> {
    return this.tables.call(this.queryTimeoutMs, work, options);
  }
}
