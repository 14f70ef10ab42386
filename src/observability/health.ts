import { OptionCheck } from '../base/validate';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { PortalLogoutStats } from './stats';

/** Options of `portalLogout.healthCheck()`. */
export interface HealthCheckOptions {
  /**
   * Unhealthy when the oldest deferred logout was first tried longer ago than this, in milliseconds: Chargebee
   * has not been reachable for that long. Default 900 000 (15 minutes).
   */
  maxDeferredAgeMs?: number;
  /** Unhealthy when a circuit breaker has been open longer than this, in milliseconds. Default 300 000 (5 minutes). */
  maxCircuitOpenMs?: number;
}

/** The JSON body of the health check. */
export interface HealthReport {
  status: 'ok' | 'unhealthy';
  /** Why it is unhealthy, one sentence each; empty when ok. */
  problems: string[];
  /** The snapshot the verdict was made from; `null` when it could not be taken. */
  stats: PortalLogoutStats | null;
}

/** A request handler for plain `http`, Express, or any framework that hands over Node's request and response. */
export type HealthCheckHandler = (req: IncomingMessage, res: ServerResponse) => void;

export const DEFAULT_HEALTH_CHECK = { maxDeferredAgeMs: 15 * 60_000, maxCircuitOpenMs: 5 * 60_000 } as const;

const check: OptionCheck = new OptionCheck('healthCheck');

/** The verdict on a snapshot. */
export function judgeHealth(stats: PortalLogoutStats, options: Required<HealthCheckOptions>): HealthReport {
  const problems: string[] = [];
  const q = stats.queue;
  if (q && q.depth === null) problems.push('the deferred-logout store did not answer');
  if (q && q.oldestJobAgeMs !== null && q.oldestJobAgeMs > options.maxDeferredAgeMs)
    problems.push(
      `the oldest deferred logout has waited ${seconds(q.oldestJobAgeMs)} s (limit ${seconds(options.maxDeferredAgeMs)} s)`,
    );
  for (const c of stats.circuits) {
    if (c.openForMs !== null && c.openForMs > options.maxCircuitOpenMs)
      problems.push(
        `the circuit breaker of site ${c.site} has been open for ${seconds(c.openForMs)} s (limit ${seconds(options.maxCircuitOpenMs)} s)`,
      );
  }
  return { status: problems.length ? 'unhealthy' : 'ok', problems, stats };
}

const seconds = (ms: number) => Math.round(ms / 1000);

/**
 * Builds the health-check handler: 200 with `status: "ok"`, or 503 with `status: "unhealthy"` and the problems;
 * the body is a {@link HealthReport}. Options are checked here; a bad one throws a `TypeError` naming it.
 */
export function createHealthCheck(
  stats: () => Promise<PortalLogoutStats>,
  options: HealthCheckOptions = {},
): HealthCheckHandler {
  if (options === null || typeof options !== 'object') check.fail('options must be an object');
  const limits = {
    maxDeferredAgeMs: check.ms(options.maxDeferredAgeMs, 'maxDeferredAgeMs', DEFAULT_HEALTH_CHECK.maxDeferredAgeMs, 1),
    maxCircuitOpenMs: check.ms(options.maxCircuitOpenMs, 'maxCircuitOpenMs', DEFAULT_HEALTH_CHECK.maxCircuitOpenMs, 1),
  };
  return function chargebeePortalLogoutHealthCheck(req, res) {
    let taken: Promise<PortalLogoutStats>;
    try {
      taken = stats();
    } catch (error) {
      taken = Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
    taken
      .then(
        (snapshot) => judgeHealth(snapshot, limits),
        (): HealthReport => ({ status: 'unhealthy', problems: ['the snapshot could not be taken'], stats: null }),
      )
      .then((report) => {
        if (res.headersSent || res.destroyed) return;
        const body = JSON.stringify(report);
        res.statusCode = report.status === 'ok' ? 200 : 503;
        res.setHeader('Content-Type', 'application/json; charset=utf-8');
        res.setHeader('Cache-Control', 'no-store');
        res.setHeader('Content-Length', Buffer.byteLength(body));
        res.end(req.method === 'HEAD' ? undefined : body);
      })
      .catch(() => undefined);
  };
}
