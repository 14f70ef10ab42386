/**
 * A small express-session app written as a user would, against the installed package. The same file is
 * compiled as an ES module (`module: nodenext`) and as CommonJS (`module: node16`), both `strict` with
 * `skipLibCheck: false`: the type assertions below fail the build when the package's typings for
 * `req.session` and `res.locals` do not reach the app.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import express from 'express';
import session from 'express-session';
import { chargebeePortalLogout, type PortalLogoutOutcome, type RememberedPortalSession } from 'chargebee-portal-logout';
import { ChargebeeEmulator } from 'chargebee-portal-logout/testing';

declare module 'express-session' {
  interface SessionData {
    email?: string;
  }
}

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
function expectType<T extends true>(): T | undefined {
  return undefined;
}

const EMAIL = 'zoë@exämple.com';

/** Signs in, opens a portal session, signs out: the portal session must end at the emulator. */
export async function sessionRoundTrip(): Promise<void> {
  const emulator = await ChargebeeEmulator.start();
  const portalLogout = chargebeePortalLogout({
    baseUrl: emulator.baseUrl(),
    apiKey: emulator.apiKey(),
    originHeaders: { email: (req) => req.session.email },
  });

  const app = express();
  app.use(session({ secret: 'consumer-test', resave: false, saveUninitialized: false }));
  app.post('/login', (req, res) => {
    req.session.email = EMAIL;
    res.sendStatus(204);
  });
  app.post('/portal', async (req, res) => {
    const portal = await portalLogout.clientFor().create({ customerId: 'cus_consumer' });
    await portalLogout.remember(req, res, portal);
    const remembered: RememberedPortalSession[] | undefined = req.session.chargebeePortalSessions;
    expectType<Equal<typeof req.session.chargebeePortalSessions, RememberedPortalSession[] | undefined>>();
    res.json({ id: portal.id, remembered: remembered?.map((entry) => entry.id) });
  });
  app.post('/logout', portalLogout, (req, res, next) => {
    expectType<Equal<typeof res.locals.chargebeePortalLogout, PortalLogoutOutcome | undefined>>();
    const outcome = res.locals.chargebeePortalLogout;
    req.session.destroy((err) => {
      if (err) return next(err);
      res.json({ result: outcome?.result, statuses: outcome?.portalSessions.map((entry) => entry.status) });
    });
  });

  const server = app.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  try {
    const login = await fetch(`${base}/login`, { method: 'POST' });
    const cookie = login.headers.getSetCookie()[0]?.split(';')[0];
    assert.ok(cookie, 'the login sets a session cookie');
    const portal = (await (await fetch(`${base}/portal`, { method: 'POST', headers: { cookie } })).json()) as {
      id: string;
      remembered: string[];
    };
    assert.deepEqual(portal.remembered, [portal.id]);
    assert.equal(emulator.getSession(portal.id)?.status, 'created');

    const logout = await (await fetch(`${base}/logout`, { method: 'POST', headers: { cookie } })).json();
    assert.deepEqual(logout, { result: 'ended', statuses: ['logged_out'] });
    assert.equal(emulator.getSession(portal.id)?.status, 'logged_out');
    const headers = emulator.logoutRequests(portal.id)[0]?.headers;
    assert.equal(headers?.['chargebee-request-origin-user-encoded'], Buffer.from(EMAIL).toString('base64'));
  } finally {
    server.closeAllConnections();
    server.close();
    await portalLogout.close();
    await emulator.close();
  }
}
