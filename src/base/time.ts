/**
 * The one clock and the one deadline of this package.
 *
 * - {@link now} (monotonic, `performance.now()`) is what every deadline, timeout and duration is read on.
 * - {@link epochNow} (`Date.now()`) is read only for times that are stored or sent: a deferred job's due
 *   time, a registry entry, a cookie's expiry. A shared store compares those with its own clock.
 *
 * Every wait on something that may never answer (a store on a dead connection, a function of the app, a
 * Chargebee call) is bounded here, by one timer per wait: {@link within} rejects at the deadline,
 * {@link settleWithin} reports how the work went, {@link runUntil} also hands the work an abort signal.
 * The work is not cancelled unless it listens to that signal: it may still complete later, which the
 * callers allow for (fenced writes, at-least-once). No other file of `src/` reads a clock or starts a timer
 * (eslint refuses `Date.now`, `performance.now` and `setTimeout` elsewhere).
 */

/** Monotonic time in milliseconds: deadlines, timeouts and durations. */
export function now(): number {
  return performance.now();
}

/** Milliseconds since the epoch: only for times that are stored or sent. */
export function epochNow(): number {
  return Date.now();
}

/** The deadline `ms` from now, on {@link now}. */
export function deadlineIn(ms: number): number {
  return performance.now() + ms;
}

/** Milliseconds left until `deadline` (on {@link now}); 0 once it has passed. */
export function remaining(deadline: number): number {
  return Math.max(0, deadline - performance.now());
}

/** Longest delay `setTimeout` holds (2^31 - 1 ms, about 24.8 days); a longer one fires after 1 ms. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** A delay `setTimeout` keeps as given: 0 for NaN or negative values, at most {@link MAX_TIMER_MS}. */
export function timerDelay(ms: number): number {
  return ms > 0 ? Math.min(Math.ceil(ms), MAX_TIMER_MS) : 0;
}

/** A timer that can be cancelled. */
export interface Timer {
  cancel(): void;
}

/**
 * Calls `fire` after `ms` (at most {@link MAX_TIMER_MS}; a longer wait fires there, for the caller to look
 * again). The timer does not keep the process alive unless `keepAlive`. Every timer of the package is one of these.
 */
export function after(ms: number, fire: () => void, keepAlive = false): Timer {
  const timer = setTimeout(fire, timerDelay(ms));
  if (!keepAlive) timer.unref();
  return { cancel: () => clearTimeout(timer) };
}

/** Resolves after `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => after(ms, resolve, true));
}

/** The work did not settle in time. */
export class DeadlineError extends Error {
  override name = 'DeadlineError';
  constructor(what: string, ms: number) {
    // The time left when the wait began, up to the whole ms: a call given 200 ms reads as 200, not 199.
    super(`${what} did not answer within ${Math.ceil(Math.round(ms * 1000) / 1000)} ms`);
  }
}

function isThenable<T>(value: T | PromiseLike<T>): value is PromiseLike<T> {
  return typeof (value as { then?: unknown } | null)?.then === 'function';
}

/**
 * Races `work` against `deadline` (on {@link now}) with one timer: the promise settles as the work does, or
 * rejects with a {@link DeadlineError} at the deadline, after `onDeadline` ran. A late rejection of the
 * work is swallowed, never unhandled.
 */
function race<T>(work: PromiseLike<T>, deadline: number, what: string, onDeadline?: () => void): Promise<T> {
  const ms = deadline - performance.now();
  return new Promise<T>((resolve, reject) => {
    const timer = after(ms, () => {
      onDeadline?.();
      reject(new DeadlineError(what, ms));
    });
    work.then(
      (value) => {
        timer.cancel();
        resolve(value);
      },
      (error: unknown) => {
        timer.cancel();
        // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- the work's own reason, passed on
        reject(error);
      },
    );
  });
}

/**
 * `value` itself when it is not a promise; otherwise a promise that settles as it does, or rejects with a
 * {@link DeadlineError} at `deadline` (on {@link now}).
 */
export function within<T>(value: T | PromiseLike<T>, deadline: number, what: string): T | Promise<T> {
  return isThenable(value) ? race(value, deadline, what) : value;
}

/**
 * The signal {@link runUntil} hands its work: it aborts once, at the deadline or when the linked signal
 * does. It has the part of `AbortSignal` that axios, a stream reader and a pool read (`aborted`, 'abort'
 * listeners) without an `EventTarget`, whose listeners cost microseconds per call on the hot path.
 * `toAbortSignal()` gives a real `AbortSignal` to an API that insists on one (node-redis).
 */
