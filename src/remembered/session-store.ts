import type { Request } from 'express';
import type { InternalStore } from './store';

type SessionBag = Record<string, unknown>;

function sessionOf(req: Request): SessionBag {
  const session = (req as unknown as { session?: unknown }).session;
  if (typeof session !== 'object' || session === null) {
    throw new Error('req.session is missing: mount express-session before this middleware, or use store "cookie"');
  }
  return session as SessionBag;
}

/** Keeps remembered portal sessions in `req.session[key]` (express-session, or anything that sets `req.session`). */
export function sessionStore(key: string): InternalStore {
  return {
    kind: 'session',
    read(req) {
      return { value: sessionOf(req)[key] };
    },
    write(req, _res, portalSessions) {
      const session = sessionOf(req);
      // eslint-disable-next-line @typescript-eslint/no-dynamic-delete -- the key is the store's own
      if (portalSessions.length === 0) delete session[key];
      else session[key] = portalSessions;
    },
  };
}
