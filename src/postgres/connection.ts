import { deadlineIn, epochNow, runUntil, type DeadlineSignal } from '../base/time';

/**
 * Bounded transactions on the app's `pg` Pool, shared by the deferred-logout store and the registry. Each
 * call has its own deadline, client-side and server-side: the wait for a pool client and every round trip
 * count against it (`runUntil`), and the transaction runs under `SET LOCAL statement_timeout` (and the
 * same `idle_in_transaction_session_timeout`), so that a database that does not answer, or a lock held by
 * a frozen instance, costs a call its deadline and no more.
 */

/** The rows of a query, as `pg` answers them. */
export interface PostgresQueryResult {
  // The rows' shape is the query's: each caller reads its own columns.
  rows: Array<Record<string, unknown>>;
  rowCount: number | null;
}

/**
 * What this package uses of a client checked out of a `pg` Pool (`PoolClient` of pg 8). Typed by shape,
 * so that any pg 8 Pool fits.
 */
export interface PostgresPoolClientLike {
  query(text: string, values?: unknown[]): Promise<PostgresQueryResult>;
  /** Back to the pool; with an error, the pool closes the connection instead. */
  release(error?: Error | boolean): void;
  on(event: 'error', listener: (error: Error) => void): unknown;
  removeListener(event: 'error', listener: (error: Error) => void): unknown;
}

/**
 * What this package uses of a `pg` Pool (`new Pool()` of pg 8): checking a client out. The stores never end
 * the pool and add no listener to it; the app owns it, and listens to its `'error'` events (an idle client
 * that lost its connection), as pg asks of every app.
 */
export interface PostgresPoolLike {
  connect(): Promise<PostgresPoolClientLike>;
}

/** One statement of a transaction: text with `$1`-style parameters, and their values. */
export type Query = (text: string, values?: unknown[]) => Promise<PostgresQueryResult>;

/** What a transaction's work gets: its statements, and the caller's clock when it began. */
export interface Transaction {
  query: Query;
  /**
   * `epochNow()` read as the transaction began: the caller's clock at the database's `now()`. A time of the
   * caller travels as `time - base` milliseconds from `now()`; one read back as `base + offset`.
   */
  base: number;
}

const ignore = (): void => undefined;

/** How a transaction runs, beyond its deadline. */
export interface TransactionOptions {
  /** Counts walk an index (an index-only scan: `enable_seqscan` off), never the rows and their data. */
  indexOnly?: boolean;
  /**
   * The commit does not wait for the write-ahead log to reach the disk (`synchronous_commit` off): for
   * transactions whose loss in a crash of the database costs at most a repeated attempt, never a job.
   */
  asyncCommit?: boolean;
}

/** The database did not answer a transaction within its deadline. */
export const POSTGRES = 'PostgreSQL';

/**
 * Runs `work` in one transaction on a client of `pool`, within `timeoutMs` in all (the wait for a client
 * included); commits when it resolves. On any failure or at the deadline the client is handed back with
 * the error, so that the pool closes its connection: the transaction is rolled back by the server, and no
 * half-done transaction ever goes back into the app's pool.
 */
export function transaction<T>(
  pool: PostgresPoolLike,
  timeoutMs: number,
  work: (tx: Transaction) => Promise<T>,
  options: TransactionOptions = {},
): Promise<T> {
  return runUntil(deadlineIn(timeoutMs), POSTGRES, async (signal) => {
    const client = await checkOut(pool, signal);
    let released = false;
    // A connection lost while this call holds the client is reported to the query under way; without a
    // listener of its own, the client's 'error' event would end the process.
    client.on('error', ignore);
    const release = (error?: Error) => {
      if (released) return;
      released = true;
      // A client handed back with an error is closed by the pool, and may still report the lost connection
      // after this: it keeps the listener. A healthy one goes back to the pool, whose own listener takes over.
      if (!error) client.removeListener('error', ignore);
      client.release(error);
    };
    // At the deadline the query under way may never be answered: the connection goes, with it.
    const onAbort = () => release(new Error('PostgreSQL call passed its deadline'));
    signal.addEventListener('abort', onAbort);
    try {
      if (signal.aborted) throw new Error('PostgreSQL call passed its deadline');
      const ms = Math.max(1, Math.round(timeoutMs));
      // One round trip; `ms` is a whole number this package computed, never a caller's text.
      const base = epochNow();
      await client.query(
        `BEGIN; SET LOCAL statement_timeout = ${ms}; SET LOCAL idle_in_transaction_session_timeout = ${ms}` +
          (options.indexOnly ? '; SET LOCAL enable_seqscan = off' : '') +
          (options.asyncCommit ? '; SET LOCAL synchronous_commit = off' : ''),
      );
      const query: Query = (text, values) => {
        if (released) return Promise.reject(new Error('PostgreSQL call passed its deadline'));
        return client.query(text, values);
      };
      const result = await work({ query, base });
      await query('COMMIT');
      release();
      return result;
    } catch (error) {
      release(error instanceof Error ? error : new Error(String(error)));
      throw error;
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
  });
}

/**
 * A client of the pool, or a rejection once `signal` aborts; a client that comes after that goes straight
 * back to the pool.
 */
function checkOut(pool: PostgresPoolLike, signal: DeadlineSignal): Promise<PostgresPoolClientLike> {
  return new Promise((resolve, reject) => {
    let abandoned = false;
    const onAbort = () => {
      abandoned = true;
      reject(new Error('PostgreSQL: no pool client within the deadline'));
    };
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    let pending: Promise<PostgresPoolClientLike>;
    try {
      pending = pool.connect();
    } catch (error) {
      signal.removeEventListener('abort', onAbort);
      reject(error instanceof Error ? error : new Error(String(error)));
      return;
    }
    pending.then(
      (client) => {
        signal.removeEventListener('abort', onAbort);
        if (abandoned) client.release();
        else resolve(client);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error instanceof Error ? error : new Error(String(error)));
      },
    );
  });
}

/** SQL for a caller's time: `now()` plus the milliseconds of parameter `$n` (the time minus the base). */
export const at = (n: number): string => `(now() + $${n}::float8 * interval '1 millisecond')`;

/** SQL that reads a time back as whole milliseconds from `now()`, for {@link fromOffset}. */
export const offset = (column: string): string => `round(extract(epoch from (${column} - now())) * 1000)::float8`;

/** A time of the caller as milliseconds from the transaction's base (whole ones). */
export function toOffset(time: number, base: number): number {
  return Math.round(time - base);
}

/** A time read back with {@link offset}, on the caller's clock; `undefined` for NULL. */
export function fromOffset(value: unknown, base: number): number | undefined {
  if (value === null || value === undefined) return undefined;
  const ms = Number(value);
  return Number.isFinite(ms) ? base + ms : undefined;
}
