/**
 * The demo in a real browser (Debian's Chromium through playwright-core), all on loopback: sign in with a
 * non-ASCII email, open the billing portal on the emulator, come back, sign out, and check what
 * Chargebee received. Run with `npm run test:browser`. Screenshots land in test-results/.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import { chromium, type Browser } from 'playwright-core';
import { ChargebeeEmulator } from '../../src/testing';
import { createDemoApp, customerIdFor, type DemoApp } from '../../examples/demo/app';
import { listen } from '../helpers/listen';

const EMAIL = 'zoë@exämple.com';
const ENTITY = 'acme-us';
const RESULTS = join(__dirname, '../../test-results');
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

let emulator: ChargebeeEmulator;
let demo: DemoApp;
let served: Awaited<ReturnType<typeof listen>>;
let browser: Browser;

beforeAll(async () => {
  mkdirSync(RESULTS, { recursive: true });
  emulator = await ChargebeeEmulator.start({ sites: { 'acme-test': { apiKey: 'test_BROWSERKEY_4' } } });
  demo = createDemoApp({
    chargebee: { baseUrl: emulator.baseUrl(), apiKey: 'test_BROWSERKEY_4' },
    businessEntityId: ENTITY,
    emulatorUrl: emulator.url,
    logger: pino({ level: 'warn' }),
  });
  served = await listen(demo.app);
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
});

afterAll(async () => {
  await browser?.close();
  await served?.close();
  await demo?.close();
  await emulator?.close();
});

it("signs in, opens the billing portal, signs out, and the portal session is logged out with the browser's origin headers", async () => {
  const page = await browser.newPage();
  const userAgent = await page.evaluate<string>('navigator.userAgent');

  await page.goto(`${served.url}/`);
  await page.getByLabel('Email').fill(EMAIL);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expectText(page.locator('#signed-in'), `Signed in as ${EMAIL}`);

  await page.getByRole('button', { name: 'Open the billing portal' }).click();
  await expectText(page.locator('#message'), 'This portal session is logged in.');
  expect(page.url().startsWith(`${emulator.url}/portal/acme-test/`)).toBe(true);
  const [portal] = emulator.sessions().filter((s) => s.customer_id === customerIdFor(EMAIL));
  expect(portal.status).toBe('logged_in');

  await page.getByRole('link', { name: 'Back to the app' }).click();
  await expectText(page.locator('tbody'), 'logged_in');
  await page.screenshot({ path: join(RESULTS, 'demo-signed-in.png'), fullPage: true });

  await page.getByRole('button', { name: 'Sign out', exact: true }).click();
  await expectText(page.locator('#last-logout'), 'logged out');
  await expectText(page.locator('#signed-out'), 'Nobody is signed in.');
  await page.screenshot({ path: join(RESULTS, 'demo-after-sign-out.png'), fullPage: true });
  const shownHash = await page.locator('#last-logout code').first().innerText();

  expect(emulator.getSession(portal.id)?.status).toBe('logged_out');
  const logouts = emulator.logoutRequests(portal.id);
  expect(logouts).toHaveLength(1);
  expect(logouts[0].headers).toMatchObject({
    'chargebee-request-origin-ip': '127.0.0.1',
    'chargebee-request-origin-device': userAgent,
    'chargebee-request-origin-user-encoded': Buffer.from(EMAIL, 'utf8').toString('base64'),
    'chargebee-business-entity-id': ENTITY,
  });
  expect(logouts[0].headers['chargebee-request-origin-user']).toBeUndefined();

  // What a person would look at next: the emulator's page, with the headers the logout carried.
  await page.goto(`${emulator.url}/`);
  await expectText(page.locator('body'), `decoded: ${EMAIL}`);
  await expectText(page.locator('body'), `${portal.id}\nhash ${shownHash}`); // the demo's hash names this row
  await page.screenshot({ path: join(RESULTS, 'emulator-after-sign-out.png'), fullPage: true });
});

it('two devices: "Sign out of all devices" on one logs out the portal sessions of both', async () => {
  const email = 'jane@example.com';
  const laptop = await browser.newContext({ userAgent: 'Laptop Chromium' });
  const phone = await browser.newContext({ userAgent: 'Phone Chromium' });
  try {
    const opened: Array<import('playwright-core').Page> = [];
    for (const context of [laptop, phone]) {
      const page = await context.newPage();
      await page.goto(`${served.url}/`);
      await page.getByLabel('Email').fill(email);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.getByRole('button', { name: 'Open the billing portal' }).click();
      await expectText(page.locator('#message'), 'This portal session is logged in.');
      await page.getByRole('link', { name: 'Back to the app' }).click();
      await expectText(page.locator('#signed-in'), `Signed in as ${email}`);
      opened.push(page);
    }
    const portals = emulator.sessions().filter((s) => s.customer_id === customerIdFor(email));
    expect(portals.map((p) => p.status)).toEqual(['logged_in', 'logged_in']);

    const phonePage = opened[1];
    await phonePage.reload();
    const devices = await phonePage.locator('#portal-sessions td.device').allInnerTexts();
    expect(devices).toEqual(['this device', 'another device']);
    await phonePage.screenshot({ path: join(RESULTS, 'demo-two-devices.png'), fullPage: true });

    await phonePage.getByRole('button', { name: 'Sign out of all devices' }).click();
    await expectText(phonePage.locator('#signed-out'), 'Nobody is signed in.');
    await expectText(phonePage.locator('#last-logout'), 'another device');
    await phonePage.screenshot({ path: join(RESULTS, 'demo-after-sign-out-everywhere.png'), fullPage: true });
    for (const portal of portals) {
      expect(emulator.getSession(portal.id)?.status).toBe('logged_out');
      expect(emulator.logoutRequests(portal.id)[0].headers['chargebee-request-origin-device']).toBe('Phone Chromium');
    }

    // The laptop's page now shows its portal session ended.
    await opened[0].reload();
    await expectText(opened[0].locator('#portal-sessions tbody'), 'logged_out');
  } finally {
    await laptop.close();
    await phone.close();
  }
});

async function expectText(locator: import('playwright-core').Locator, text: string): Promise<void> {
  await locator.first().waitFor({ timeout: 10000 });
  expect(await locator.first().innerText()).toContain(text);
}
