// ES module app: `import` of both entry points (named imports, so Node must see the CommonJS exports),
// `require` of both through createRequire, then one remember + logout round trip.
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { chargebeePortalLogout, ChargebeeClient } from 'chargebee-portal-logout';
import { ChargebeeEmulator } from 'chargebee-portal-logout/testing';
import { sessionRoundTrip } from './session-app.js';

const require = createRequire(import.meta.url);
const required = require('chargebee-portal-logout') as typeof import('chargebee-portal-logout');
const requiredTesting = require('chargebee-portal-logout/testing') as typeof import('chargebee-portal-logout/testing');
assert.equal(required.chargebeePortalLogout, chargebeePortalLogout);
assert.equal(required.ChargebeeClient, ChargebeeClient);
assert.equal(requiredTesting.ChargebeeEmulator, ChargebeeEmulator);

await sessionRoundTrip();
console.log('esm app: import and require of both entry points, remember + logout round trip: ok');
