/** Injected faults: checking them, choosing the one a request matches, and their JSON form for the control API. */
import { isNonNegativeInteger } from './options';
import type { EmulatorFault } from './types';

/** The largest `bodyBytes`: 1 GiB. */
export const MAX_FAULT_BODY_BYTES = 2 ** 30;
const MAX_TIMER_MS = 2 ** 31 - 1;
const MAX_RETRY_AFTER_RAW_LENGTH = 8192;
/** Printable ASCII without leading or trailing spaces, as a header value that survives unchanged. */
const PRINTABLE_ASCII = /^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$/;

function hasControlCharacter(value: string): boolean {
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i);
    if (code < 0x20 || code === 0x7f) return true;
  }
  return false;
}

function isPositiveInteger(value: unknown, max = Number.MAX_SAFE_INTEGER): value is number {
  return isNonNegativeInteger(value) && value > 0 && value <= max;
}

function refuseTogether(fault: EmulatorFault, key: keyof EmulatorFault, others: (keyof EmulatorFault)[]): void {
  if (fault[key] === undefined || fault[key] === false) return;
  for (const other of others) {
    if (fault[other] !== undefined && fault[other] !== false)
      throw new TypeError(`can't pass fault.${key} and fault.${other} together`);
  }
}

function checkMatch(m: EmulatorFault['match']): void {
  if (m === undefined) return;
  if (typeof m !== 'object' || m === null) throw new TypeError('fault.match must be an object');
  if (m.method !== undefined && typeof m.method !== 'string')
    throw new TypeError('fault.match.method must be a string such as "POST"');
  if (m.site !== undefined && typeof m.site !== 'string') throw new TypeError('fault.match.site must be a string');
  if (m.path !== undefined && typeof m.path !== 'string' && !(m.path instanceof RegExp)) {
    throw new TypeError('fault.match.path must be a string (exact path after /api/v2) or a RegExp');
  }
}

function checkBodyFaults(fault: EmulatorFault): void {
  const { trickle } = fault;
  if (trickle !== undefined) {
    if (typeof trickle !== 'object' || trickle === null)
      throw new TypeError('fault.trickle must be an object { intervalMs, bytes }');
    if (!isPositiveInteger(trickle.intervalMs, MAX_TIMER_MS))
      throw new TypeError(`fault.trickle.intervalMs must be a positive integer, got ${String(trickle.intervalMs)}`);
    if (trickle.bytes !== undefined && !isPositiveInteger(trickle.bytes))
      throw new TypeError(`fault.trickle.bytes must be a positive integer, got ${String(trickle.bytes)}`);
  }
  if (
    fault.bodyBytes !== undefined &&
    !(isNonNegativeInteger(fault.bodyBytes) && fault.bodyBytes <= MAX_FAULT_BODY_BYTES)
  )
    throw new TypeError(
      `fault.bodyBytes must be an integer from 0 to ${MAX_FAULT_BODY_BYTES} (1 GiB), got ${String(fault.bodyBytes)}`,
    );
  for (const key of ['gzip', 'echo', 'hang'] as const) {
    if (fault[key] !== undefined && typeof fault[key] !== 'boolean')
      throw new TypeError(`fault.${key} must be a boolean`);
  }
  const raw = fault.retryAfterRaw;
  if (
    raw !== undefined &&
    (typeof raw !== 'string' || !PRINTABLE_ASCII.test(raw) || raw.length > MAX_RETRY_AFTER_RAW_LENGTH)
  ) {
    throw new TypeError(
      `fault.retryAfterRaw must be 1 to ${MAX_RETRY_AFTER_RAW_LENGTH} printable ASCII characters without leading or trailing spaces`,
    );
  }
}

