import { defineScript } from '../../scripts-runner';
import { CLOCK, EXTEND, INDEXES, JOB } from './includes';

/**
 * Keeps a deferral (`add`): a new one, or a taker's put-back.
 * KEYS: the seven job keys (includes.ts).
 * ARGV: 1 keepMs, 2 the caller's now, 3 its clock skew estimate or '' (includes.ts callerNow), 4 ID,
 *       5..11 the job (includes.ts argJob), 12 the taker's lease ('' for a new deferral), 13 most jobs kept.
 * A put-back is kept only while its lease is still the job's; a renewal meanwhile carries over (its first
 * attempt and reason win). A new deferral is added when the portal session has no job (unless the store is
 * full), replaces a scheduled logout not tried yet, renews a job that a taker holds (its taker's giveUp then
 * leaves it due again) and otherwise keeps the waiting job, its maximum age counting from the newer first
 * attempt.
 * Returns { clock, 1 done (kept, renewed, or nothing to do) or 0 full }.
 */
export const ADD = defineScript(
  'add',
  7,
  CLOCK,
  EXTEND,
  JOB,
  INDEXES,
  `
keepMs = tonumber(ARGV[1])
local id, lease = ARGV[4], ARGV[12]
local new, due = argJob(5, callerNow(ARGV[2], ARGV[3]))
local value = redis.call('HGET', KEYS[1], id)
local old = readJob(value)
local held = redis.call('HGET', KEYS[2], id)

if lease ~= '' then
  local token, renewedAt, reason = readLease(held)
  if not value or token ~= lease then return { int(clock), 1 } end
  if renewedAt then
    new.first = math.max(new.first, renewedAt)
    new.reason = reason
  end
  redis.call('HDEL', KEYS[2], id)
  redis.call('ZREM', KEYS[3], id)
  keep(id, new, due, old)
  finish()
  return { int(clock), 1 }
end

if not value then
  if redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[13]) then return { int(clock), 0 } end
  keep(id, new, due, nil)
  finish()
  return { int(clock), 1 }
end

if held then
  local token, renewedAt = readLease(held)
  if renewedAt and renewedAt > new.first then new.first = renewedAt end
  redis.call('HSET', KEYS[2], id, token .. ' ' .. int(new.first) .. ' ' .. new.reason)
  return { int(clock), 1 }
end

if not old or pending(old) then
  keep(id, new, due, old)
  finish()
  return { int(clock), 1 }
end

if new.first > old.first then
  old.first = new.first
  redis.call('HSET', KEYS[1], id, jobValue(old))
  redis.call('ZADD', KEYS[5], int(old.first), id)
  lifeUntil(old.first)
  touched[old.site] = true
  finish()
end
return { int(clock), 1 }
`,
);
