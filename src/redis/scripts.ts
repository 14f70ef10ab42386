import { script } from './scripts-runner';

/**
 * The store's Lua scripts. Each one is a single atomic step across every instance, and names only the keys
 * it is given (KEYS[]), so that a client's key prefix applies and, with a hash tag in the store's prefix,
 * every key lives in one Redis Cluster slot. Keys: 1 `jobs` (hash: portal-session ID -> job JSON),
 * 2 `due` (sorted set: ID by notBefore, or by lease end while handed over), 3 `leases` (hash: ID -> token),
 * 4 `rate` (hash: per site `<site>:t` tokens, `<site>:u` last refill, `<site>:p` paused until; Redis time).
 */

const CLOCK = `
local t = redis.call('TIME')
local clock = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`;

/**
 * Whether a stored job is a scheduled logout not tried yet (reason `portal_max_age` or `idle`, no attempt):
 * a deferral replaces it, activity moves it.
 */
const PENDING_SCHEDULE = `
local function pendingSchedule(json)
  local ok, job = pcall(cjson.decode, json)
  return ok and type(job) == 'table' and job.a == 0 and (job.r == 'portal_max_age' or job.r == 'idle')
end
`;

/**
 * For a new job of portal session `id` (needs PENDING_SCHEDULE): returns 2 when another job of it is under
 * way or not a pending scheduled logout (nothing to do), 0 when the store holds ARGV[4] jobs already.
 */
const MAKE_ROOM = `
local existing = redis.call('HGET', KEYS[1], id)
if existing then
  if redis.call('HEXISTS', KEYS[3], id) == 1 or not pendingSchedule(existing) then return 2 end
elseif redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[4]) then
  return 0
end
`;

/** Makes keys 1 to 3 live at least until the time (ms) in local `expireAt`. */
const EXTEND = `
for i = 1, 3 do
  local ttl = redis.call('PTTL', KEYS[i])
  if ttl == -1 or (ttl >= 0 and clock + ttl < expireAt) then redis.call('PEXPIREAT', KEYS[i], expireAt) end
end
`;

/** Writes job ARGV[1] (json ARGV[2], score ARGV[3]) and extends the keys' life to ARGV[5]. Returns 1. */
const KEEP = `
redis.call('HSET', KEYS[1], id, ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], id)
local expireAt = tonumber(ARGV[5])
${EXTEND}
return 1
`;

/**
 * Keeps a job. ARGV: id, json, notBefore, maxQueued, expireAt (ms), lease ('' for a new deferral).
 * A new deferral for a portal session already queued keeps the queued job (one job per portal session),
 * unless that is a scheduled logout not tried or handed over yet, which the deferral replaces.
 * A put-back (with a lease) is kept only while that lease is still the job's.
 * Returns 1 kept, 2 already there or owned by another taker (nothing to do), 0 full.
 */
export const ADD = script(`${CLOCK}${PENDING_SCHEDULE}
local id = ARGV[1]
if ARGV[6] ~= '' then
  if redis.call('HGET', KEYS[3], id) ~= ARGV[6] then return 2 end
  redis.call('HDEL', KEYS[3], id)
else
${MAKE_ROOM}
end
${KEEP}`);

/**
 * Keeps a scheduled logout. ARGV: id, json, notBefore (its due time), most jobs, expireAt (ms). It replaces
 * a scheduled logout of the portal session not tried or handed over yet, and leaves any other job alone.
 * Returns 1 kept, 2 another job of the portal session is under way (nothing to do), 0 full.
 */
export const SCHEDULE = script(`${CLOCK}${PENDING_SCHEDULE}
local id = ARGV[1]
${MAKE_ROOM}
${KEEP}`);

/**
 * Activity: moves scheduled logouts later. ARGV: at (ms), expireAt (ms), then the portal-session IDs. Each
 * one not tried or handed over yet goes to `at`, but not past its latest time (`l`, the maximum age)
 * and never earlier than it was. Returns how many moved.
 */
export const POSTPONE = script(`${CLOCK}${PENDING_SCHEDULE}
local moved = 0
for i = 3, #ARGV do
  local id = ARGV[i]
  local json = redis.call('HGET', KEYS[1], id)
  if json and redis.call('HEXISTS', KEYS[3], id) == 0 and pendingSchedule(json) then
    local target = tonumber(ARGV[1])
    local latest = cjson.decode(json).l
    if type(latest) == 'number' and latest < target then target = latest end
    local current = tonumber(redis.call('ZSCORE', KEYS[2], id))
    if current and target > current then
      redis.call('ZADD', KEYS[2], string.format('%.0f', target), id)
      moved = moved + 1
    end
  end
end
if moved > 0 then
  local expireAt = tonumber(ARGV[2])
  ${EXTEND}
end
return moved
`);

