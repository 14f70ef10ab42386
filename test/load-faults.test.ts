/**
 * Load with faults (modest size; bench/load-faults.ts is the large one): 200 concurrent logouts over real
 * HTTP against the emulator, a share of them hit by upstream faults. Every portal session must end logged
 * out, inline or through the deferred queue; none is lost; no unhandled rejection; memory stays bounded.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { ChargebeeEmulator } from '../src/testing';
import type { PortalSessionOutcome } from '../src';
import { captureLogs } from './helpers/log-capture';
import { waitFor } from './helpers/harness';
import { postLogout } from './helpers/post-logout';
import { tunedPortalLogout } from './helpers/tuned';

const API_KEY = 'test_LOADKEY_4';
const LOGOUTS = 200;

it(`ends all ${LOGOUTS} concurrent logouts under faults, inline or deferred, and loses none`, async () => {
  const rejections: unknown[] = [];
  const onRejection = (reason: unknown) => rejections.push(reason);
  process.on('unhandledRejection', onRejection);
  const emulator = await ChargebeeEmulator.start({ sites: { 'acme-test': { apiKey: API_KEY } } });
  const logs = captureLogs();
  const finals: PortalSessionOutcome[] = [];
  const portalLogout = tunedPortalLogout({
    apiKey: API_KEY,
    baseUrl: emulator.baseUrl('acme-test'),
    store: (req) => req.headers['x-portal-session'] as string,
    logger: logs.logger,
    budgetMs: 600,
    retry: { maxAttempts: 4 },
    deferred: { ratePerMinute: false },
    tuning: {
      attemptTimeoutMs: 200,
      retryBaseDelayMs: 10,
      retryMaxDelayMs: 50,
      queueBaseDelayMs: 20,
      queueMaxDelayMs: 200,
      concurrency: 8,
    },
    circuitBreaker: { failureThreshold: 5, coolOffMs: 200 },
    onOutcome: (outcome, req) => void (req === undefined && finals.push(outcome)),
  });
  const app = express();
  app.post('/logout', portalLogout, (_req, res) => void res.json(res.locals.chargebeePortalLogout));
  const server = http.createServer(app).listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const { port } = server.address() as AddressInfo;
  const agent = new http.Agent({ keepAlive: true, maxSockets: LOGOUTS });

  try {
    const ids = Array.from({ length: LOGOUTS }, () => emulator.createSession({ customerId: 'cus_load' }).id);
    const faulty = { transient500: 0, burst503: 0, hang: 0, cut: 0, limited: 0 };
    const inject = (kind: keyof typeof faulty, fault: Parameters<ChargebeeEmulator['injectFault']>[0]) => {
      faulty[kind] += 1;
      emulator.injectFault(fault);
    };
    ids.forEach((id, i) => {
      const path = `/portal_sessions/${id}/logout`;
      const kind = i % 20;
      if (kind < 2) inject('transient500', { match: { path }, status: 500, times: 2 });
      else if (kind === 2) inject('burst503', { match: { path }, status: 503, times: 6 });
      else if (kind === 3) inject('hang', { match: { path }, hang: true, times: 1 });
      else if (kind === 4) inject('cut', { match: { path }, drop: 'mid-response', times: 1 });
      // Chargebee's limit is per site and pauses the whole queue, so only a few 429s.
      else if (i % 100 === 8) inject('limited', { match: { path }, status: 429, retryAfter: 1, times: 1 });
    });
    const heapBefore = process.memoryUsage().heapUsed;

    const outcomes = await Promise.all(ids.map((id) => postLogout(port, agent, id)));

    const results = outcomes.map((o) => o.result);
    const endedInline = results.filter((r) => r === 'ended').length;
    const deferred = results.filter((r) => r === 'deferred').length;
    expect(endedInline + deferred).toBe(LOGOUTS); // none failed
    expect(deferred).toBeGreaterThanOrEqual(faulty.burst503); // at least the long bursts
    for (const o of outcomes) expect(o.durationMs).toBeLessThan(600 + 500);

    await waitFor(() => finals.length === deferred, 20_000, 'every deferred logout to end');
    expect(finals.every((f) => f.status === 'logged_out' && f.deferred)).toBe(true);
    const open = ids.filter((id) => emulator.getSession(id)?.status !== 'logged_out');
    expect(open).toEqual([]);
    expect(rejections).toEqual([]);
    const heapGrowthMb = (process.memoryUsage().heapUsed - heapBefore) / 1e6;
    expect(heapGrowthMb).toBeLessThan(100);

    await portalLogout.close({ timeoutMs: 1000 });
    expect(logs.text()).toMatch(/deferred-logout queue closed, nothing left/);
    const reasons = outcomes
      .flatMap((o) => o.portalSessions.map((p) => p.reason))
      .filter(Boolean)
      .join(',')
      .split(',')
      .reduce<Record<string, number>>((acc, r) => ({ ...acc, [r]: (acc[r] ?? 0) + 1 }), {});
    process.stdout.write(
      `load-faults test: ${LOGOUTS} logouts, ${endedInline} ended inline, ${deferred} deferred then ended (${JSON.stringify(reasons)}), ${open.length} lost, heap +${heapGrowthMb.toFixed(1)} MB\n`,
    );
  } finally {
    process.off('unhandledRejection', onRejection);
    agent.destroy();
    await new Promise((resolve) => server.close(resolve));
    await emulator.close();
  }
}, 60_000);
