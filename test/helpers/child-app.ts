import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

/**
 * Runs a fixture app (a TypeScript file, through tsx) in a process of its own, with `config` as JSON in the
 * environment variable `envName` (plus `env`); resolves once it printed its `{"url"}` line. `stop()` sends SIGTERM and
 * waits for the exit.
 */
export async function startChildApp(
  fixture: string,
  envName: string,
  config: unknown,
  env: Record<string, string> = {},
): Promise<{ url: string; child: ChildProcessWithoutNullStreams; stop: () => Promise<void> }> {
  // tsx as a loader of this node (its CLI would start a second node process).
  const child = spawn(process.execPath, ['--import', 'tsx', fixture], {
    cwd: join(__dirname, '../..'),
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env, [envName]: JSON.stringify(config) },
  });
  let stderr = '';
  child.stderr.on('data', (chunk) => (stderr += chunk));
  const exited = once(child, 'exit').then(() => Promise.reject(new Error(`the example app exited: ${stderr}`)));
  const [line] = (await Promise.race([once(createInterface({ input: child.stdout }), 'line'), exited])) as [string];
  return {
    url: (JSON.parse(line) as { url: string }).url,
    child,
    stop: async () => {
      if (child.exitCode !== null) return;
      child.kill('SIGTERM');
      await once(child, 'exit');
    },
  };
}
