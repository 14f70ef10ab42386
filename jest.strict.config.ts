import type { Config } from 'jest';
import base from './jest.config';

/**
 * The suites of hostile upstreams and misbehaving host functions (test/hostile/), run by `npm test` in a
 * jest process of their own started with NODE_OPTIONS=--unhandled-rejections=strict: there, one unhandled
 * rejection from the package ends the run, as it would end an app's process.
 */
const config: Config = {
  ...base,
  testPathIgnorePatterns: ['/node_modules/'],
  testMatch: ['<rootDir>/test/hostile/**/*.test.ts'],
};

export default config;
