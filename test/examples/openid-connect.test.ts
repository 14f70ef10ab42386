/**
 * examples/express-openid-connect.ts through a full OpenID Connect sign-in on loopback: a minimal issuer
 * served here (discovery, JWKS, an authorization endpoint that signs in a chosen user at once, a token
 * endpoint with client authentication and PKCE), the example app in a child process (see the fixture
 * for why), and the Chargebee emulator.
 */
import { createHash, generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import request from 'supertest';
import { ChargebeeEmulator } from '../../src/testing';
import { listen } from '../helpers/listen';
import { startChildApp } from '../helpers/child-app';

const API_KEY = 'test_OIDCKEY_8';
const CLIENT_ID = 'portal-demo';
const CLIENT_SECRET = 'client-secret-for-tests';
const base64url = (data: Buffer | string) => Buffer.from(data).toString('base64url');

/** A user the issuer signs in at its next authorization request. */
interface IssuerUser {
  sub: string;
  email: string;
}

/** The smallest issuer express-openid-connect accepts for the authorization-code flow with PKCE. */
function createIssuer(urlOf: () => string) {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = { ...publicKey.export({ format: 'jwk' }), kid: 'k1', alg: 'RS256', use: 'sig' };
  const codes = new Map<string, { user: IssuerUser; nonce: string; challenge: string; redirectUri: string }>();
  let nextUser: IssuerUser | undefined;

  const idToken = (user: IssuerUser, nonce: string): string => {
    const now = Math.floor(Date.now() / 1000);
    const header = base64url(JSON.stringify({ alg: 'RS256', typ: 'JWT', kid: 'k1' }));
    const payload = base64url(
      JSON.stringify({ iss: `${urlOf()}/`, aud: CLIENT_ID, iat: now, exp: now + 300, nonce, ...user }),
    );
    return `${header}.${payload}.${base64url(sign('sha256', Buffer.from(`${header}.${payload}`), privateKey))}`;
  };
  const json = (res: ServerResponse, status: number, body: unknown) => {
    res
      .writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' })
      .end(JSON.stringify(body));
  };

  const handler = async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', urlOf());
    if (url.pathname === '/.well-known/openid-configuration') {
      return json(res, 200, {
        issuer: `${urlOf()}/`,
        authorization_endpoint: `${urlOf()}/authorize`,
        token_endpoint: `${urlOf()}/token`,
        jwks_uri: `${urlOf()}/jwks`,
        response_types_supported: ['code'],
        subject_types_supported: ['public'],
        id_token_signing_alg_values_supported: ['RS256'],
        token_endpoint_auth_methods_supported: ['client_secret_basic'],
        code_challenge_methods_supported: ['S256'],
      });
    }
    if (url.pathname === '/jwks') return json(res, 200, { keys: [jwk] });
    if (url.pathname === '/authorize') {
      const p = url.searchParams;
      if (!nextUser || p.get('client_id') !== CLIENT_ID || p.get('code_challenge_method') !== 'S256')
        return json(res, 400, { error: 'invalid_request' });
      const code = randomBytes(16).toString('hex');
      codes.set(code, {
        user: nextUser,
        nonce: p.get('nonce') ?? '',
        challenge: p.get('code_challenge') ?? '',
        redirectUri: p.get('redirect_uri') ?? '',
      });
      const back = new URL(p.get('redirect_uri') ?? '');
      back.searchParams.set('code', code);
      back.searchParams.set('state', p.get('state') ?? '');
      res.writeHead(302, { location: back.href }).end();
      return;
    }
    if (url.pathname === '/token' && req.method === 'POST') {
      let body = '';
      for await (const chunk of req) body += chunk;
      const form = new URLSearchParams(body);
      // client_secret_basic: each part form-urlencoded (RFC 6749 2.3.1), then Base64.
      const [id, secret] = Buffer.from((req.headers.authorization ?? '').replace(/^Basic /, ''), 'base64')
        .toString()
        .split(':')
        .map(decodeURIComponent);
      if (id !== CLIENT_ID || secret !== CLIENT_SECRET) return json(res, 401, { error: 'invalid_client' });
      const grant = codes.get(form.get('code') ?? '');
      codes.delete(form.get('code') ?? '');
      const verifier = form.get('code_verifier') ?? '';
      if (
        !grant ||
        grant.redirectUri !== form.get('redirect_uri') ||
        base64url(createHash('sha256').update(verifier).digest()) !== grant.challenge
      ) {
        return json(res, 400, { error: 'invalid_grant' });
      }
      return json(res, 200, {
        access_token: randomBytes(16).toString('hex'),
        token_type: 'Bearer',
        expires_in: 3600,
        id_token: idToken(grant.user, grant.nonce),
      });
    }
    json(res, 404, { error: 'not_found' });
  };
  return { handler, signInNext: (user: IssuerUser) => (nextUser = user) };
}

