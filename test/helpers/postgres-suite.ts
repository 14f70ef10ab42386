import { Pool } from 'pg';
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
