import { availableParallelism } from 'node:os';
import type { Config } from 'jest';

const config: Config = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  // `npm test` runs every suite under --unhandled-rejections=strict: one unhandled rejection fails the run.
  testPathIgnorePatterns: ['/node_modules/', '/test/browser/'],
  // Some tests start child processes (the demo server, the OIDC example, the emulator CLI); on a busy
  // 2-core machine that can pass jest's 5 s default without anything being wrong.
  testTimeout: 20_000,
  // Most suites wait on sockets, servers and timers more than they compute: three workers on two cores.
  // (A percentage above 100 % is read by jest as a plain number of workers.)
  maxWorkers: Math.max(2, Math.round(availableParallelism() * 1.5)),
  // The child processes' TypeScript made JavaScript once per run (test/helpers/compile-fixtures.ts).
  globalSetup: '<rootDir>/test/helpers/compile-fixtures.ts',
  // One line at the end on the suites skipped for want of a server (test/helpers/servers.ts).
  reporters: ['default', '<rootDir>/test/helpers/servers-reporter.mjs'],
  transform: {
    '^.+\\.ts$': 'ts-jest',
  },
};

export default config;
