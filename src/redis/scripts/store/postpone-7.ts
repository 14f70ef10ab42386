import { defineScript } from '../../scripts-runner';
import { CLOCK, EXTEND, INDEXES, JOB } from './includes';

/**
 * Activity (`postpone`): moves scheduled logouts later.
 * KEYS: the seven job keys (includes.ts).
 * ARGV: 1 keepMs, 2 the caller's now, 3 its clock skew estimate or '' (includes.ts callerNow), 4 the new
 *       due time (offset from the caller's now), 5... the portal-session IDs.
 * Each scheduled logout not tried or handed over yet goes to that time, never past its latest time (the
 * portal session's maximum age) and never earlier than it was.
 * Returns { clock, how many moved }.
 */
export const POSTPONE = defineScript(
  'postpone',
  7,
  CLOCK,
  EXTEND,
  JOB,
  INDEXES,
  `
keepMs = tonumber(ARGV[1])
local at = callerNow(ARGV[2], ARGV[3]) + tonumber(ARGV[4])
local moved = 0
for i = 5, #ARGV do
  local id = ARGV[i]
  local j = readJob(redis.call('HGET', KEYS[1], id))
  if j and pending(j) and redis.call('HEXISTS', KEYS[2], id) == 0 then
    local target = at
    if j.latest and j.latest < target then target = j.latest end
    local current = tonumber(redis.call('ZSCORE', lane(j), id))
    if current and target > current then
      redis.call('ZADD', lane(j), int(target), id)
      redis.call('ZADD', KEYS[5], int(target), id)
      touched[j.site] = true
      lifeUntil(target)
      moved = moved + 1
    end
  end
end
finish()
return { int(clock), moved }
`,
);
