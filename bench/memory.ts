/**
 * Memory: the heap before and after many logouts through our middleware with its defaults (run with
 * --expose-gc). Two transports, chosen by the first argument:
 * - `http`: real calls to an emulator in this process, reset after every batch, so what stays on the
 *   heap is the middleware's, its client's (agent, sockets, timers) and the logger's;
 * - `stub`: axios's transport replaced by a canned 200 answer, everything above it real (our client,
 *   axios's request pipeline, retries, breaker, logging): about five times faster, so it can do 100,000.
 * Run by bench/run.ts (stdout to /dev/null); sends its figures over IPC, or prints them when run alone:
 *   node --expose-gc --import tsx bench/memory.ts http|stub [logouts]
 */
import type { Request, Response } from 'express';
import { Readable } from 'node:stream';
import type { AxiosAdapter } from 'axios';
import { internals, library, testing } from './library';

export type MemoryTransport = 'http' | 'stub';

export interface MemoryResult {
  transport: MemoryTransport;
  logouts: number;
  /** Logouts whose outcome was not `ended` (should be 0). */
  notEnded: number;
  heapBeforeMb: number;
  heapAfterMb: number;
  growthMb: number;
  /** Heap after a full GC at each quarter of the run, to show the trend rather than one difference. */
  heapTrendMb: number[];
  seconds: number;
  /** Set when the time cap stopped the run early. */
  stoppedEarly?: string;
}

const WARMUP = 5_000;
const BATCH = 1_000;
const CONCURRENCY = 16;
const MAX_MS = 120_000;

function gcHeapMb(): number {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('run with node --expose-gc');
  for (let i = 0; i < 3; i++) gc();
  return Math.round((process.memoryUsage().heapUsed / 1024 / 1024) * 100) / 100;
}

/**
 * Answers every call as Chargebee answers a logout; stands in for axios's http adapter. It answers on a
 * later turn of the event loop, as a socket would: without any turn, pino's asynchronous writes to stdout
 * would never run and its buffer would grow (an artefact of the stub, not a leak).
 */
function stubTransport(): AxiosAdapter {
  return async (config) => {
    await new Promise((resolve) => setImmediate(resolve));
    const id = /portal_sessions\/([^/]+)\/logout$/.exec(config.url ?? '')?.[1] ?? 'portal_x';
    const now = Math.floor(Date.now() / 1000);
    const data = JSON.stringify({
      portal_session: {
        id,
        token: 't',
        access_url: 'http://127.0.0.1/portal',
        status: 'logged_out',
        created_at: now,
        customer_id: 'cus_mem',
        logout_at: now,
        object: 'portal_session',
      },
    });
    // Our client asks for the answer as a stream, as a socket gives it.
    const answer = config.responseType === 'stream' ? Readable.from([Buffer.from(data)], { objectMode: false }) : data;
    return { data: answer, status: 200, statusText: 'OK', headers: {}, config };
  };
}

export async function runMemory(transport: MemoryTransport, LOGOUTS: number): Promise<MemoryResult> {
  const emulator = await testing.ChargebeeEmulator.start({ recordLimit: 0 });
  const middleware = library.chargebeePortalLogout({ baseUrl: emulator.baseUrl(), apiKey: emulator.apiKey() });
  // The client keeps its axios instance private; the stub replaces only the transport under it.
  if (transport === 'stub') internals.client.transportOf(middleware.clientFor()).defaults.adapter = stubTransport();
  let notEnded = 0;

  const logout = (id: string) =>
    new Promise<void>((resolve, reject) => {
      const req = {
        ip: '::ffff:127.0.0.1',
        headers: { 'user-agent': 'bench/1.0' },
        session: { chargebeePortalSessions: [{ id }] },
      } as unknown as Request;
      const res = { locals: {} } as unknown as Response;
      middleware(req, res, (err?: unknown) => {
        if (err) return reject(err as Error);
        if (res.locals.chargebeePortalLogout?.result !== 'ended') notEnded++;
        resolve();
      });
    });
  const batch = async (): Promise<void> => {
    const ids = Array.from({ length: BATCH }, (_, i) =>
      transport === 'http' ? emulator.createSession({ customerId: `cus_mem_${i}` }).id : `portal_mem${i}`,
    );
    let next = 0;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < ids.length) await logout(ids[next++]);
      }),
    );
    emulator.reset();
  };

  const started = performance.now();
  try {
    for (let done = 0; done < WARMUP; done += BATCH) await batch();
    notEnded = 0;
    const heapBefore = gcHeapMb();
    const trend: number[] = [];
    let logouts = 0;
    let stoppedEarly: string | undefined;
    while (logouts < LOGOUTS) {
      if (performance.now() - started > MAX_MS) {
        stoppedEarly = `time cap of ${MAX_MS / 1000} s reached`;
        break;
      }
      await batch();
      logouts += BATCH;
      if (logouts % (LOGOUTS / 4) === 0) trend.push(gcHeapMb());
    }
    const heapAfter = gcHeapMb();
    return {
      transport,
      logouts,
      notEnded,
      heapBeforeMb: heapBefore,
      heapAfterMb: heapAfter,
      growthMb: Math.round((heapAfter - heapBefore) * 100) / 100,
      heapTrendMb: trend,
      seconds: Math.round((performance.now() - started) / 100) / 10,
      ...(stoppedEarly ? { stoppedEarly } : {}),
    };
  } finally {
    await middleware.close();
    await emulator.close();
  }
}

if (require.main === module) {
  const transport = process.argv[2] === 'stub' ? 'stub' : 'http';
  runMemory(transport, Number(process.argv[3] ?? 100_000)).then(
    (result) =>
      process.send
        ? process.send(result, () => process.exit(0))
        : process.stderr.write(`${JSON.stringify(result, null, 2)}\n`),
    (error: unknown) => {
      process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
      process.exit(1);
    },
  );
}
