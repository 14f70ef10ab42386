/**
 * Lua shared by the registry's scripts. Every registry script takes the same three keys; none names a
 * customer ID (members and values may hold them):
 *   KEYS[1] entries     hash: "<site> <portal-session ID>" -> "<rememberedAt> <customer ID> <entity ID or nothing>"
 *   KEYS[2] by-customer sorted set, every score 0, member "<site> <customer ID> <portal-session ID>": the
 *                       entries of one customer of one site are a lexicographic range (no part holds a space)
 *   KEYS[3] by-time     sorted set: "<site> <portal-session ID>" by rememberedAt, for expiry and the bounds
 * A site's portal-session IDs and customer IDs are its own: another site's same IDs are other entries.
 * Times are the calling instance's (ms since the epoch, whole), given as arguments: an entry is kept for
 * days, against which a skew of seconds between instances is nothing.
 */
export const REGISTRY = `
local function forget(key)
  local record = redis.call('HGET', KEYS[1], key)
  if record then
    local site, id = string.match(key, '^(%S+) (%S+)$')
    local customer = string.match(record, '^%S+ (%S+)')
    if site and customer then redis.call('ZREM', KEYS[2], site .. ' ' .. customer .. ' ' .. id) end
    redis.call('HDEL', KEYS[1], key)
  end
  redis.call('ZREM', KEYS[3], key)
end
local function customerMembers(site, customer)
  local start = site .. ' ' .. customer .. ' '
  return redis.call('ZRANGEBYLEX', KEYS[2], '[' .. start, '(' .. site .. ' ' .. customer .. '!')
end
local function idOf(key) return string.match(key, '^%S+ (%S+)$') end
`;
