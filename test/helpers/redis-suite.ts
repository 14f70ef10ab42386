import { createClient } from 'redis';
import { ChargebeeEmulator } from '../../src/testing';
import type { Instance } from './instances';
import { startRedisServer, type RedisServer } from './redis-server';

/**
 * A real redis-server, the emulator (site `acme-test` with `apiKey`) and a connected client for a test file;
 * a new key prefix per test (`{<stem><n>}:`, one Cluster slot), and the child processes a test started
 * (pushed to `running`) killed after it, the emulator reset.
 */
export function redisEmulatorSuite(apiKey: string, stem: string) {
  let count = 0;
  const suite = {
    redis: undefined as unknown as RedisServer,
    emulator: undefined as unknown as ChargebeeEmulator,
    client: undefined as unknown as ReturnType<typeof createClient>,
    prefix: '',
    running: [] as Instance[],
  };
  beforeAll(async () => {
    [suite.redis, suite.emulator] = await Promise.all([
      startRedisServer(),
      ChargebeeEmulator.start({ sites: { 'acme-test': { apiKey } } }),
    ]);
    suite.client = createClient({ url: suite.redis.url });
    suite.client.on('error', () => undefined);
    await suite.client.connect();
  });
  beforeEach(() => {
    suite.prefix = `{${stem}${++count}}:`;
  });
  afterEach(async () => {
    await Promise.all(suite.running.splice(0).map((i) => i.kill()));
    suite.emulator.reset();
  });
  afterAll(async () => {
    await suite.client.close();
    await Promise.all([suite.redis.close(), suite.emulator.close()]);
  });
  return suite;
}