export interface DeadlineSignal {
  readonly aborted: boolean;
  addEventListener(type: 'abort', listener: () => void, options?: { once?: boolean }): void;
  removeEventListener(type: 'abort', listener: () => void): void;
  toAbortSignal(): AbortSignal;
}

class Deadline implements DeadlineSignal {
  aborted = false;
  private listeners: Array<() => void> | undefined;
  private real: AbortController | undefined;

  addEventListener(_type: 'abort', listener: () => void): void {
    if (this.aborted) return;
    (this.listeners ??= []).push(listener);
  }

  removeEventListener(_type: 'abort', listener: () => void): void {
    const listeners = this.listeners;
    const i = listeners ? listeners.indexOf(listener) : -1;
    if (listeners && i >= 0) listeners.splice(i, 1);
  }

  toAbortSignal(): AbortSignal {
    if (!this.real) {
      this.real = new AbortController();
      if (this.aborted) this.real.abort();
    }
    return this.real.signal;
  }

  abort(): void {
    if (this.aborted) return;
    this.aborted = true;
    this.real?.abort();
    const listeners = this.listeners;
    this.listeners = undefined;
    // A listener that throws must neither stop the others nor escape from the timer that called it.
    if (listeners)
      for (const listener of listeners)
        try {
          listener();
        } catch {
          // The work's own listener; the work learns of the deadline from the rejection all the same.
        }
  }
}

/**
 * Runs `work` with a signal that aborts at `deadline` (on {@link now}), or when `linked` aborts; at the
 * deadline the promise rejects with a {@link DeadlineError}, whether or not the work listens. A throw of
 * `work` becomes a rejection.
 */
export function runUntil<T>(
  deadline: number,
  what: string,
  work: (signal: DeadlineSignal) => PromiseLike<T>,
  linked?: AbortSignal,
): Promise<T> {
  const signal = new Deadline();
  const abort = () => signal.abort();
  if (linked?.aborted) abort();
  else linked?.addEventListener('abort', abort);
  let running: PromiseLike<T>;
  try {
    running = work(signal);
  } catch (error) {
    linked?.removeEventListener('abort', abort);
    // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- the work's own throw, passed on
    return Promise.reject(error);
  }
  const settled = race(running, deadline, what, abort);
  if (linked) void settled.then(undefined, () => undefined).finally(() => linked.removeEventListener('abort', abort));
  return settled;
}

/** How a call to an outside function went. */
export type Settled<T> =
  { status: 'ok'; value: T } | { status: 'threw' | 'rejected'; error: unknown } | { status: 'timeout' };

/**
 * Calls `fn` and waits for its result until `deadline` (on {@link now}). Never throws or rejects: a throw, a
 * rejection or no answer in time is reported as such, and a late rejection is swallowed (it was reported as
 * a timeout already). A plain value is returned without waiting.
 */
export async function settleWithin<T>(fn: () => T | PromiseLike<T>, deadline: number): Promise<Settled<T>> {
  return settle(fn, deadline);
}

/**
 * {@link settleWithin} without a turn of the event loop for a plain value: the result at once when `fn`
 * returns a value or throws (the common case of the built-in stores and the default origin rules), a
 * promise of it otherwise.
 */
export function settle<T>(fn: () => T | PromiseLike<T>, deadline: number): Settled<T> | Promise<Settled<T>> {
  let value: T | PromiseLike<T>;
  try {
    value = fn();
    if (!isThenable(value)) return { status: 'ok', value };
  } catch (error) {
    return { status: 'threw', error };
  }
  return race(value, deadline, 'an outside function').then(
    (resolved): Settled<T> => ({ status: 'ok', value: resolved }),
    (error: unknown): Settled<T> =>
      error instanceof DeadlineError ? { status: 'timeout' } : { status: 'rejected', error },
  );
}

/**
 * Calls a hook whose result nobody waits for: a throw is reported at once, a rejection when it comes; a
 * promise that never settles costs nothing.
 */
export function callAndForget(fn: () => unknown, onError: (error: unknown) => void): void {
  try {
    const result = fn();
    if (isThenable(result)) Promise.resolve(result).then(undefined, onError);
  } catch (error) {
    onError(error);
  }
}
