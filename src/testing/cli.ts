#!/usr/bin/env node
/**
 * Runs the Chargebee emulator as its own process (`npx chargebee-portal-emulator --port 4010`).
 * Prints one JSON line {"url","baseUrl","apiKey"} once listening; closes on SIGTERM or SIGINT.
 */
import { ChargebeeEmulator } from './emulator/emulator';
import { DEFAULT_SITES } from './emulator/options';
import type { EmulatorOptions, EmulatorRateLimit, EmulatorSiteConfig } from './emulator/types';

const USAGE = `usage: chargebee-portal-emulator [options]
  --host H                 address to listen on (default 127.0.0.1)
  --port N                 port (default 0: a free one)
  --public-url URL         base of the access URLs (default: the listening URL)
  --record-limit N         most API requests recorded (default 10000; 0 records none)
  --site NAME --key KEY    a site and its API key; repeat --key for more keys, --site for more sites
                           (default: site acme-test, key test_emulator_key)
  --rate-limit N           API requests each site accepts per window, then 429 (default: no limit)
  --rate-limit-window-ms M length of a rate-limit window (default 60000: N per minute)
Prints {"url","baseUrl","apiKey"} as one JSON line once listening; stops on SIGTERM or SIGINT.`;

function nonNegativeInteger(flag: string, value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n))
    throw new TypeError(`${flag} must be a non-negative integer, got "${value}"`);
  return n;
}

export function parseCliArgs(argv: string[]): EmulatorOptions {
  const options: EmulatorOptions = {};
  const sites: Record<string, EmulatorSiteConfig & { apiKey: string[] }> = {};
  let currentSite: string | undefined;
  let rateLimit: EmulatorRateLimit | undefined;
  let windowMs: number | undefined;
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
        options.port = nonNegativeInteger(flag, value);
        break;
      case '--record-limit':
        options.recordLimit = nonNegativeInteger(flag, value);
        break;
      case '--rate-limit':
        rateLimit = { requests: nonNegativeInteger(flag, value) };
        break;
      case '--rate-limit-window-ms':
        windowMs = nonNegativeInteger(flag, value);
        break;
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
  if (windowMs !== undefined && rateLimit === undefined)
    throw new TypeError('--rate-limit-window-ms needs --rate-limit');
  for (const [name, site] of Object.entries(sites)) {
    if (site.apiKey.length === 0) throw new TypeError(`--site ${name} needs at least one --key`);
  }
  if (rateLimit !== undefined) {
    if (windowMs !== undefined) rateLimit.windowMs = windowMs;
    const configured: Record<string, EmulatorSiteConfig> = Object.keys(sites).length > 0 ? sites : DEFAULT_SITES;
    options.sites = Object.fromEntries(
      Object.entries(configured).map(([name, site]) => [name, { ...site, rateLimit }]),
    );
  } else if (Object.keys(sites).length > 0) {
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
