/**
 * Lua shared by the deferred-logout store's scripts (BullMQ's "includes"): each script is its own module
 * next to this one and puts the parts it needs in front of its body.
 *
 * The keys every job script takes, in this order (KEYS[1..7]); the scripts name no other key but the
 * per-site lanes derived from KEYS[6] and KEYS[7], which keep the client's key prefix and the prefix's
 * {hash tag}, so that every key lives in one Redis Cluster slot:
 *   1 jobs      hash     portal-session ID -> the job (JOB below)
 *   2 leases    hash     ID -> the taker's token, or "<token> <renewedAt> <reason>" once a new deferral
 *                        renewed the job while it was handed over
 *   3 leased    zset     ID -> when its lease ends (handed-over jobs: in no lane)
 *   4 sites     zset     site -> the earliest due time in its lanes (which sites have something due)
 *   5 since     zset     ID -> since when the job has waited (the figures' oldest)
 *   6 due       stem     KEYS[6] .. ':' .. site: zset ID -> due time, the site's deferrals waiting
 *   7 scheduled stem     KEYS[7] .. ':' .. site: zset ID -> due time, the site's scheduled logouts not tried
 * TAKE adds 8 rate (hash: per site "<site>:t" tokens, "<site>:u" last spent, "<site>:p" paused until).
 *
 * Every time is Redis's clock (TIME) in whole milliseconds: callers send offsets from their own now, and
 * replies carry the script's clock so that callers read times back on theirs.
 */

/**
 * `clock`: Redis's time in whole milliseconds; `int(x)`: a number as whole-millisecond text;
 * `callerNow(now, skew)`: the caller's now on Redis's clock, which the caller's times (offsets from its now)
 * are added to. That is the caller's now plus its estimate of how far Redis's clock is from its own
 * (job-codec.ts ClockSkew), when TIME confirms the estimate: the caller's now so put may be at most a
 * quarter second after TIME, and at most a second before it (a slow way to Redis); otherwise TIME itself.
 * With the estimate, the times one instance writes keep their order to the millisecond, which the varying
 * time a call takes to reach Redis would shuffle, and come back to it as they went.
 */
export const CLOCK = `
local t = redis.call('TIME')
local clock = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function int(x) return string.format('%.0f', x) end
local function callerNow(now, skew)
  if skew ~= '' then
    local at = tonumber(now) + tonumber(skew)
    local lag = clock - at
    if lag >= -250 and lag <= 1000 then return at end
  end
  return clock
end
`;

/** `extend(key, untilMs)`: the key lives at least until then (never shortened; a missing key is left alone). */
export const EXTEND = `
local function extend(key, untilMs)
  local ttl = redis.call('PTTL', key)
  if ttl == -1 or (ttl >= 0 and clock + ttl < untilMs) then redis.call('PEXPIREAT', key, int(untilMs)) end
end
`;

/**
 * A job as the jobs hash keeps it: "<attempts> <reason> <site or -> <first attempt> <latest or -> <json>",
 * times on Redis's clock, the JSON holding what only the caller reads (entity, headers, idempotency key,
 * traceparent). `readJob` answers nil for anything else; `argJob(i, now)` reads a job from ARGV[i..i+6]
 * (attempts, reason, site or -, first-attempt offset, due offset, latest offset or '', json; offsets from
 * `now`, the caller's now on Redis's clock) and its due time. A job without a site has the site '' in the scripts: its lanes are KEYS[6] .. ':' and so on.
 */
