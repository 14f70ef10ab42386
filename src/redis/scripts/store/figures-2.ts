import { defineScript } from '../../scripts-runner';
import { CLOCK } from './includes';

/**
 * The figures of stats() and the health check, from the indexes (no job is read).
 * KEYS: 1 jobs, 2 since (includes.ts).
 * Returns { clock, jobs kept, since when the oldest has waited (Redis's clock) or false }.
 */
export const FIGURES = defineScript(
  'figures',
  2,
  CLOCK,
  `
local oldest = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
local since = false
if oldest[2] then since = int(tonumber(oldest[2])) end
return { int(clock), redis.call('HLEN', KEYS[1]), since }
`,
);
