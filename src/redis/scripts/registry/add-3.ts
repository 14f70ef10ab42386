import { defineScript } from '../../scripts-runner';
import { REGISTRY } from './includes';

/**
 * Records a portal session under its site and customer, replacing an earlier entry of it on that site.
 * KEYS: entries, by-customer, by-time (includes.ts).
 * ARGV: 1 site, 2 portal-session ID, 3 customer, 4 entity ('' for none), 5 rememberedAt, 6 now, 7 ttlMs,
 *       8 maxPerCustomer, 9 maxEntries, 10 most expired entries swept.
 * Expired entries are swept first (the oldest, a few); the customer's oldest beyond maxPerCustomer, then the
 * oldest of all beyond maxEntries, are dropped. Every key expires when the newest entry does.
 * Returns the IDs dropped to keep the bounds, oldest first.
 */
export const REGISTRY_ADD = defineScript(
  'registry-add',
  3,
  REGISTRY,
  `
local site, id, customer, entity = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local at, now, ttl = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local maxPerCustomer, maxEntries = tonumber(ARGV[8]), tonumber(ARGV[9])
for _, old in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now - ttl, 'LIMIT', 0, tonumber(ARGV[10]))) do
  forget(old)
end
local key = site .. ' ' .. id
forget(key)
redis.call('HSET', KEYS[1], key, ARGV[5] .. ' ' .. customer .. ' ' .. entity)
redis.call('ZADD', KEYS[2], 0, site .. ' ' .. customer .. ' ' .. id)
redis.call('ZADD', KEYS[3], ARGV[5], key)
local dropped = {}
local mine = customerMembers(site, customer)
if #mine > maxPerCustomer then
  local rows = {}
  local skip = #site + #customer + 2
  for _, member in ipairs(mine) do
    local k = site .. ' ' .. string.sub(member, skip + 1)
    table.insert(rows, { k, tonumber(redis.call('ZSCORE', KEYS[3], k)) or 0 })
  end
  table.sort(rows, function(a, b)
    if a[2] ~= b[2] then return a[2] < b[2] end
    return a[1] < b[1]
  end)
  for i = 1, #mine - maxPerCustomer do
    forget(rows[i][1])
    table.insert(dropped, idOf(rows[i][1]))
  end
end
local excess = redis.call('ZCARD', KEYS[3]) - maxEntries
if excess > 0 then
  for _, old in ipairs(redis.call('ZRANGE', KEYS[3], 0, excess - 1)) do
    forget(old)
    table.insert(dropped, idOf(old))
  end
end
-- Everything goes when the newest entry expires: an idle registry leaves nothing behind.
local keep = at + ttl - now
for i = 1, 3 do
  local left = redis.call('PTTL', KEYS[i])
  if left == -1 or (left >= 0 and left < keep) then redis.call('PEXPIRE', KEYS[i], math.max(1, keep)) end
end
return dropped
`,
);
