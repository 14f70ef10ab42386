import type { Config } from 'jest';

/** `npm run test:browser`: the real-browser test, apart from `npm test` (it needs Chromium at /usr/bin/chromium). */
const config: Config = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test/browser'],
  testMatch: ['**/*.browser.test.ts'],
  testTimeout: 60000,
  transform: {
    '^.+\\.ts$': 'ts-jest',
  },
};

export default config;
