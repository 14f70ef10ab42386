import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import packageJson from '../package.json';

const root = path.resolve(__dirname, '..');

describe('the published package', () => {
  let outDir: string;
  beforeAll(() => {
    outDir = mkdtempSync(path.join(root, '.build-test-')); // inside the repo, so the build resolves node_modules
    execFileSync(
      process.execPath,
      [require.resolve('typescript/bin/tsc'), '-p', path.join(root, 'tsconfig.build.json'), '--outDir', outDir],
      { cwd: root },
    );
  }, 60_000);
  afterAll(() => rmSync(outDir, { recursive: true, force: true }));

  it('builds JavaScript and .d.ts files for every entry point of the exports map', () => {
    for (const entry of ['.', './testing', './redis'] as const) {
      const target = (packageJson.exports as unknown as Record<string, { types: string; default: string }>)[entry];
      for (const file of [target.types, target.default]) {
        expect(existsSync(path.join(outDir, path.relative('./dist', file)))).toBe(true);
      }
    }
  });

  it('loads the built main entry and exposes the middleware factory and client', () => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const built = require(path.join(outDir, 'index.js'));
    expect(typeof built.chargebeePortalLogout).toBe('function');
    expect(typeof built.ChargebeeClient).toBe('function');
  });

  it('builds the emulator CLI as an executable bin that prints its usage', () => {
    const bin = (packageJson as unknown as { bin: Record<string, string> }).bin['chargebee-portal-emulator'];
    expect(bin).toBe('dist/testing/cli.js');
    const built = path.join(outDir, path.relative('dist', bin));
    expect(readFileSync(built, 'utf8').startsWith('#!/usr/bin/env node\n')).toBe(true);
    expect(execFileSync(process.execPath, [built, '--help'], { encoding: 'utf8' })).toMatch(
      /^usage: chargebee-portal-emulator .*--rate-limit N/s,
    );
  });

  it('exports the middleware, the client, its errors, the deferred store, the registry and the ID hash, and nothing else', () => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const built = require(path.join(outDir, 'index.js')) as Record<string, unknown>;
    expect(Object.keys(built).sort()).toEqual([
      'ChargebeeApiError',
      'ChargebeeCircuitOpenError',
      'ChargebeeClient',
      'ChargebeeError',
      'ChargebeeNetworkError',
      'ChargebeeResponseTooLargeError',
      'ChargebeeTimeoutError',
      'MemoryDeferredLogoutStore',
      'MemoryPortalSessionRegistry',
      'PortalLogoutError',
      'PortalSessionRegistryError',
      'chargebeePortalLogout',
      'hashPortalSessionId',
    ]);
  });

  it('declares @opentelemetry/api as an optional peer dependency', () => {
    expect(packageJson.peerDependencies['@opentelemetry/api']).toBe('^1.3.0');
    expect(packageJson.peerDependenciesMeta['@opentelemetry/api']).toEqual({ optional: true });
  });

  it('has public types that compile without @opentelemetry/api installed (no .d.ts reachable from an entry imports it)', () => {
    const seen = new Set<string>();
    const visit = (file: string) => {
      if (seen.has(file)) return;
      seen.add(file);
      const text = readFileSync(file, 'utf8');
      expect(text).not.toMatch(/from '@opentelemetry\/api'|import\('@opentelemetry\/api'\)/);
      for (const [, spec] of text.matchAll(/(?:from|import\()\s*'(\.{1,2}\/[^']+)'/g))
        for (const candidate of [`${spec}.d.ts`, `${spec}/index.d.ts`]) {
          const target = path.join(path.dirname(file), candidate);
          if (existsSync(target)) visit(target);
        }
    };
    visit(path.join(outDir, 'index.d.ts'));
    visit(path.join(outDir, 'testing/index.d.ts'));
    expect(seen.size).toBeGreaterThan(10);
    expect([...seen].some((f) => f.endsWith('observability/stats.d.ts'))).toBe(true);
  });

  it('declares express as a peer dependency for Express 4 and 5', () => {
    expect(packageJson.peerDependencies.express).toBe('^4.17.0 || ^5.0.0');
  });

  it('loads the built redis entry without the redis package: it is an optional peer dependency', () => {
    expect(packageJson.peerDependenciesMeta.redis.optional).toBe(true);
    const script = `
      const Module = require('node:module');
      const load = Module._load;
      Module._load = function (request, ...rest) {
        if (request === 'redis' || request.startsWith('@redis/')) throw new Error('redis is not installed');
        return load.call(this, request, ...rest);
      };
      const built = require(${JSON.stringify(path.join(outDir, 'redis', 'index.js'))});
      process.stdout.write(typeof built.RedisDeferredLogoutStore);
    `;
    expect(execFileSync(process.execPath, ['-e', script], { cwd: root }).toString()).toBe('function');
  });
});
