import { availableParallelism } from 'node:os';
import type { Config } from 'jest';

const config: Config = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  // test/hostile/ runs apart, under --unhandled-rejections=strict (jest.strict.config.ts).
  testPathIgnorePatterns: ['/node_modules/', '/test/browser/', '/test/hostile/'],
  // Some tests start child processes (the demo server, the OIDC example, the emulator CLI); on a busy
  // 2-core machine that can pass jest's 5 s default without anything being wrong.
  testTimeout: 20_000,
  // Most suites wait on sockets, servers and timers more than they compute: three workers on two cores.
  // (A percentage above 100 % is read by jest as a plain number of workers.)
  maxWorkers: Math.max(2, Math.round(availableParallelism() * 1.5)),
  // One line at the end on the suites skipped for want of a server (test/helpers/servers.ts).
  reporters: ['default', '<rootDir>/test/helpers/servers-reporter.mjs'],
  transform: {
    '^.+\\.ts$': 'ts-jest',
  },
};

export default config;
