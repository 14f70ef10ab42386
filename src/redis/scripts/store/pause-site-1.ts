import { defineScript } from '../../scripts-runner';
import { CLOCK, EXTEND } from './includes';

/**
 * Chargebee answered 429 with Retry-After (`pauseSite`): no job of the site is handed over until then, by
 * any instance. Never shortens a pause.
 * KEYS: 1 rate (hash, includes.ts).
 * ARGV: 1 site, 2 the caller's now, 3 its clock skew estimate or '' (includes.ts callerNow), 4 the pause's
 *       end (offset from the caller's now).
 * Returns { clock, 1 }.
 */
export const PAUSE_SITE = defineScript(
  'pause-site',
  1,
  CLOCK,
  EXTEND,
  `
local field = ARGV[1] .. ':p'
local untilMs = callerNow(ARGV[2], ARGV[3]) + tonumber(ARGV[4])
if untilMs > (tonumber(redis.call('HGET', KEYS[1], field)) or 0) then
  redis.call('HSET', KEYS[1], field, int(untilMs))
end
extend(KEYS[1], math.max(untilMs + 60000, clock + 3600000))
return { int(clock), 1 }
`,
);
