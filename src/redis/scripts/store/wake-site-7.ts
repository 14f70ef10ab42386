import { defineScript } from '../../scripts-runner';
import { CLOCK, EXTEND, INDEXES, JOB } from './includes';

/**
 * Chargebee answers again for a site (`wakeSite`): its deferrals waiting out a backoff become due now,
 * earliest first. Scheduled logouts (another lane) and jobs handed over (in no lane) are left alone.
 * KEYS: the seven job keys (includes.ts).
 * ARGV: 1 site, 2 most jobs woken (-1: all).
 * Returns how many became due.
 */
export const WAKE_SITE = defineScript(
  'wake-site',
  7,
  CLOCK,
  EXTEND,
  JOB,
  INDEXES,
  `
local site = ARGV[1]
local count = tonumber(ARGV[2])
if count == 0 then return 0 end
local key = KEYS[6] .. ':' .. site
local ids = redis.call('ZRANGEBYSCORE', key, '(' .. int(clock), '+inf', 'LIMIT', 0, count)
for _, id in ipairs(ids) do redis.call('ZADD', key, int(clock), id) end
if #ids > 0 then indexSite(site) end
return #ids
`,
);
