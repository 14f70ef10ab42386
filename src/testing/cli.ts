/**
 * Runs the Chargebee emulator as its own process:
 *   tsx src/testing/cli.ts [--host H] [--port N] [--public-url URL] [--site NAME --key KEY [--key KEY2]]...
 * Prints one JSON line {"url","baseUrl","apiKey"} once listening; closes on SIGTERM or SIGINT.
 */
import { ChargebeeEmulator } from './emulator/emulator';
import type { EmulatorOptions, EmulatorSiteConfig } from './emulator/types';

const USAGE =
  'usage: cli.ts [--host H] [--port N] [--public-url URL] [--record-limit N] [--site NAME --key KEY [--key KEY]]...';

export function parseCliArgs(argv: string[]): EmulatorOptions {
  const options: EmulatorOptions = {};
  const sites: Record<string, EmulatorSiteConfig & { apiKey: string[] }> = {};
  let currentSite: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = argv[i + 1];
    if (value === undefined || value.startsWith('--')) throw new TypeError(`${flag} needs a value`);
    i++;
    switch (flag) {
      case '--host':
        options.host = value;
        break;
      case '--port':
      case '--record-limit': {
        const n = Number(value);
        if (!Number.isInteger(n) || n < 0)
          throw new TypeError(`${flag} must be a non-negative integer, got "${value}"`);
        if (flag === '--port') options.port = n;
        else options.recordLimit = n;
        break;
      }
      case '--public-url':
        options.publicUrl = value;
        break;
      case '--site':
        currentSite = value;
        sites[value] ??= { apiKey: [] };
        break;
      case '--key':
        currentSite ??= 'acme-test';
        (sites[currentSite] ??= { apiKey: [] }).apiKey.push(value);
        break;
      default:
        throw new TypeError(`unknown option ${flag}`);
    }
  }
  if (Object.keys(sites).length > 0) {
    for (const [name, site] of Object.entries(sites)) {
      if (site.apiKey.length === 0) throw new TypeError(`--site ${name} needs at least one --key`);
    }
    options.sites = sites;
  }
  return options;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  let options: EmulatorOptions;
  try {
    options = parseCliArgs(args);
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n${USAGE}\n`);
    process.exitCode = 2;
    return;
  }
  const emulator = await ChargebeeEmulator.start(options);
  const stop = (): void => {
    void emulator.close().then(() => process.exit(0));
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  process.stdout.write(
    `${JSON.stringify({ url: emulator.url, baseUrl: emulator.baseUrl(), apiKey: emulator.apiKey() })}\n`,
  );
}

if (require.main === module) {
  main().catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}
