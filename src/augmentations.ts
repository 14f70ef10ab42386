/**
 * The types this package adds to Express and express-session, so that `res.locals.chargebeePortalLogout`
 * and `req.session.chargebeePortalSessions` are typed in the host app. `index.ts` imports this module, so
 * the published `index.d.ts` reaches it. An app without express-session compiles too: TypeScript ignores
 * a declaration file's augmentation of a module that is not installed (test/consumer checks both).
 */
import type {} from 'express-session';
import type { PortalLogoutOutcome } from './base/outcome';
import type { RememberedPortalSession } from './remembered/list';

declare module 'express-session' {
  interface SessionData {
    /** Portal sessions remembered by chargebee-portal-logout's session store. */
    chargebeePortalSessions?: RememberedPortalSession[];
  }
}

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Locals {
      /** Set by chargebee-portal-logout: what happened to the user's portal sessions at this logout. */
      chargebeePortalLogout?: PortalLogoutOutcome;
    }
  }
}
