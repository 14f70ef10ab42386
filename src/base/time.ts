/**
 * Time limits for everything this package waits on: timers that never overflow, and work that may never
 * settle (a store on a dead connection, a function of the app that may return a value, throw, reject or
 * hang). The work is not cancelled: it may still complete later, which the callers allow for (fenced
 * writes, at-least-once).
 */

/** Longest delay `setTimeout` holds (2^31 - 1 ms, about 24.8 days); a longer one fires after 1 ms. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** A delay `setTimeout` keeps as given: 0 for NaN or negative values, at most {@link MAX_TIMER_MS}. */
export function timerDelay(ms: number): number {
  return ms > 0 ? Math.min(Math.ceil(ms), MAX_TIMER_MS) : 0;
}

/** The work did not settle in time. */
export class DeadlineError extends Error {
  override name = 'DeadlineError';
  constructor(what: string, ms: number) {
    super(`${what} did not answer within ${Math.round(ms)} ms`);
  }
}

/**
 * `value` itself when it is not a promise; otherwise a promise that settles as it does, or rejects with a
 * {@link DeadlineError} after `ms`. A late rejection of `value` is swallowed, never unhandled.
 */
export function within<T>(value: T | PromiseLike<T>, ms: number, what: string): T | Promise<T> {
  if (!isThenable(value)) return value;
  const work = Promise.resolve(value);
  work.catch(() => undefined);
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => {
      reject(new DeadlineError(what, ms));
    }, timerDelay(ms));
    timer.unref();
  });
  return Promise.race([work, limit]).finally(() => {
    clearTimeout(timer);
  });
}

/** How a call to an outside function went. */
export type Settled<T> =
  { status: 'ok'; value: T } | { status: 'threw' | 'rejected'; error: unknown } | { status: 'timeout' };

/**
 * Calls `fn` and waits for its result until `deadline` (on `performance.now()`). Never throws or rejects:
 * a throw, a rejection or no answer in time is reported as such, and a late rejection is swallowed (it was
 * reported as a timeout already). A plain value is returned without waiting.
 */
export async function settleWithin<T>(fn: () => T | PromiseLike<T>, deadline: number): Promise<Settled<T>> {
  let pending: T | Promise<T>;
  try {
    pending = within(fn(), deadline - performance.now(), 'an outside function');
  } catch (error) {
    return { status: 'threw', error };
  }
  try {
    return { status: 'ok', value: await pending };
  } catch (error) {
    return error instanceof DeadlineError ? { status: 'timeout' } : { status: 'rejected', error };
  }
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

function isThenable<T>(value: T | PromiseLike<T>): value is PromiseLike<T> {
  return typeof (value as { then?: unknown } | null)?.then === 'function';
}
