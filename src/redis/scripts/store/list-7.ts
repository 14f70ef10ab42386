import { defineScript } from '../../scripts-runner';
import { CLOCK, JOB } from './includes';

/**
 * Up to ARGV[1] jobs, the longest waiting first, for the shutdown log.
 * KEYS: the seven job keys (includes.ts).
 * Returns { clock, id1, job1, due1 (its due time, or its lease's end while handed over), id2, ... }.
 */
export const LIST = defineScript(
  'list',
  7,
  CLOCK,
  JOB,
  `
local out = { int(clock) }
for _, id in ipairs(redis.call('ZRANGE', KEYS[5], 0, tonumber(ARGV[1]) - 1)) do
  local value = redis.call('HGET', KEYS[1], id)
  local j = readJob(value)
  if j then
    local due = redis.call('ZSCORE', lane(j), id) or redis.call('ZSCORE', KEYS[3], id)
    if due then
      out[#out + 1] = id
      out[#out + 1] = value
      out[#out + 1] = int(tonumber(due))
    end
  end
end
return out
`,
);
