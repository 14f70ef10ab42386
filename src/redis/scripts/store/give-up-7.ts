import { defineScript } from '../../scripts-runner';
import { CLOCK, EXTEND, INDEXES, JOB } from './includes';

/**
 * The taker gives its job up without an answer (`giveUp`: the job reached its maximum age).
 * KEYS: the seven job keys (includes.ts).
 * ARGV: 1 keepMs, 2 ID, 3 the taker's lease.
 * The job goes, unless a new deferral renewed it meanwhile: then it is due again now, its first attempt and
 * reason the renewal's. Nothing happens when the lease is no longer the job's.
 * Returns 0 nothing done, 1 gone, 2 due again.
 */
export const GIVE_UP = defineScript(
  'give-up',
  7,
  CLOCK,
  EXTEND,
  JOB,
  INDEXES,
  `
keepMs = tonumber(ARGV[1])
local id = ARGV[2]
local token, renewedAt, reason = readLease(redis.call('HGET', KEYS[2], id))
if not token or token ~= ARGV[3] then return 0 end
local j = readJob(redis.call('HGET', KEYS[1], id))
if not renewedAt or not j then
  forget(id, j)
  finish()
  return 1
end
redis.call('HDEL', KEYS[2], id)
redis.call('ZREM', KEYS[3], id)
j.first = renewedAt
j.reason = reason
keep(id, j, clock, nil)
finish()
return 2
`,
);
