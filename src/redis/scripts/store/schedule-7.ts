import { defineScript } from '../../scripts-runner';
import { CLOCK, EXTEND, INDEXES, JOB } from './includes';

/**
 * Keeps a scheduled logout (`schedule`): due at its due time, never tried.
 * KEYS: the seven job keys (includes.ts).
 * ARGV: 1 keepMs, 2 the caller's now, 3 its clock skew estimate or '' (includes.ts callerNow), 4 ID,
 *       5..11 the job (includes.ts argJob), 12 most jobs kept (nine tenths of the bound).
 * It replaces a scheduled logout of the portal session not tried or handed over yet, and leaves any other
 * job of it alone (a deferral under way, or a scheduled logout being tried: the logout is in hand).
 * Returns { clock, 1 done or 0 full }.
 */
export const SCHEDULE = defineScript(
  'schedule',
  7,
  CLOCK,
  EXTEND,
  JOB,
  INDEXES,
  `
keepMs = tonumber(ARGV[1])
local id = ARGV[4]
local new, due = argJob(5, callerNow(ARGV[2], ARGV[3]))
local value = redis.call('HGET', KEYS[1], id)
local old = readJob(value)
if value then
  if redis.call('HEXISTS', KEYS[2], id) == 1 or (old and not pending(old)) then return { int(clock), 1 } end
elseif redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[12]) then
  return { int(clock), 0 }
end
keep(id, new, due, old)
finish()
return { int(clock), 1 }
`,
);
