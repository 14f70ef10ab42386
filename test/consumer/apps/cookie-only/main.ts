// Cookie-only app: express without express-session (not installed), `skipLibCheck` as `tsc --init`
// writes it. The portal-session IDs go in the package's signed cookie; one remember + logout round trip.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { chargebeePortalLogout, type PortalLogoutOutcome } from 'chargebee-portal-logout';
import { ChargebeeEmulator } from 'chargebee-portal-logout/testing';

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
function expectType<T extends true>(): T | undefined {
  return undefined;
}

async function main(): Promise<void> {
  assert.throws(() => require.resolve('express-session'), 'express-session must not be installed in this app');

  const emulator = await ChargebeeEmulator.start();
  const portalLogout = chargebeePortalLogout({
    baseUrl: emulator.baseUrl(),
    apiKey: emulator.apiKey(),
    store: 'cookie',
    cookie: { secret: 'consumer-cookie-secret' },
  });

  const app = express();
  app.post('/portal', async (req, res) => {
    const portal = await portalLogout.clientFor().create({ customerId: 'cus_cookie_only' });
    await portalLogout.remember(req, res, portal);
    res.json({ id: portal.id });
  });
  app.post('/logout', portalLogout, (_req, res) => {
    expectType<Equal<typeof res.locals.chargebeePortalLogout, PortalLogoutOutcome | undefined>>();
    res.json({ result: res.locals.chargebeePortalLogout?.result });
  });

  const server = app.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  try {
    const created = await fetch(`${base}/portal`, { method: 'POST' });
    const cookie = created.headers.getSetCookie()[0]?.split(';')[0];
    assert.match(cookie ?? '', /^chargebee_portal_sessions=s%3A/, 'remember() sets the signed cookie');
    const { id } = (await created.json()) as { id: string };

    const logout = await fetch(`${base}/logout`, { method: 'POST', headers: { cookie: cookie! } });
    assert.deepEqual(await logout.json(), { result: 'ended' });
    assert.equal(emulator.getSession(id)?.status, 'logged_out');
    assert.match(logout.headers.getSetCookie()[0] ?? '', /^chargebee_portal_sessions=;/, 'the cookie is cleared');
  } finally {
    server.closeAllConnections();
    server.close();
    await portalLogout.close();
    await emulator.close();
  }
  console.log('cookie-only app: no express-session, remember + logout round trip: ok');
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
