// CommonJS app: these imports compile to `require` of both entry points; `import()` of both is checked
// to give the same objects, then one remember + logout round trip.
import assert from 'node:assert/strict';
import { chargebeePortalLogout, ChargebeeClient } from 'chargebee-portal-logout';
import { ChargebeeEmulator } from 'chargebee-portal-logout/testing';
import { sessionRoundTrip } from './session-app';

async function main(): Promise<void> {
  const imported = await import('chargebee-portal-logout');
  const importedTesting = await import('chargebee-portal-logout/testing');
  assert.equal(imported.chargebeePortalLogout, chargebeePortalLogout);
  assert.equal(imported.ChargebeeClient, ChargebeeClient);
  assert.equal(importedTesting.ChargebeeEmulator, ChargebeeEmulator);

  await sessionRoundTrip();
  console.log('cjs app: require and import of both entry points, remember + logout round trip: ok');
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
