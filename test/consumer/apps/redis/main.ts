// An app with several instances: the deferred-logout queue and the registry of open portal sessions on Redis
// through the `/redis` entry point,
// typed against the app's own node-redis client (RESP3 and RESP2). No Redis is needed: nothing connects.
import assert from 'node:assert/strict';
import { chargebeePortalLogout, type DeferredLogoutStore, type PortalSessionRegistry } from 'chargebee-portal-logout';
import { RedisDeferredLogoutStore, RedisPortalSessionRegistry } from 'chargebee-portal-logout/redis';
import { createClient } from 'redis';

async function main(): Promise<void> {
  const store: DeferredLogoutStore = new RedisDeferredLogoutStore(createClient({ url: 'redis://127.0.0.1:6379' }), {
    prefix: '{app}:deferred:',
  });
  const resp2 = new RedisDeferredLogoutStore(createClient({ RESP: 2 }));
  assert.equal(store.durable, true);
  assert.equal(resp2.leaseMs, 30_000);
  const registry: PortalSessionRegistry = new RedisPortalSessionRegistry(createClient({ RESP: 2 }), {
    maxPerCustomer: 5,
  });
  const portalLogout = chargebeePortalLogout({
    site: 'acme-test',
    apiKey: 'test_consumer',
    deferred: { store },
    registry,
    everywhere: true,
    customerId: () => 'cus_consumer',
  });
  assert.equal(typeof portalLogout, 'function');
  assert.equal(typeof portalLogout.logoutCustomer, 'function');
  const imported = await import('chargebee-portal-logout/redis');
  assert.equal(imported.RedisDeferredLogoutStore, RedisDeferredLogoutStore);
  assert.equal(imported.RedisPortalSessionRegistry, RedisPortalSessionRegistry);
  await portalLogout.close({ timeoutMs: 0 });
  console.log('redis app: the /redis entry point with a node-redis client, require and import: ok');
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