/** Deletes the jobs of ended portal sessions that are not handed over. ARGV: the IDs. Returns how many went. */
export const CANCEL = script(`
local removed = 0
for _, id in ipairs(ARGV) do
  if redis.call('HEXISTS', KEYS[3], id) == 0 and redis.call('HDEL', KEYS[1], id) == 1 then
    redis.call('ZREM', KEYS[2], id)
    removed = removed + 1
  end
end
return removed
`);

/**
 * Hands over due jobs within the rate. ARGV: now, limit, leaseMs, token, perMinute (0: no limit), burst,
 * most jobs looked at. A job whose site is paused or has no request left stays in line.
 * Returns { ms until a held-back site may make a request or -1, ms until the next job is due or -1,
 * id1, json1, id2, json2, ... }.
 */
export const TAKE = script(`${CLOCK}
local now = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local leaseUntil = now + tonumber(ARGV[3])
local perMinute = tonumber(ARGV[5])
local burst = tonumber(ARGV[6])
local ids = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, tonumber(ARGV[7]))
local out = { -1, -1 }
local sites = {}
local taken = 0
local spent = false
for _, id in ipairs(ids) do
  if taken >= limit then break end
  local json = redis.call('HGET', KEYS[1], id)
  if not json then
    redis.call('ZREM', KEYS[2], id)
    redis.call('HDEL', KEYS[3], id)
  else
    local site = string.match(json, '^{"s":"(%x*)"') or ''
    local s = sites[site]
    if not s then
      local v = redis.call('HMGET', KEYS[4], site .. ':t', site .. ':u', site .. ':p')
      local tokens = tonumber(v[1]) or burst
      local at = tonumber(v[2]) or clock
      if clock > at then tokens = math.min(burst, tokens + (clock - at) * perMinute / 60000) end
      s = { tokens = tokens, paused = tonumber(v[3]) or 0, used = false }
      sites[site] = s
    end
    local wait = 0
    if s.paused > clock then
      wait = s.paused - clock
    elseif perMinute > 0 then
      if s.tokens >= 1 then
        s.tokens = s.tokens - 1
        s.used = true
      else
        wait = math.ceil((1 - s.tokens) * 60000 / perMinute)
      end
    end
    if wait > 0 then
      if out[1] < 0 or wait < out[1] then out[1] = wait end
    else
      redis.call('ZADD', KEYS[2], leaseUntil, id)
      redis.call('HSET', KEYS[3], id, ARGV[4])
      out[#out + 1] = id
      out[#out + 1] = json
      taken = taken + 1
    end
  end
end
for site, s in pairs(sites) do
  if s.used then
    redis.call('HSET', KEYS[4], site .. ':t', string.format('%.6f', s.tokens), site .. ':u', clock)
    spent = true
  end
end
if spent then redis.call('PEXPIRE', KEYS[4], 3600000) end
if taken > 0 then
  local ttl = redis.call('PTTL', KEYS[1])
  if ttl > 0 then redis.call('PEXPIRE', KEYS[3], ttl) end
end
local later = redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. now, '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
if later[2] then out[2] = math.max(0, math.ceil(tonumber(later[2]) - now)) end
return out
`);

/** Deletes a job. ARGV: id, lease ('' for any). Returns 1, or 0 when the lease is no longer the job's. */
export const REMOVE = script(`
local id = ARGV[1]
if ARGV[2] ~= '' and redis.call('HGET', KEYS[3], id) ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[1], id)
redis.call('ZREM', KEYS[2], id)
redis.call('HDEL', KEYS[3], id)
return 1
`);

/** Pauses a site's drain. KEYS: rate. ARGV: site, ms from now. */
export const PAUSE = script(`${CLOCK}
local field = ARGV[1] .. ':p'
local untilMs = clock + tonumber(ARGV[2])
if untilMs > (tonumber(redis.call('HGET', KEYS[1], field)) or 0) then redis.call('HSET', KEYS[1], field, untilMs) end
redis.call('PEXPIRE', KEYS[1], math.max(3600000, tonumber(ARGV[2]) + 60000))
return 1
`);

/** Jobs kept. KEYS: jobs. */
export const SIZE = script(`return redis.call('HLEN', KEYS[1])`);

/** The earliest score in line, as a string, or false. KEYS: due. */
export const NEXT_DUE = script(`
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if first[2] then return first[2] end
return false
`);

/** Up to ARGV[1] jobs in line order. KEYS: due, jobs. Returns { score1, id1, json1, ... }. */
export const LIST = script(`
local ids = redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1, 'WITHSCORES')
local out = {}
for i = 1, #ids, 2 do
  local json = redis.call('HGET', KEYS[2], ids[i])
  if json then
    out[#out + 1] = ids[i + 1]
    out[#out + 1] = ids[i]
    out[#out + 1] = json
  end
end
return out
`);
