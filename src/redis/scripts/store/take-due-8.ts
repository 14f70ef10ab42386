import { defineScript } from '../../scripts-runner';
import { CLOCK, EXTEND, INDEXES, JOB } from './includes';

/** Most sites with something due that one take looks at (a site is a Chargebee site: an app has a few). */
export const MAX_SITES_PER_TAKE = 1000;
/** Most handed-over jobs whose lease ran out that one take puts back in line. */
const MAX_RECLAIMED = 100;

/**
 * Hands due jobs over (`takeDue`), each to one taker with a lease, within each site's rate, earliest due
 * first across the sites that may make a request now.
 * KEYS: the seven job keys, then 8 rate (includes.ts).
 * ARGV: 1 most jobs, 2 leaseMs, 3 the taker's token, 4 requests per 1000 minutes per site (0: no limit),
 *       5 the bucket's size (burst).
 *
 * 1. Jobs whose lease ran out (their taker may have died) go back in line, a renewal meanwhile carried
 *    over, for this taker or another.
 * 2. The sites with a job due (the sites index) are looked at one by one: a site that is paused, or whose
 *    bucket (one for every instance) has no request left, is held back; each other site offers its earliest
 *    due jobs, as many as its bucket allows. A site held back never holds back another site's jobs, however
 *    long its backlog.
 * 3. The offers are handed over earliest due first, up to the limit.
 *
 * Returns { clock, ms until the next ask (0: now; -1: nothing waits), id1, job1, due1, id2, ... }: when to
 * ask again is the next job due, the next request a held-back site may make, or a pause's end.
 */
export const TAKE_DUE = defineScript(
  'take-due',
  8,
  CLOCK,
  EXTEND,
  JOB,
  INDEXES,
  `
local limit, leaseMs, token = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local perMinute, burst = tonumber(ARGV[4]) / 1000, tonumber(ARGV[5])
local leaseUntil = clock + leaseMs
local jobsTtl = redis.call('PTTL', KEYS[1])

-- 1. Leases that ran out.
local expired = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', int(clock), 'WITHSCORES', 'LIMIT', 0, ${MAX_RECLAIMED})
for i = 1, #expired, 2 do
  local id, endedAt = expired[i], expired[i + 1]
  local _, renewedAt, reason = readLease(redis.call('HGET', KEYS[2], id))
  redis.call('HDEL', KEYS[2], id)
  redis.call('ZREM', KEYS[3], id)
  local j = readJob(redis.call('HGET', KEYS[1], id))
  if j then
    if renewedAt then
      if renewedAt > j.first then j.first = renewedAt end
      j.reason = reason
      redis.call('HSET', KEYS[1], id, jobValue(j))
      redis.call('ZADD', KEYS[5], int(j.first), id)
    end
    redis.call('ZADD', lane(j), endedAt, id)
    touched[j.site] = true
    if jobsTtl > 0 then extend(lane(j), clock + jobsTtl) end
  else
    forget(id, nil)
  end
end
for site in pairs(touched) do indexSite(site) end

-- 2. The sites with something due, each within its rate.
local buckets = {}
local function bucket(site)
  local b = buckets[site]
  if b then return b end
  local v = redis.call('HMGET', KEYS[8], site .. ':t', site .. ':u', site .. ':p')
  local tokens = tonumber(v[1]) or burst
  local at = tonumber(v[2]) or clock
  if perMinute > 0 and clock > at then tokens = tokens + (clock - at) * perMinute / 60000 end
  b = { tokens = math.min(burst, tokens), paused = tonumber(v[3]) or 0, want = 0, taken = 0, used = false }
  buckets[site] = b
  return b
end
local function waitFor(b)
  if b.paused > clock then return b.paused - clock end
  if perMinute <= 0 or b.tokens >= 1 then return 0 end
  return math.ceil((1 - b.tokens) * 60000 / perMinute)
end

local nextIn = -1
local function soonest(ms)
  if nextIn < 0 or ms < nextIn then nextIn = ms end
end
local offers = {}
for _, site in ipairs(redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', int(clock), 'LIMIT', 0, ${MAX_SITES_PER_TAKE})) do
  local b = bucket(site)
  local wait = waitFor(b)
  if wait > 0 then
    soonest(wait)
  else
    b.want = limit
    if perMinute > 0 then b.want = math.min(limit, math.floor(b.tokens)) end
    touched[site] = true
    for _, stem in ipairs({ KEYS[6], KEYS[7] }) do
      local key = stem .. ':' .. site
      local due = redis.call('ZRANGEBYSCORE', key, '-inf', int(clock), 'WITHSCORES', 'LIMIT', 0, b.want)
      for i = 1, #due, 2 do
        offers[#offers + 1] = { id = due[i], due = tonumber(due[i + 1]), site = site, key = key }
      end
    end
  end
end

-- 3. Earliest due first, across the sites.
table.sort(offers, function(a, b)
  if a.due ~= b.due then return a.due < b.due end
  return a.id < b.id
end)
local out = { int(clock), -1 }
local taken = 0
local handed = {}
for _, offer in ipairs(offers) do
  if taken >= limit then break end
  local b = buckets[offer.site]
  if b.taken < b.want and not handed[offer.id] then
    handed[offer.id] = true
    redis.call('ZREM', offer.key, offer.id)
    local value = redis.call('HGET', KEYS[1], offer.id)
    if value then
      redis.call('HSET', KEYS[2], offer.id, token)
      redis.call('ZADD', KEYS[3], int(leaseUntil), offer.id)
      out[#out + 1] = offer.id
      out[#out + 1] = value
      out[#out + 1] = int(offer.due)
      taken = taken + 1
      b.taken = b.taken + 1
      if perMinute > 0 then
        b.tokens = b.tokens - 1
        b.used = true
      end
    else
      -- In line without a job (its key expired, or written by something else): dropped.
      redis.call('ZREM', KEYS[5], offer.id)
    end
  end
end

local spent = false
for site, b in pairs(buckets) do
  if b.used then
    redis.call('HSET', KEYS[8], site .. ':t', string.format('%.6f', b.tokens), site .. ':u', int(clock))
    spent = true
  end
end
if spent then extend(KEYS[8], clock + 3600000) end
finish()
if taken > 0 and jobsTtl > 0 then
  extend(KEYS[2], clock + jobsTtl)
  extend(KEYS[3], clock + jobsTtl)
end

-- When to ask again.
if limit > 0 and taken >= limit then
  nextIn = 0
else
  for site, b in pairs(buckets) do
    if b.want > 0 then
      local first = tonumber(redis.call('ZSCORE', KEYS[4], site))
      if first and first <= clock then soonest(waitFor(b)) end
    end
  end
  local later = redis.call('ZRANGEBYSCORE', KEYS[4], '(' .. int(clock), '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
  if later[2] then soonest(tonumber(later[2]) - clock) end
end
if limit <= 0 then nextIn = 0 end
out[2] = int(nextIn)
return out
`,
);
