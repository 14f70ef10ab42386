/**
 * The load generator: autocannon's programmatic API for throughput and latency, and a plain `http`
 * client for the outage, where each request's own time (capped) is what matters.
 */
import http from 'node:http';
import autocannon from 'autocannon';

/** The User-Agent every request carries; the routes send it as `chargebee-request-origin-device`. */
export const USER_AGENT = 'Mozilla/5.0 (X11; Linux x86_64) bench/1.0';

export interface LoadResult {
  /** Answers received. */
  requests: number;
  /** Answers per second, from the first request to the last answer. */
  rps: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** Connection errors, timeouts and answers other than 200. */
  errors: number;
}

/** The `q` quantile (0..1) of sorted values, nearest rank. */
export function quantile(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank];
}

export function median(values: number[]): number {
  return quantile(
    [...values].sort((a, b) => a - b),
    0.5,
  );
}

/**
 * POSTs to `url` once per cookie (each request logs out a different app session), over `connections`
 * keep-alive connections. Latencies are autocannon's per-request hrtime measures, kept exactly here
 * (its own histogram rounds to whole milliseconds).
 */
export async function runLoad(url: string, cookies: string[], connections: number, timeoutS = 10): Promise<LoadResult> {
  const { origin, pathname } = new URL(url);
  const latencies = new Float64Array(cookies.length);
  let answered = 0;
  let errors = 0;
  let next = 0;
  let lastAnswer = 0;
  const started = performance.now();
  const instance = autocannon({
    url: origin,
    connections: Math.min(connections, cookies.length),
    amount: cookies.length,
    timeout: timeoutS,
    headers: { 'user-agent': USER_AGENT },
    requests: [
      {
        method: 'POST',
        path: pathname,
        // Never reuses a cookie: past the pool autocannon would stop anyway (amount), this only guards it.
        setupRequest: (request) => ({
          ...request,
          headers: { ...request.headers, cookie: cookies[Math.min(next++, cookies.length - 1)] },
        }),
      },
    ],
  });
  // autocannon notices the end only at its next one-second tick; the last answer is the real end, so
  // the run ends there (the idle instance finishes on its own). A run with errors waits for autocannon.
  let allAnswered: () => void = () => undefined;
  const lastAnswerSeen = new Promise<void>((resolve) => (allAnswered = resolve));
  instance.on('response', (_client: unknown, statusCode: number, _bytes: number, responseTime: number) => {
    if (answered < latencies.length) latencies[answered] = responseTime;
    answered++;
    lastAnswer = performance.now();
    if (statusCode !== 200) errors++;
    if (answered === cookies.length) allAnswered();
  });
  const result = await Promise.race([lastAnswerSeen.then(() => undefined), instance]);
  if (result) errors += result.errors;
  const sorted = latencies.subarray(0, Math.min(answered, latencies.length)).sort();
  return {
    requests: answered,
    rps: answered / ((lastAnswer - started) / 1000),
    p50Ms: quantile(sorted, 0.5),
    p99Ms: quantile(sorted, 0.99),
    maxMs: sorted.length ? sorted[sorted.length - 1] : NaN,
    errors,
  };
}

export interface CappedResult {
  requests: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** Requests still unanswered at the cap; their time counts as the cap. */
  hitCap: number;
  errors: number;
}

/** POSTs once per cookie, all at once, each abandoned after `capMs`; reports each request's time. */
export async function runCapped(url: string, cookies: string[], capMs: number): Promise<CappedResult> {
  const agent = new http.Agent({ keepAlive: false, maxSockets: Infinity });
  const one = (cookie: string) =>
    new Promise<{ ms: number; capped: boolean; ok: boolean }>((resolve) => {
      const started = performance.now();
      let settled = false;
      const finish = (capped: boolean, ok: boolean) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve({ ms: capped ? capMs : performance.now() - started, capped, ok });
      };
      const req = http.request(
        url,
        { method: 'POST', agent, headers: { cookie, 'user-agent': USER_AGENT, 'content-length': 0 } },
        (res) => {
          res.resume();
          res.on('end', () => finish(false, res.statusCode === 200));
          res.on('error', () => finish(false, false));
        },
      );
      const timer = setTimeout(() => {
        finish(true, false);
        req.destroy();
      }, capMs);
      req.on('error', () => finish(false, false));
      req.end();
    });
  const results = await Promise.all(cookies.map(one));
  agent.destroy();
  const sorted = results.map((r) => r.ms).sort((a, b) => a - b);
  return {
    requests: results.length,
    p50Ms: quantile(sorted, 0.5),
    p99Ms: quantile(sorted, 0.99),
    maxMs: sorted[sorted.length - 1],
    hitCap: results.filter((r) => r.capped).length,
    errors: results.filter((r) => !r.ok && !r.capped).length,
  };
}
