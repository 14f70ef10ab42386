/**
 * Hostile upstreams, measured: each scenario runs in a child process of its own (so that its peak RSS is
 * its own) against a raw loopback server, with the middleware's default options.
 *
 *   npm run hostile            # every scenario, one table
 *   node --import tsx bench/hostile.ts trickle   # one scenario, its JSON
 *
 * - trickle: Chargebee sends headers, then one body byte every 500 ms: time to next().
 * - flood: a 500 with a 200 MB body, default retries: time to next(), bytes sent, peak RSS.
 * - bomb: a 200 with a 382 KB gzip body that inflates to 390 MB: peak RSS.
 * - retry-after: a 429 with `Retry-After: 3000000` deferred, then the process idles 5 s: CPU share.
 * - log-line: a 400 whose api_error_code is 1 MB (over the body limit), and one of 60 KB: longest log line.
 */
import { spawn } from 'node:child_process';
import { Writable } from 'node:stream';
import express from 'express';
import pino from 'pino';
import request from 'supertest';
import { chargebeePortalLogout, type ChargebeePortalLogoutOptions, type PortalLogoutOutcome } from '../src';
import { flood, gzipAnswer, gzipBomb, json, rawUpstream, trickle, type Answer } from '../test/helpers/raw-upstream';

const SCENARIOS = ['trickle', 'flood', 'bomb', 'retry-after', 'log-line'] as const;
type Scenario = (typeof SCENARIOS)[number];
const API_KEY = 'test_HOSTILE_BENCH_KEY';

interface Figures {
  scenario: Scenario;
  [figure: string]: unknown;
}

/** Logs out one remembered portal session against `answer`; the longest log line is kept. */
async function logoutAgainst(answer: Answer, extra: Partial<ChargebeePortalLogoutOptions> = {}) {
  const upstream = await rawUpstream(answer);
  let longestLine = 0;
  const sink = new Writable({
    write(chunk, _encoding, callback) {
      for (const line of String(chunk).split('\n')) longestLine = Math.max(longestLine, line.length);
      callback();
    },
  });
  const portalLogout = chargebeePortalLogout({
    apiKey: API_KEY,
    baseUrl: upstream.baseUrl,
    store: () => ['portal_HostileBench01'],
    logger: pino(sink),
    ...extra,
  });
  const app = express();
  app.post('/logout', portalLogout, (_req, res) => void res.json(res.locals.chargebeePortalLogout));
  const started = performance.now();
  const res = await request(app).post('/logout');
  const nextMs = Math.round(performance.now() - started);
  return { upstream, portalLogout, outcome: res.body as PortalLogoutOutcome, nextMs, longestLine: () => longestLine };
}

const rssMb = () => Math.round(process.resourceUsage().maxRSS / 1024);

/** What a logout against an oversized answer cost; closes the middleware and the server. */
async function sizeFigures(r: Awaited<ReturnType<typeof logoutAgainst>>, baselineRssMb: number) {
  const figures = {
    nextMs: r.nextMs,
    attempts: r.outcome.portalSessions[0]?.attempts,
    error: r.outcome.portalSessions[0]?.error?.name,
    peakRssMb: rssMb(),
    baselineRssMb,
  };
  await r.portalLogout.close({ timeoutMs: 0 });
  await r.upstream.close();
  return figures;
}

async function run(scenario: Scenario): Promise<Figures> {
  const baselineRssMb = rssMb();
  switch (scenario) {
    case 'trickle': {
      const r = await logoutAgainst(trickle(200, 500));
      await r.portalLogout.close({ timeoutMs: 0 });
      await r.upstream.close();
      return { scenario, nextMs: r.nextMs, result: r.outcome.result, status: r.outcome.portalSessions[0]?.status };
    }
    case 'flood': {
      const r = await logoutAgainst(flood(500, 200 * 1024 * 1024), { deferred: false });
      const sentMb = Math.round(r.upstream.bytesSent() / 1e5) / 10;
      return { scenario, ...(await sizeFigures(r, baselineRssMb)), sentMb };
    }
    case 'bomb': {
      const bomb = gzipBomb(390);
      const r = await logoutAgainst(gzipAnswer(200, bomb, bomb.length, 0), { deferred: false });
      return { scenario, bombKb: Math.round(bomb.length / 1024), ...(await sizeFigures(r, baselineRssMb)) };
    }
    case 'retry-after': {
      const r = await logoutAgainst(json(429, { message: 'slow down' }, { 'Retry-After': '3000000' }), {
        retry: false,
      });
      const cpu = process.cpuUsage();
      const wallStart = performance.now();
      await new Promise((resolve) => setTimeout(resolve, 5000));
      const used = process.cpuUsage(cpu);
      const wallMs = performance.now() - wallStart;
      const figures = {
        scenario,
        status: r.outcome.portalSessions[0]?.status,
        idleCpuPercent: Math.round(((used.user + used.system) / 1000 / wallMs) * 1000) / 10,
        upstreamCallsWhileIdle: r.upstream.calls.length - 1,
      };
      await r.portalLogout.close({ timeoutMs: 0 });
      await r.upstream.close();
      return figures;
    }
    case 'log-line': {
      const sizes: Record<string, number> = {};
      for (const [name, size] of [
        ['1 MB', 1024 * 1024],
        ['60 KB', 60 * 1024],
      ] as const) {
        const r = await logoutAgainst(json(400, { message: 'x', api_error_code: 'c'.repeat(size) }), {
          deferred: false,
        });
        sizes[`longestLogLine(${name})`] = r.longestLine();
        await r.portalLogout.close({ timeoutMs: 0 });
        await r.upstream.close();
      }
      return { scenario, ...sizes };
    }
  }
}

function child(scenario: Scenario): Promise<Figures> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, ['--import', 'tsx', __filename, scenario], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    proc.stdout.on('data', (chunk) => (out += chunk));
    const timer = setTimeout(() => proc.kill('SIGKILL'), 60_000);
    proc.on('exit', (code) => {
      clearTimeout(timer);
      try {
        resolve(JSON.parse(out.trim().split('\n').pop() ?? '') as Figures);
      } catch {
        reject(new Error(`scenario ${scenario} exited ${code} without figures: ${out.slice(0, 500)}`));
      }
    });
  });
}

async function main(): Promise<void> {
  const only = process.argv[2] as Scenario | undefined;
  if (only) {
    if (!SCENARIOS.includes(only)) throw new Error(`unknown scenario ${only} (${SCENARIOS.join(', ')})`);
    process.stdout.write(`${JSON.stringify(await run(only))}\n`);
    process.exit(0);
  }
  for (const scenario of SCENARIOS) {
    const figures = await child(scenario);
    process.stdout.write(`${JSON.stringify(figures)}\n`);
  }
}

void main().catch((error: unknown) => {
  process.stderr.write(`${String(error)}\n`);
  process.exit(1);
});
