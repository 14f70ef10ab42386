/**
 * An outer deadline for work that may never settle (a store on a dead connection, a host's function). The
 * work is not cancelled: it may still complete later, which the callers allow for (fenced writes, at-least-once).
 */

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
    timer = setTimeout(() => reject(new DeadlineError(what, ms)), Math.max(0, ms));
    timer.unref();
  });
  return Promise.race([work, limit]).finally(() => clearTimeout(timer));
}

function isThenable<T>(value: T | PromiseLike<T>): value is PromiseLike<T> {
  return typeof (value as { then?: unknown } | null)?.then === 'function';
}