let emulator: ChargebeeEmulator;
let issuerServer: Awaited<ReturnType<typeof listen>>;
let issuer: ReturnType<typeof createIssuer>;
let child: Awaited<ReturnType<typeof startChildApp>>;
let appUrl: string;

beforeAll(async () => {
  emulator = await ChargebeeEmulator.start({ sites: { 'acme-test': { apiKey: API_KEY } } });
  let issuerUrl = '';
  issuer = createIssuer(() => issuerUrl);
  issuerServer = await listen((req, res) => void issuer.handler(req, res));
  issuerUrl = issuerServer.url;

  const config = {
    issuerBaseURL: issuerUrl,
    clientID: CLIENT_ID,
    clientSecret: CLIENT_SECRET,
    chargebeeBaseUrl: emulator.baseUrl(),
    chargebeeApiKey: API_KEY,
  };
  child = await startChildApp(join(__dirname, 'fixtures/openid-connect-app.ts'), 'OIDC_APP_CONFIG', config);
  appUrl = child.url;
}, 20000);

afterAll(async () => {
  await child.stop();
  await issuerServer.close();
  await emulator.close();
});

type Agent = ReturnType<typeof request.agent>;

/** The browser's part of a sign-in: the app's /login, the issuer's /authorize, back to the app's /callback. */
async function signIn(user: IssuerUser): Promise<Agent> {
  issuer.signInNext(user);
  const agent = request.agent(appUrl);
  const toIssuer = await agent.get('/login').expect(302);
  const authorize = await fetch(toIssuer.headers.location as string, { redirect: 'manual' });
  expect(authorize.status).toBe(302);
  const callback = new URL(authorize.headers.get('location') ?? '');
  expect(callback.origin).toBe(appUrl);
  await agent.get(`${callback.pathname}${callback.search}`).expect(302);
  expect((await agent.get('/me').expect(200)).body).toEqual({ email: user.email });
  return agent;
}

async function openPortal(agent: Agent): Promise<string> {
  const location = (await agent.post('/billing/portal').expect(303)).headers.location;
  const portal = emulator.sessions().find((s) => s.access_url === location)!;
  emulator.openSession(portal.id);
  return portal.id;
}

describe('express-openid-connect recipe (examples/express-openid-connect.ts)', () => {
  it('keeps the portal session in req.appSession and logs it out before res.oidc.logout(), with the email of req.oidc.user', async () => {
    const agent = await signIn({ sub: 'user-1', email: 'zoë@exämple.com' });
    const id = await openPortal(agent);
    expect(emulator.getSession(id)?.customer_id).toBe('cus_user-1');

    const res = await agent.post('/logout').expect(302);
    expect(res.headers.location).toBe(`${appUrl}/`);
    expect(emulator.getSession(id)?.status).toBe('logged_out');
    expect(emulator.logoutRequests(id)[0].headers['chargebee-request-origin-user-encoded']).toBe(
      Buffer.from('zoë@exämple.com').toString('base64'),
    );
    await agent.get('/me').expect(302); // signed out of the app too: requiresAuth sends to the login
  });

  it('logs out every portal session of the sign-in, and not those of another user', async () => {
    const agent = await signIn({ sub: 'user-2', email: 'two@example.com' });
    const ids = [await openPortal(agent), await openPortal(agent)];
    const other = await signIn({ sub: 'user-3', email: 'three@example.com' });
    const othersId = await openPortal(other);
    await agent.post('/logout').expect(302);
    expect(ids.map((id) => emulator.getSession(id)?.status)).toEqual(['logged_out', 'logged_out']);
    expect(emulator.getSession(othersId)?.status).toBe('logged_in');
  });

  it('sends a visitor who is not signed in home, without calling Chargebee', async () => {
    emulator.clearRequests();
    await request(appUrl).post('/logout').expect(303).expect('Location', '/');
    expect(emulator.requests).toEqual([]);
  });
});
