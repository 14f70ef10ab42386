import { script } from './scripts-runner';

/**
 * The Lua scripts of the Redis registry of open portal sessions. Each one is a single atomic step across
 * every instance and names only the keys it is given (KEYS[]), so that a client's key prefix applies and,
 * with a hash tag in the prefix, every key lives in one Redis Cluster slot. No key holds a customer ID:
 *   KEYS[1] `entries`     hash: portal-session ID -> "<rememberedAt ms> <customer ID> <entity ID or nothing>"
 *   KEYS[2] `by-customer` sorted set, every score 0, member "<customer ID> <portal-session ID>": one
 *                         customer's entries are a lexicographic range (IDs hold no spaces)
 *   KEYS[3] `by-time`     sorted set: portal-session ID by rememberedAt, for expiry and the total bound
 * Times are the app's clock (ms since the epoch), given as arguments.
 */

const HELPERS = `
local function forget(id)
  local record = redis.call('HGET', KEYS[1], id)
  if record then
    local customer = string.match(record, '^%S+ (%S+)')
    if customer then redis.call('ZREM', KEYS[2], customer .. ' ' .. id) end
    redis.call('HDEL', KEYS[1], id)
  end
  redis.call('ZREM', KEYS[3], id)
end
local function customerMembers(customer)
  return redis.call('ZRANGEBYLEX', KEYS[2], '[' .. customer .. ' ', '(' .. customer .. '!')
end
`;

/**
 * Records a portal session. ARGV: id, customer, entity ('' for none), rememberedAt, now, ttlMs,
 * maxPerCustomer, maxEntries, most expired entries swept. Returns the IDs dropped to keep the bounds.
 */
export const ADD = script(`${HELPERS}
local id, customer, entity = ARGV[1], ARGV[2], ARGV[3]
local at, now, ttl = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local maxPerCustomer, maxEntries = tonumber(ARGV[7]), tonumber(ARGV[8])
for _, old in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now - ttl, 'LIMIT', 0, tonumber(ARGV[9]))) do
  forget(old)
end
forget(id)
redis.call('HSET', KEYS[1], id, ARGV[4] .. ' ' .. customer .. ' ' .. entity)
redis.call('ZADD', KEYS[2], 0, customer .. ' ' .. id)
redis.call('ZADD', KEYS[3], at, id)
local dropped = {}
local mine = customerMembers(customer)
if #mine > maxPerCustomer then
  local rows = {}
  for _, member in ipairs(mine) do
    local pid = string.sub(member, #customer + 2)
    table.insert(rows, { pid, tonumber(redis.call('ZSCORE', KEYS[3], pid)) or 0 })
  end
  table.sort(rows, function(a, b) return a[2] < b[2] end)
  for i = 1, #mine - maxPerCustomer do
    forget(rows[i][1])
    table.insert(dropped, rows[i][1])
  end
end
local excess = redis.call('ZCARD', KEYS[3]) - maxEntries
if excess > 0 then
  for _, old in ipairs(redis.call('ZRANGE', KEYS[3], 0, excess - 1)) do
    forget(old)
    table.insert(dropped, old)
  end
end
-- Everything goes when the newest entry expires: an idle registry leaves nothing behind.
local keep = at + ttl - now
for i = 1, 3 do
  local left = redis.call('PTTL', KEYS[i])
  if left == -1 or (left >= 0 and left < keep) then redis.call('PEXPIRE', KEYS[i], math.max(1, keep)) end
end
return dropped
`);

/**
 * A customer's portal sessions, oldest first; expired ones are forgotten on the way. ARGV: customer, now,
 * ttlMs. Returns { id1, rememberedAt1, entity1, id2, ... } (entity '' for none).
 */
export const LIST = script(`${HELPERS}
local customer = ARGV[1]
local cutoff = tonumber(ARGV[2]) - tonumber(ARGV[3])
local rows = {}
for _, member in ipairs(customerMembers(customer)) do
  local id = string.sub(member, #customer + 2)
  local record = redis.call('HGET', KEYS[1], id)
  local at, owner, entity
  if record then at, owner, entity = string.match(record, '^(%d+) (%S+) ?(%S*)$') end
  if not at or owner ~= customer then
    redis.call('ZREM', KEYS[2], member)
  elseif tonumber(at) <= cutoff then
    forget(id)
  else
    table.insert(rows, { id, at, entity })
  end
end
table.sort(rows, function(a, b) return tonumber(a[2]) < tonumber(b[2]) end)
local out = {}
for _, row in ipairs(rows) do
  table.insert(out, row[1])
  table.insert(out, row[2])
  table.insert(out, row[3])
end
return out
`);

/** Forgets portal sessions by ID, whatever their customer. ARGV: the IDs. Returns how many were kept. */
export const REMOVE = script(`${HELPERS}
local removed = 0
for _, id in ipairs(ARGV) do
  if redis.call('HEXISTS', KEYS[1], id) == 1 then removed = removed + 1 end
  forget(id)
end
return removed
`);

/** Portal sessions kept, all customers together. */
export const SIZE = script(`return redis.call('HLEN', KEYS[1])`);
