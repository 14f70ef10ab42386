import type { RequestHandler } from 'express';
import { errorFields, type Log } from '../base/logging';
import { deadlineIn, settleWithin } from '../base/time';
import type { PortalSessionExpiry } from '../logout/expiry';
import type { InternalStore, StoreRead } from '../remembered/store';

/**
 * `portalLogout.activity`: for each request of an authenticated route, the app session's portal sessions
 * (as the store holds them) have their idle logouts moved later. The store is read before `next()`, bounded
 * by the budget; the expiry's write happens after, and nothing here fails the request. Without idle expiry
 * it does nothing and says so once.
 */
export function activityHook(
  expiry: PortalSessionExpiry | undefined,
  store: InternalStore,
  budgetMs: number,
  log: Log,
): RequestHandler {
  if (!expiry?.idle) {
    let warned = false;
    return (_req, _res, next) => {
      if (!warned) {
        warned = true;
        log.warn({}, 'activity is mounted but expiry.idleMs is not set; it does nothing');
      }
      next();
    };
  }
  let readFailureLogged = false;
  const readFailed = (error: unknown): void => {
    if (readFailureLogged) return;
    readFailureLogged = true;
    log.warn(
      { err: errorFields(error) },
      'activity could not read the remembered portal sessions (is it mounted after the session middleware?); idle logouts are not postponed',
    );
  };
  return (req, _res, next) => {
    let read: StoreRead | PromiseLike<StoreRead>;
    try {
      read = store.read(req);
    } catch (error) {
      readFailed(error);
      next();
      return;
    }
    if (typeof (read as PromiseLike<StoreRead> | null)?.then !== 'function') {
      expiry.touch((read as StoreRead | null)?.value);
      next();
      return;
    }
    // A store of the app's may be slow, reject or never answer: a request waits no longer than a logout would.
    void settleWithin(() => read, deadlineIn(budgetMs))
      .then((settled) => {
        if (settled.status === 'ok') expiry.touch(settled.value?.value);
        else readFailed(settled.status === 'timeout' ? new Error('the store did not answer in time') : settled.error);
      })
      .then(() => next())
      .catch((error: unknown) => log.error({ err: errorFields(error) }, 'the next handler threw'));
  };
}
