/**
 * Load with faults, large size: many logouts over loopback HTTP against the emulator while a share of the
 * upstream calls fail (500 bursts, long 503 bursts, hung requests, cut responses, a few 429s, and a short
 * full outage in the middle). Every portal session must end logged out, inline or through the deferred
 * queue; none may be lost; no unhandled rejection; memory must stay bounded. Prints the figures and exits
 * non-zero when one of these fails.
 *
 *   npm run load:faults                         # 10 000 logouts, 100 at a time
 *   LOGOUTS=20000 CONCURRENCY=300 OUTAGE_MS=3000 npm run load:faults
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import express from 'express';
import pino from 'pino';
import type { PortalLogoutOutcome, PortalSessionOutcome } from '../src';
import { createPortalLogout } from '../src/middleware/middleware';
import { ChargebeeEmulator } from '../src/testing';
import { postLogout } from '../test/helpers/post-logout';

const LOGOUTS = Number(process.env.LOGOUTS ?? 10_000);
const CONCURRENCY = Number(process.env.CONCURRENCY ?? 100);
/** The whole run must end within this, or it counts as a failure. */
const TIME_LIMIT_MS = Number(process.env.TIME_LIMIT_MS ?? 180_000);
const OUTAGE_MS = Number(process.env.OUTAGE_MS ?? 1500);
const API_KEY = 'test_LOADFAULTS_KEY';

