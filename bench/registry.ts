/**
 * The registry of open portal sessions at scale: 10,000 customers (3 portal sessions each by default, plus
 * one customer with 10), in memory and on a real redis-server started for the run. Reports the memory per
 * entry (heap after a full GC for the in-memory registry; Redis's `used_memory` growth and `MEMORY USAGE`
 * of its keys), the time of one `add` and one `list`, and the time of `logoutCustomer()` for the customer
 * with 10 portal sessions, against the emulator in this process over loopback HTTP. All on loopback.
 *
 *   npm run bench:registry                 (or: node --expose-gc --import tsx bench/registry.ts [customers] [perCustomer])
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import { createClient } from 'redis';
import type { PortalSessionRegistry, RegisteredPortalSession } from '../src';
import { RedisPortalSessionRegistry } from '../src/redis';
import { siteKey } from '../src/reliability/rate-limit';
import { startRedisServer } from '../test/helpers/redis-server';
import { library, libraryKind, testing } from './library';

type Emulator = Awaited<ReturnType<typeof testing.ChargebeeEmulator.start>>;

const CUSTOMERS = Number(process.argv[2] ?? 10_000);
const PER_CUSTOMER = Number(process.argv[3] ?? 3);
const TARGET_SESSIONS = 10;
const LOGOUT_ROUNDS = 30;
const ENTRIES = CUSTOMERS * PER_CUSTOMER;
const TIMED_CALLS = 2_000;
const API_KEY = 'test_BENCH_REGISTRY';
/** The Chargebee site of the population (the registry keeps entries per site). */
const SITE = siteKey('https://acme-bench.chargebee.com/api/v2');

interface RegistryFigures {
  entries: number;
  bytesPerEntry: number;
  /** Redis only: sum of MEMORY USAGE of the registry's keys, per entry. */
  keyBytesPerEntry?: number;
  addUs: number;
  listUs: number;
  logoutCustomer: { medianMs: number; p95Ms: number; rounds: number; portalSessions: number; allEnded: boolean };
}

function gcHeapBytes(): number {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('run with node --expose-gc');
  for (let i = 0; i < 3; i++) gc();
  return process.memoryUsage().heapUsed;
}

const portalId = () => `portal_${randomBytes(15).toString('base64url')}`; // 27 characters, like Chargebee's
/** The i-th customer's ID (about 20 characters), built afresh each time: the bench keeps no copy of it. */
const customerId = (i: number) => `cus_${(1_000_000 + i).toString(36)}_${(i * 2654435761) % 4294967296}`;

/** Entry `n` of the population: customer `n / PER_CUSTOMER`, a fresh random portal-session ID. */
const entryOf = (n: number): RegisteredPortalSession => ({
  id: portalId(),
  customerId: customerId(Math.floor(n / PER_CUSTOMER)),
  site: SITE,
  rememberedAt: Date.now(),
});

/** Records the population; nothing of it is kept outside the registry, so its memory is the registry's. */
async function fill(registry: PortalSessionRegistry, parallel: number): Promise<void> {
  for (let n = 0; n < ENTRIES; n += parallel) {
    const batch = Array.from({ length: Math.min(parallel, ENTRIES - n) }, (_, i) => entryOf(n + i));
    await Promise.all(batch.map(async (e) => registry.add(e)));
  }
}

/** A customer of the population, spread over it. */
const someCustomer = (i: number) => customerId((i * 7919) % CUSTOMERS);
/** A new customer's entry, for timing `add` on a full registry. */
const freshEntry = (i: number): RegisteredPortalSession => ({
  id: portalId(),
  customerId: `cus_fresh_${i}`,
  site: SITE,
  rememberedAt: Date.now(),
});

/** Microseconds per call of `fn`, one call at a time. */
async function timePerCall(calls: number, fn: (i: number) => unknown): Promise<number> {
  const started = performance.now();
  for (let i = 0; i < calls; i++) await fn(i);
  return Math.round(((performance.now() - started) * 1000) / calls);
}

const quantile = (values: number[], q: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return Math.round(sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] * 100) / 100;
};

/** Rounds of: 10 open portal sessions registered for one customer, then one timed `logoutCustomer()`. */
async function timeLogoutCustomer(
  registry: PortalSessionRegistry,
  emulator: Emulator,
): Promise<RegistryFigures['logoutCustomer']> {
  const portalLogout = library.chargebeePortalLogout({
    apiKey: API_KEY,
    baseUrl: emulator.baseUrl('acme-test'),
    registry,
    logger: pino({ level: 'silent' }),
  });
  const target = 'cus_bench_ten_sessions';
  // The site the middleware reads the registry on: its Chargebee client's.
  const site = siteKey(emulator.baseUrl('acme-test'));
  const times: number[] = [];
  let allEnded = true;
  try {
    for (let round = 0; round < LOGOUT_ROUNDS + 3; round++) {
      const ids: string[] = [];
      for (let i = 0; i < TARGET_SESSIONS; i++) {
        const portal = emulator.createSession({ customerId: target });
        emulator.openSession(portal.id);
        await registry.add({ id: portal.id, customerId: target, site, rememberedAt: Date.now() });
        ids.push(portal.id);
      }
      const started = performance.now();
      const outcome = await portalLogout.logoutCustomer(target);
      const ms = performance.now() - started;
      const ended = outcome.result === 'ended' && ids.every((id) => emulator.getSession(id)?.status === 'logged_out');
      allEnded &&= ended && outcome.portalSessions.length === TARGET_SESSIONS;
      if (round >= 3) times.push(ms); // the first rounds warm up the connections and the JIT
      emulator.clearRequests();
    }
  } finally {
    await portalLogout.close({ timeoutMs: 1000 });
  }
  return {
    medianMs: quantile(times, 0.5),
    p95Ms: quantile(times, 0.95),
    rounds: times.length,
    portalSessions: TARGET_SESSIONS,
    allEnded,
  };
}

