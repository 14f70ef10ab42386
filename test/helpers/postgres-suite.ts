import { Pool } from 'pg';
import type { PostgresPoolLike } from '../../src/postgres';
import { startPostgresServer, type PostgresServer } from './postgres-server';

/**
 * The PostgreSQL of a test file: started before its tests, with a pool of `max` clients on it (pg's
 * defaults otherwise: a connection to a frozen server waits for ever, and the store's own deadlines bound
 * its calls), both stopped after them. `started` receives them for the file's own variables.
 */
export function usePostgres(started: (postgres: { server: PostgresServer; pool: Pool }) => void, max = 10): void {
  let server: PostgresServer | undefined;
  let pool: Pool | undefined;
  beforeAll(async () => {
    server = await startPostgresServer();
    pool = new Pool({ connectionString: server.url, max });
    pool.on('error', () => undefined);
    started({ server, pool });
  });
  afterAll(async () => {
    await pool?.end();
    await server?.close();
  });
}

/**
 * `pool` as the stores see it, each client it hands out watched: `onConnect` at each check-out, `onQuery`
 * with each statement's text. Everything else, the `'error'` listeners included, goes straight to the pool's
 * own client, so that the pool's bookkeeping of its listeners stays its own.
 */
export function watchedPool(
  pool: PostgresPoolLike,
  onQuery: (text: string) => void,
  onConnect: () => void = () => undefined,
): PostgresPoolLike {
  return {
    connect: async () => {
      onConnect();
      const client = await pool.connect();
      return {
        query: (text, values) => (onQuery(text), client.query(text, values)),
        release: (error) => client.release(error),
        on: (event, listener) => client.on(event, listener),
        removeListener: (event, listener) => client.removeListener(event, listener),
      };
    },
  };
}
