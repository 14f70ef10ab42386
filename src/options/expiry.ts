import { SCHEDULING_METHODS } from '../queue/store';
import type { DeferredSettings, ExpirySettings } from '../logout/settings';
import { closestName } from '../base/suggest';

const EXPIRY_OPTIONS = new Set(['maxAgeMs', 'idleMs', 'activityIntervalMs']);
const MIN_MS = 1000;
const MAX_MS = 365 * 24 * 3600 * 1000;
/** Default activity interval: a tenth of the idle time, at most a minute. */
const DEFAULT_ACTIVITY_INTERVAL_MS = 60_000;

/**
 * Validates `expiry` against the deferred queue it rides. `fail` throws the setup `TypeError`;
 * `deferred` is the validated `deferred` option (`false`: no queue).
 */
export function normalizeExpiry(
  value: unknown,
  deferred: DeferredSettings | false,
  fail: (message: string) => never,
): ExpirySettings | undefined {
  if (value === undefined || value === false) return undefined;
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    fail('option expiry must be false or an object like { maxAgeMs: 3600000, idleMs: 1800000 }');
  const e = value as Record<string, unknown>;
  for (const key of Object.keys(e)) {
    if (EXPIRY_OPTIONS.has(key)) continue;
    const guess = closestName(key, EXPIRY_OPTIONS);
    fail(
      `unknown option expiry.${key} (${guess === undefined ? '' : `did you mean expiry.${guess}? `}known: ${[...EXPIRY_OPTIONS].join(', ')})`,
    );
  }
  const duration = (name: string, min: number, max: number): number | undefined => {
    const v = e[name];
    if (v === undefined) return undefined;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max)
      fail(`option expiry.${name} must be a number of milliseconds from ${min} to ${max}`);
    return v;
  };
  const maxAgeMs = duration('maxAgeMs', MIN_MS, MAX_MS);
  const idleMs = duration('idleMs', MIN_MS, MAX_MS);
  if (maxAgeMs === undefined && idleMs === undefined)
    fail('option expiry needs maxAgeMs, idleMs or both (or set expiry: false)');
  if (idleMs === undefined && e.activityIntervalMs !== undefined)
    fail('option expiry.activityIntervalMs needs expiry.idleMs: it spaces the writes that postpone idle logouts');
  const activityIntervalMs =
    duration('activityIntervalMs', 0, idleMs ?? 0) ?? Math.min(DEFAULT_ACTIVITY_INTERVAL_MS, (idleMs ?? 0) / 10);
  if (deferred === false)
    fail("can't pass expiry with deferred: false or failClosed: true: scheduled logouts ride the deferred queue");
  const store = deferred.store as unknown as Record<string, unknown>;
  const missing = SCHEDULING_METHODS.filter((method) => typeof store[method] !== 'function');
  if (missing.length > 0)
    fail(
      `option expiry needs a deferred.store with ${missing.map((m) => `${m}()`).join(', ')} (see DeferredLogoutStore; ` +
        'the in-memory and Redis stores have them)',
    );
  return { maxAgeMs, idleMs, activityIntervalMs };
}