async function memoryFigures(emulator: Emulator): Promise<RegistryFigures> {
  const before = gcHeapBytes();
  const registry = new library.MemoryPortalSessionRegistry({ maxEntries: ENTRIES + 10_000 });
  await fill(registry, 1);
  const after = gcHeapBytes();
  const listed = registry.list(SITE, someCustomer(1)).length;
  if (listed !== PER_CUSTOMER) throw new Error(`the in-memory registry listed ${listed} portal sessions`);
  const addUs = await timePerCall(TIMED_CALLS, (i) => registry.add(freshEntry(i)));
  const listUs = await timePerCall(TIMED_CALLS, (i) => registry.list(SITE, someCustomer(i)));
  return {
    entries: ENTRIES,
    bytesPerEntry: Math.round((after - before) / ENTRIES),
    addUs,
    listUs,
    logoutCustomer: await timeLogoutCustomer(registry, emulator),
  };
}

async function redisFigures(emulator: Emulator): Promise<RegistryFigures & { redisVersion: string }> {
  const server = await startRedisServer();
  const client = createClient({ url: server.url });
  client.on('error', () => undefined);
  await client.connect();
  try {
    const usedMemory = async () => Number(/used_memory:(\d+)/.exec(await client.info('memory'))?.[1]);
    const redisVersion = /redis_version:(\S+)/.exec(await client.info('server'))?.[1] ?? '?';
    const registry = new RedisPortalSessionRegistry(client, { maxEntries: ENTRIES + 10_000 });
    const before = await usedMemory();
    await fill(registry, 64);
    const after = await usedMemory();
    let keyBytes = 0;
    for (const key of await client.keys(`${registry.prefix}*`))
      keyBytes += (await client.memoryUsage(key, { SAMPLES: 0 })) ?? 0;
    const listed = (await registry.list(SITE, someCustomer(1))).length;
    if (listed !== PER_CUSTOMER) throw new Error(`the Redis registry listed ${listed} portal sessions`);
    const addUs = await timePerCall(TIMED_CALLS, (i) => registry.add(freshEntry(i)));
    const listUs = await timePerCall(TIMED_CALLS, (i) => registry.list(SITE, someCustomer(i)));
    return {
      redisVersion,
      entries: ENTRIES,
      bytesPerEntry: Math.round((after - before) / ENTRIES),
      keyBytesPerEntry: Math.round(keyBytes / ENTRIES),
      addUs,
      listUs,
      logoutCustomer: await timeLogoutCustomer(registry, emulator),
    };
  } finally {
    await client.close();
    await server.close();
  }
}

async function main(): Promise<void> {
  const emulator = await testing.ChargebeeEmulator.start({
    sites: { 'acme-test': { apiKey: API_KEY } },
    recordLimit: 100,
  });
  try {
    const memory = await memoryFigures(emulator);
    const redis = await redisFigures(emulator);
    const rows = [
      ['', 'in memory', `Redis ${redis.redisVersion}`],
      ['portal sessions kept', `${memory.entries}`, `${redis.entries}`],
      [
        'bytes per entry',
        `${memory.bytesPerEntry} (heap)`,
        `${redis.bytesPerEntry} (used_memory); ${redis.keyBytesPerEntry} (MEMORY USAGE)`,
      ],
      ['add, µs per call', `${memory.addUs}`, `${redis.addUs}`],
      ['list one customer, µs per call', `${memory.listUs}`, `${redis.listUs}`],
      [
        `logoutCustomer, ${TARGET_SESSIONS} portal sessions: median / p95 ms`,
        `${memory.logoutCustomer.medianMs} / ${memory.logoutCustomer.p95Ms}`,
        `${redis.logoutCustomer.medianMs} / ${redis.logoutCustomer.p95Ms}`,
      ],
      ['every portal session ended', `${memory.logoutCustomer.allEnded}`, `${redis.logoutCustomer.allEnded}`],
    ];
    const out = [
      `registry of ${CUSTOMERS} customers × ${PER_CUSTOMER} portal sessions (${libraryKind}, Node ${process.versions.node})`,
      ...rows.map((r) => `| ${r.join(' | ')} |`),
    ].join('\n');
    process.stdout.write(`${out}\n`);
    const dir = path.join(__dirname, 'results');
    mkdirSync(dir, { recursive: true });
    writeFileSync(
      path.join(dir, 'registry.json'),
      JSON.stringify({ customers: CUSTOMERS, perCustomer: PER_CUSTOMER, memory, redis }, null, 2),
    );
    if (!memory.logoutCustomer.allEnded || !redis.logoutCustomer.allEnded) process.exitCode = 1;
  } finally {
    await emulator.close();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`bench/registry: ${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
