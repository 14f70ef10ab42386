// A jest reporter (next to 'default' in jest.config.ts): at the end of the run, a line per missing server
// saying how many tests were skipped for want of it and how to get it. The suites (test/helpers/servers.ts,
// in jest's workers) leave a line in a directory made here for each block they skip; this counts the
// skipped tests of those blocks in the results. Plain JavaScript: jest loads reporters without transforming
// them.
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import process from 'node:process';

// The name test/helpers/servers.ts reads (SKIPS_DIR_VARIABLE).
const SKIPS_DIR_VARIABLE = 'CBPL_JEST_SERVER_SKIPS';

export default class ServersReporter {
  constructor() {
    // Made before jest starts its workers, which inherit the variable.
    this.dir = mkdtempSync(join(tmpdir(), 'cbpl-jest-skips-'));
    process.env[SKIPS_DIR_VARIABLE] = this.dir;
    this.lines = [];
    // Jest's summary ("Tests: ...") comes from a reporter it always adds after the configured ones: the line
    // is written when jest exits, after it (synchronously, so that it is not lost at exit).
    process.once('exit', () => {
      rmSync(this.dir, { recursive: true, force: true });
      if (this.lines.length > 0) writeSync(process.stderr.fd, this.lines.join('\n') + '\n');
    });
  }

  onRunComplete(_contexts, results) {
    const skips = [];
    for (const file of readdirSync(this.dir)) {
      const path = join(this.dir, file);
      for (const line of readFileSync(path, 'utf8').split('\n')) {
        if (line) skips.push(JSON.parse(line));
      }
      rmSync(path); // the next run of a watch
    }
    /** @type {Map<string, { reason: string, tests: number, suites: Set<string> }>} */
    const byServer = new Map();
    for (const suite of results.testResults) {
      for (const test of suite.testResults) {
        if (test.status !== 'pending') continue;
        const skip = skips.find(
          (s) => s.testPath === suite.testFilePath && (s.kind === 'file' || test.ancestorTitles.includes(s.title)),
        );
        if (!skip) continue;
        const entry = byServer.get(skip.server) ?? { reason: skip.reason, tests: 0, suites: new Set() };
        entry.tests += 1;
        entry.suites.add(suite.testFilePath);
        byServer.set(skip.server, entry);
      }
    }
    const plural = (n, word) => `${n} ${word}${n === 1 ? '' : 's'}`;
    this.lines = [...byServer].map(
      ([server, { reason, tests, suites }]) =>
        `skipped ${plural(tests, 'test')} in ${plural(suites.size, 'suite')} that need${suites.size === 1 ? 's' : ''} ${server}, ${reason}`,
    );
  }
}
