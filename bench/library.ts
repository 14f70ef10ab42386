/**
 * The library under test. bench/run.ts compiles src/ with tsc first and names the output directory in
 * BENCH_LIBRARY_DIR: that JavaScript is what users install. Without it (a bench file run on its own)
 * the TypeScript source is used through tsx, whose esbuild transform adds a `__name()` call to every
 * function expression; that makes per-call figures of our code worse than the package's, and would be
 * unfair to it next to the routes that use plain-JavaScript libraries.
 */
import path from 'node:path';
import type * as Library from '../src';
import type * as Testing from '../src/testing';
import type * as Client from '../src/chargebee/client';
import type * as CookieSignature from '../src/remembered/cookie-signature';
import type * as Retry from '../src/reliability/retry';
import type * as Middleware from '../src/middleware/middleware';

const dir = process.env.BENCH_LIBRARY_DIR;

/* eslint-disable @typescript-eslint/no-require-imports */
export const library: typeof Library = require(dir ? path.join(dir, 'index.js') : '../src');
export const testing: typeof Testing = require(dir ? path.join(dir, 'testing', 'index.js') : '../src/testing');
/** Modules the package does not export, for the bench's own set-up (defaults, the session cookie). */
export const internals: {
  client: typeof Client;
  cookieSignature: typeof CookieSignature;
  retry: typeof Retry;
  /** `createPortalLogout(options, tuning)`: the middleware with the package's fixed figures scaled. */
  middleware: typeof Middleware;
} = {
  client: require(dir ? path.join(dir, 'chargebee', 'client.js') : '../src/chargebee/client'),
  cookieSignature: require(
    dir ? path.join(dir, 'remembered', 'cookie-signature.js') : '../src/remembered/cookie-signature',
  ),
  retry: require(dir ? path.join(dir, 'reliability', 'retry.js') : '../src/reliability/retry'),
  middleware: require(dir ? path.join(dir, 'middleware', 'middleware.js') : '../src/middleware/middleware'),
};
/* eslint-enable @typescript-eslint/no-require-imports */

/** Which build the figures are of, for the report. */
export const libraryKind = dir ? 'compiled (tsc)' : 'TypeScript source through tsx';