export const JOB = `
local function readJob(value)
  if not value then return nil end
  local a, r, s, f, l, body = string.match(value, '^(%d+) (%S+) (%S+) (%-?%d+) (%S+) (.*)$')
  if not a then return nil end
  if s == '-' then s = '' end
  return { attempts = tonumber(a), reason = r, site = s, first = tonumber(f), latest = tonumber(l), body = body }
end
local function jobValue(j)
  local site = j.site
  if site == '' then site = '-' end
  local latest = '-'
  if j.latest then latest = int(j.latest) end
  return int(j.attempts) .. ' ' .. j.reason .. ' ' .. site .. ' ' .. int(j.first) .. ' ' .. latest .. ' ' .. j.body
end
local function argJob(i, now)
  local latest = nil
  if ARGV[i + 5] ~= '' then latest = now + tonumber(ARGV[i + 5]) end
  local site = ARGV[i + 2]
  if site == '-' then site = '' end
  local j = { attempts = tonumber(ARGV[i]), reason = ARGV[i + 1], site = site,
    first = now + tonumber(ARGV[i + 3]), latest = latest, body = ARGV[i + 6] }
  return j, now + tonumber(ARGV[i + 4])
end
-- A scheduled logout not tried yet: a deferral replaces it, activity moves it, it waits in the scheduled lane.
local function pending(j)
  return j.attempts == 0 and (j.reason == 'idle' or j.reason == 'portal_max_age')
end
local function lane(j)
  if pending(j) then return KEYS[7] .. ':' .. j.site end
  return KEYS[6] .. ':' .. j.site
end
local function readLease(value)
  if not value then return nil end
  local token, at, reason = string.match(value, '^(%S+) (%-?%d+) (%S+)$')
  if token then return token, tonumber(at), reason end
  return value, nil, nil
end
`;

/**
 * Writing jobs and keeping the indexes in step (needs CLOCK, EXTEND and JOB). `keep(id, j, due, old)` keeps
 * a job not handed over, in its lane at `due` (`old`, the job it replaces, leaves its own);
 * `forget(id, j)` deletes a job whoever holds it; `finish()` then refreshes the site index of every site
 * touched and makes the keys live as long as the jobs written need (`keepMs`, from ARGV, past since when
 * they have waited: the queue's maximum age, a lease and a margin; a minute at least).
 */
export const INDEXES = `
local keepMs = 0
local keepUntil = 0
local touched = {}
local function indexSite(site)
  local best = nil
  for _, stem in ipairs({ KEYS[6], KEYS[7] }) do
    local first = redis.call('ZRANGE', stem .. ':' .. site, 0, 0, 'WITHSCORES')
    if first[2] then
      local score = tonumber(first[2])
      if not best or score < best then best = score end
    end
  end
  if best then redis.call('ZADD', KEYS[4], int(best), site) else redis.call('ZREM', KEYS[4], site) end
end
-- A job must be kept until keepMs past since when it has waited (its first attempt; a scheduled logout's
-- due time), and a minute from now at least (never a time past, which would delete a key at once).
local function lifeUntil(since)
  local untilMs = math.max(since + keepMs, clock + 60000)
  if untilMs > keepUntil then keepUntil = untilMs end
end
local function waitingSince(j, due)
  if pending(j) then return due end
  return j.first
end
local function keep(id, j, due, old)
  if old then
    redis.call('ZREM', lane(old), id)
    touched[old.site] = true
  end
  redis.call('HSET', KEYS[1], id, jobValue(j))
  redis.call('ZADD', lane(j), int(due), id)
  local since = waitingSince(j, due)
  redis.call('ZADD', KEYS[5], int(since), id)
  touched[j.site] = true
  lifeUntil(since)
end
local function forget(id, j)
  redis.call('HDEL', KEYS[1], id)
  redis.call('HDEL', KEYS[2], id)
  redis.call('ZREM', KEYS[3], id)
  redis.call('ZREM', KEYS[5], id)
  if j then
    redis.call('ZREM', lane(j), id)
    touched[j.site] = true
  end
end
local function finish()
  for site in pairs(touched) do indexSite(site) end
  if keepUntil > 0 then
    for i = 1, 5 do extend(KEYS[i], keepUntil) end
    for site in pairs(touched) do
      extend(KEYS[6] .. ':' .. site, keepUntil)
      extend(KEYS[7] .. ':' .. site, keepUntil)
    end
  end
end
`;
