/**
 * The Redis store and registry on a real Redis Cluster: three redis-server masters on free loopback ports,
 * joined by `redis-cli --cluster create` (test/helpers/redis-cluster.ts), reached through node-redis
 * `createCluster`. The shared contracts run against it, each test on a prefix of its own (a {hash tag}, so
 * that the tests' keys land on different nodes); then what is Cluster's own: a prefix without a hash tag is
 * refused at setup, and every key of a store, the per-site lanes included, is in one slot.
 */
import { createCluster } from 'redis';
import { createCluster as createCluster5 } from 'redis5';
import { RedisDeferredLogoutStore, RedisPortalSessionRegistry, type RedisClientLike } from '../src/redis';
import { describeStoreContract, job } from './contracts/deferred-store';
import { describeRegistryContract } from './contracts/registry';
import { captureLogs } from './helpers/log-capture';
import { startRedisCluster, type RedisCluster } from './helpers/redis-cluster';
import { describeWithServer } from './helpers/servers';

const describeCluster = describeWithServer('redis-cluster');

jest.setTimeout(30_000);

describeCluster('on a Redis Cluster of three nodes (node-redis 6 createCluster)', () => {
  let cluster: RedisCluster;
  let client: ReturnType<typeof createCluster>;
  let count = 0;

  beforeAll(async () => {
    cluster = await startRedisCluster();
    client = createCluster({ rootNodes: cluster.rootNodes });
    client.on('error', () => undefined);
    await client.connect();
  });
  afterAll(async () => {
    await client.close();
    await cluster.close();
  });

  describeStoreContract('RedisDeferredLogoutStore on Redis Cluster', {
    shared: true,
    make: ({ maxQueued, leaseMs }) => {
      const store = new RedisDeferredLogoutStore(client, { prefix: `{cs${++count}}:`, maxQueued, leaseMs });
      store.attach({ maxAgeMs: 3_600_000, log: captureLogs().logger });
      return store;
    },
  });

  describeRegistryContract('RedisPortalSessionRegistry on Redis Cluster', {
    make: (bounds) => new RedisPortalSessionRegistry(client, { prefix: `{cr${++count}}:`, ...bounds }),
  });

  it('spreads the prefixes over the nodes: the tests above ran on more than one', async () => {
    const slots = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        client.sendCommand(`{cs${i + 1}}:jobs`, true, ['CLUSTER', 'KEYSLOT', `{cs${i + 1}}:jobs`]),
      ),
    );
    const masters = new Set(slots.map((slot) => client.getSlotMaster(Number(slot)).port));
    expect(masters.size).toBeGreaterThan(1);
  });

  it('keeps every key of a store in the slot of its hash tag, the per-site lanes included', async () => {
    const logs = captureLogs();
    const store = new RedisDeferredLogoutStore(client, { prefix: '{cluster-slot}:deferred:' });
    store.attach({ maxAgeMs: 60_000, log: logs.logger });
    await store.add(job('p_slot_a', { site: 'a1a1' }));
    await store.add(job('p_slot_b', { site: 'b2b2', notBefore: Date.now() + 60_000 }));
    await store.schedule(
      job('p_slot_s', { site: 'c3c3', attempts: 0, reason: 'idle', notBefore: Date.now() + 60_000 }),
    );
    await store.takeDue(10, { perMinute: 60, burst: 1 });
    await store.pauseSite('b2b2', Date.now() + 1000);
    const node = await client.getNodeClientForKey('{cluster-slot}');
    const keys = (await node.keys('{cluster-slot}:*')).sort();
    // p_slot_a is handed over: its site's lane is empty, and gone.
    expect(keys).toEqual(
      ['due:b2b2', 'jobs', 'leased', 'leases', 'rate', 'scheduled:c3c3', 'since', 'sites'].map(
        (k) => `{cluster-slot}:deferred:${k}`,
      ),
    );
    expect(await store.size()).toBe(3);
  });

  it('refuses a prefix without a {hash tag} on a Cluster client, with a TypeError that says why', () => {
    for (const make of [
      () => new RedisDeferredLogoutStore(client, { prefix: 'myapp:deferred:' }),
      () => new RedisPortalSessionRegistry(client, { prefix: 'myapp:registry:' }),
      () => new RedisDeferredLogoutStore(createCluster5({ rootNodes: cluster.rootNodes }), { prefix: 'a{}b:' }),
    ])
      expect(make).toThrow(
        expect.objectContaining({
          name: 'TypeError',
          message: expect.stringMatching(/has no \{hash tag\}.*Cluster.*one slot.*e\.g\. prefix: '\{myapp\}:/),
        }),
      );
    // The defaults have one; a client key prefix (node-redis 6.1+) with one counts too.
    expect(new RedisDeferredLogoutStore(client).prefix).toBe('{chargebee-portal-logout}:deferred:');
    expect(new RedisPortalSessionRegistry(client).prefix).toBe('{chargebee-portal-logout}:registry:');
    const tagged = createCluster({ rootNodes: cluster.rootNodes, keyPrefix: '{app}:' } as Parameters<
      typeof createCluster
    >[0]) as unknown as RedisClientLike;
    expect(new RedisDeferredLogoutStore(tagged, { prefix: 'deferred:' }).prefix).toBe('deferred:');
  });
});
