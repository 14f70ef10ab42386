/**
 * Recipe: passport (with express-session). The middleware goes before `req.logout()`, because passport
 * regenerates the session on logout and the remembered portal-session IDs go with the old one.
 * In your app the import is `from 'chargebee-portal-logout'`.
 */
import express, { type RequestHandler } from 'express';
import session from 'express-session';
import { Passport } from 'passport';
import { Strategy as LocalStrategy } from 'passport-local';
import { chargebeePortalLogout, type ChargebeePortalLogoutOptions } from '../src';

/** Your user record, as passport puts it on `req.user`. */
export interface AppUser {
  email: string;
  chargebeeCustomerId: string;
}

export interface PassportAppOptions {
  /** Options of the middleware: site (or baseUrl), apiKey, ... */
  chargebee: ChargebeePortalLogoutOptions;
  sessionSecret: string;
  /** Your user lookup; here a function of email and password. */
  findUser: (email: string, password: string) => AppUser | undefined;
}

export function createPassportApp({ chargebee, sessionSecret, findUser }: PassportAppOptions) {
  const passport = new Passport(); // or the global `passport`; an instance per app keeps tests apart
  passport.use(
    new LocalStrategy({ usernameField: 'email' }, (email, password, done) =>
      done(null, findUser(email, password) ?? false),
    ),
  );
  passport.serializeUser((user, done) => done(null, user));
  passport.deserializeUser((user: AppUser, done) => done(null, user));

  // The origin email defaults to req.user.email, which passport sets.
  const portalLogout = chargebeePortalLogout(chargebee);
  const requireAuth: RequestHandler = (req, res, next) => (req.isAuthenticated() ? next() : res.sendStatus(401));

  const app = express();
  app.use(express.urlencoded({ extended: false }));
  app.use(
    session({
      secret: sessionSecret,
      resave: false,
      saveUninitialized: false,
      cookie: { httpOnly: true, sameSite: 'lax' },
    }),
  );
  app.use(passport.initialize());
  app.use(passport.session());

  const signIn = passport.authenticate('local', { failureRedirect: '/login' }) as RequestHandler; // typed any
  app.post('/login', signIn, (_req, res) => res.redirect(303, '/'));

  app.get('/me', requireAuth, (req, res) => res.json({ email: (req.user as AppUser).email }));

  app.post('/billing/portal', requireAuth, async (req, res, next) => {
    try {
      const portal = await portalLogout.clientFor().create({ customerId: (req.user as AppUser).chargebeeCustomerId });
      await portalLogout.remember(req, res, portal);
      res.redirect(303, portal.access_url);
    } catch (err) {
      next(err);
    }
  });

  app.post('/logout', requireAuth, portalLogout, (req, res, next) => {
    req.logout((err) => (err ? next(err) : res.redirect(303, '/')));
  });

  return { app, portalLogout };
}