/** A small seeded generator, so that runs are comparable. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state * 1664525 + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

function heapMb(): number {
  (globalThis as { gc?: () => void }).gc?.();
  return process.memoryUsage().heapUsed / 1e6;
}

async function main(): Promise<number> {
  const started = performance.now();
  const unhandled: unknown[] = [];
  process.on('unhandledRejection', (reason) => unhandled.push(reason));

  const logCounts = { warn: 0, error: 0 };
  const logSink = new Writable({
    write(chunk, _encoding, callback) {
      for (const line of String(chunk).split('\n')) {
        if (line.includes('"level":40')) logCounts.warn += 1;
        else if (line.includes('"level":50')) logCounts.error += 1;
      }
      callback();
    },
  });

  const emulator = await ChargebeeEmulator.start({ sites: { 'acme-test': { apiKey: API_KEY } }, recordLimit: 1000 });
  const finals: PortalSessionOutcome[] = [];
  const portalLogout = createPortalLogout(
    {
      apiKey: API_KEY,
      baseUrl: emulator.baseUrl('acme-test'),
      store: (req) => req.headers['x-portal-session'] as string | undefined,
      logger: pino({ level: 'warn' }, logSink),
      budgetMs: 3000,
      retry: { maxAttempts: 4 },
      deferred: { ratePerMinute: false },
      circuitBreaker: { failureThreshold: 5, coolOffMs: 500 },
      onOutcome: (outcome, req) => void (req === undefined && finals.push(outcome)),
    },
    // One process runs the load, the app and the emulator: keep the per-call timeout above the queueing
    // delay that the load itself causes, or the bench measures its own overload instead of the faults.
    {
      attemptTimeoutMs: 1000,
      retryBaseDelayMs: 20,
      retryMaxDelayMs: 200,
      queueBaseDelayMs: 50,
      queueMaxDelayMs: 1000,
      concurrency: 16,
    },
  );
  const app = express();
  app.post('/logout', portalLogout, (_req, res) => void res.json(res.locals.chargebeePortalLogout));
  const server = http.createServer(app).listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const { port } = server.address() as AddressInfo;
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });

  const ids = Array.from({ length: LOGOUTS }, () => emulator.createSession({ customerId: 'cus_bench' }).id);
  const rand = random(42);
  const faults = { transient500: 0, burst503: 0, hang: 0, cut: 0, limited429: 0 };
  const inject = (kind: keyof typeof faults, fault: Parameters<ChargebeeEmulator['injectFault']>[0]) => {
    faults[kind] += 1;
    emulator.injectFault(fault);
  };
  for (const id of ids) {
    const path = `/portal_sessions/${id}/logout`;
    const r = rand();
    if (r < 0.1) inject('transient500', { match: { path }, status: 500, times: 2 });
    else if (r < 0.13) inject('burst503', { match: { path }, status: 503, times: 6 });
    else if (r < 0.15) inject('hang', { match: { path }, hang: true, times: 1 });
    else if (r < 0.17) inject('cut', { match: { path }, drop: 'mid-response', times: 1 });
    else if (r < 0.1705) inject('limited429', { match: { path }, status: 429, retryAfter: 1, times: 1 });
  }
  const heapBefore = heapMb();

  // A full outage in the middle of the run: every call gets 503 for OUTAGE_MS.
  let stopOutage: (() => void) | undefined;
  let next = 0;
  const outcomes: PortalLogoutOutcome[] = [];
  let httpErrors = 0;
  let peakHeap = heapBefore;
  const worker = async () => {
    while (next < ids.length) {
      const i = next++;
      if (OUTAGE_MS > 0 && i === Math.floor(ids.length / 2) && !stopOutage) {
        const remove = emulator.injectFault({ status: 503, apiErrorCode: 'site_not_ready' });
        stopOutage = remove;
        setTimeout(remove, OUTAGE_MS).unref();
      }
      try {
        outcomes.push(await postLogout(port, agent, ids[i]));
      } catch {
        httpErrors += 1;
      }
      if (i % 1000 === 0) peakHeap = Math.max(peakHeap, process.memoryUsage().heapUsed / 1e6);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  const inlineDoneMs = performance.now() - started;

  const count = (result: PortalLogoutOutcome['result']) => outcomes.filter((o) => o.result === result).length;
  const deferred = count('deferred');
  const reasons: Record<string, number> = {};
  for (const o of outcomes)
    for (const p of o.portalSessions) if (p.reason) reasons[p.reason] = (reasons[p.reason] ?? 0) + 1;

  // Let the queue finish, within the time limit.
  while (finals.length < deferred && performance.now() - started < TIME_LIMIT_MS) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    peakHeap = Math.max(peakHeap, process.memoryUsage().heapUsed / 1e6);
  }
  const drainMs = performance.now() - started - inlineDoneMs;
  await portalLogout.close({ timeoutMs: 5000 });
  const loggedOut = ids.filter((id) => emulator.getSession(id)?.status === 'logged_out').length;
  const lost = LOGOUTS - loggedOut;
  const heapAfter = heapMb();
  const totalMs = performance.now() - started;

  agent.destroy();
  await new Promise((resolve) => server.close(resolve));
  await emulator.close();

  const figures = {
    logouts: LOGOUTS,
    concurrency: CONCURRENCY,
    faultsInjected: { ...faults, outageMs: OUTAGE_MS },
    endedInline: count('ended'),
    deferred,
    deferredReasons: reasons,
    deferredThenEnded: finals.filter((f) => f.status === 'logged_out' || f.status === 'already_logged_out').length,
    deferredFinalOther: finals.filter((f) => f.status !== 'logged_out' && f.status !== 'already_logged_out').length,
    failedInline: count('failed'),
    httpErrors,
    loggedOutAtChargebee: loggedOut,
    lost,
    unhandledRejections: unhandled.length,
    logLines: logCounts,
    heapMb: { before: +heapBefore.toFixed(1), peak: +peakHeap.toFixed(1), after: +heapAfter.toFixed(1) },
    timeMs: { inline: Math.round(inlineDoneMs), queueDrain: Math.round(drainMs), total: Math.round(totalMs) },
    logoutsPerSecondInline: Math.round(LOGOUTS / (inlineDoneMs / 1000)),
  };
  process.stdout.write(`${JSON.stringify(figures, null, 2)}\n`);

  const problems: string[] = [];
  if (lost > 0) problems.push(`${lost} portal sessions not logged out`);
  if (unhandled.length > 0) problems.push(`${unhandled.length} unhandled rejections`);
  if (httpErrors > 0 || figures.failedInline > 0)
    problems.push(`${httpErrors} HTTP errors, ${figures.failedInline} failed logouts`);
  if (totalMs > TIME_LIMIT_MS) problems.push(`took ${Math.round(totalMs)} ms, over the ${TIME_LIMIT_MS} ms limit`);
  // Bounded memory: what is left after the run is small next to the run's own size.
  if (heapAfter - heapBefore > 64) problems.push(`heap grew by ${(heapAfter - heapBefore).toFixed(1)} MB`);
  if (problems.length > 0) {
    process.stderr.write(`load-faults: FAILED: ${problems.join('; ')}\n`);
    return 1;
  }
  process.stdout.write('load-faults: OK, every portal session ended logged out, none lost\n');
  return 0;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`load-faults: crashed: ${(error as Error)?.stack ?? String(error)}\n`);
    process.exit(2);
  },
);