/** Checks a fault once, when it is injected, so that a bad one fails where it was written. */
export function checkFault(fault: EmulatorFault): void {
  if (typeof fault !== 'object' || fault === null) throw new TypeError('fault must be an object');
  checkMatch(fault.match);
  if (fault.times !== undefined && !isPositiveInteger(fault.times)) {
    throw new TypeError(`fault.times must be a positive integer, got ${String(fault.times)}`);
  }
  if (fault.latencyMs !== undefined && !(isNonNegativeInteger(fault.latencyMs) && fault.latencyMs <= MAX_TIMER_MS)) {
    throw new TypeError(`fault.latencyMs must be a non-negative integer, got ${String(fault.latencyMs)}`);
  }
  if (fault.status !== undefined && !(Number.isInteger(fault.status) && fault.status >= 200 && fault.status <= 599)) {
    throw new TypeError(`fault.status must be an HTTP status from 200 to 599, got ${String(fault.status)}`);
  }
  if (fault.retryAfter !== undefined && !isNonNegativeInteger(fault.retryAfter)) {
    throw new TypeError(`fault.retryAfter must be a non-negative integer of seconds, got ${String(fault.retryAfter)}`);
  }
  for (const key of ['apiErrorCode', 'message', 'type', 'rawBody', 'contentType'] as const) {
    if (fault[key] !== undefined && typeof fault[key] !== 'string')
      throw new TypeError(`fault.${key} must be a string`);
  }
  checkBodyFaults(fault);
  if (
    (fault.apiErrorCode !== undefined || fault.message !== undefined || fault.type !== undefined) &&
    fault.status === undefined &&
    fault.retryAfter === undefined &&
    fault.retryAfterRaw === undefined &&
    fault.bodyBytes === undefined
  ) {
    throw new TypeError('fault.status is required with fault.apiErrorCode, fault.message or fault.type');
  }
  if (fault.contentType !== undefined && hasControlCharacter(fault.contentType)) {
    throw new TypeError('fault.contentType must not contain control characters');
  }
  if (fault.drop !== undefined && fault.drop !== 'before-response' && fault.drop !== 'mid-response') {
    throw new TypeError(`fault.drop must be 'before-response' or 'mid-response', got ${String(fault.drop)}`);
  }
  refuseTogether(fault, 'hang', ['drop', 'trickle', 'bodyBytes', 'gzip']);
  refuseTogether(fault, 'drop', ['trickle', 'bodyBytes', 'gzip']);
  refuseTogether(fault, 'retryAfterRaw', ['retryAfter']);
  refuseTogether(fault, 'bodyBytes', ['rawBody']);
  refuseTogether(fault, 'echo', ['apiErrorCode', 'message', 'type', 'rawBody']);
}

interface ActiveFault {
  id: number;
  fault: EmulatorFault;
  remaining: number;
}

/** The injected faults in the order they were added. */
export class FaultList {
  private faults: ActiveFault[] = [];
  private nextId = 1;

  get size(): number {
    return this.faults.length;
  }

  /** Checks and adds a copy of the fault; returns its ID. */
  add(fault: EmulatorFault): number {
    checkFault(fault);
    const active: ActiveFault = {
      id: this.nextId++,
      fault: { ...fault, match: fault.match && { ...fault.match }, trickle: fault.trickle && { ...fault.trickle } },
      remaining: fault.times ?? Infinity,
    };
    if (active.fault.match === undefined) delete active.fault.match;
    if (active.fault.trickle === undefined) delete active.fault.trickle;
    this.faults.push(active);
    return active.id;
  }

  remove(id: number): boolean {
    const before = this.faults.length;
    this.faults = this.faults.filter((f) => f.id !== id);
    return this.faults.length !== before;
  }

  clear(): void {
    this.faults = [];
  }

  /** The first fault that matches the request, counted as used once. */
  take(method: string, apiPath: string | undefined, site: string | undefined): EmulatorFault | undefined {
    for (let i = 0; i < this.faults.length; i++) {
      const active = this.faults[i];
      const m = active.fault.match;
      if (m) {
        if (m.method !== undefined && m.method.toUpperCase() !== method) continue;
        if (m.site !== undefined && m.site !== site) continue;
        if (m.path !== undefined) {
          if (apiPath === undefined) continue;
          if (typeof m.path === 'string') {
            if (m.path !== apiPath) continue;
          } else {
            m.path.lastIndex = 0; // a /g or /y RegExp would otherwise remember the last match
            if (!m.path.test(apiPath)) continue;
          }
        }
      }
      if (--active.remaining <= 0) this.faults.splice(i, 1);
      return active.fault;
    }
    return undefined;
  }

  /** The faults in their JSON form, with `remaining` uses (`null`: unlimited). */
  toJson(): Record<string, unknown>[] {
    return this.faults.map((f) => ({
      id: f.id,
      remaining: f.remaining === Infinity ? null : f.remaining,
      ...faultToJson(f.fault),
    }));
  }
}

/** The control API's fault: an `EmulatorFault` whose `match.pathRegex` stands for a RegExp path. */
export function faultFromJson(input: Record<string, unknown>): EmulatorFault {
  const fault = { ...input } as EmulatorFault & { match?: Record<string, unknown> };
  if (input.match !== undefined) {
    if (typeof input.match !== 'object' || input.match === null) throw new TypeError('match must be an object');
    const match = { ...(input.match as Record<string, unknown>) };
    if (match.pathRegex !== undefined) {
      if (match.path !== undefined) throw new TypeError("can't pass match.path and match.pathRegex together");
      if (typeof match.pathRegex !== 'string') throw new TypeError('match.pathRegex must be a string');
      match.path = new RegExp(match.pathRegex);
      delete match.pathRegex;
    }
    fault.match = match;
  }
  return fault;
}

function faultToJson(fault: EmulatorFault): Record<string, unknown> {
  const path = fault.match?.path;
  if (!(path instanceof RegExp)) return { ...fault };
  const { path: _path, ...match } = fault.match ?? {};
  return { ...fault, match: { ...match, pathRegex: path.source } };
}
