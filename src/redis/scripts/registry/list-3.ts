import { defineScript } from '../../scripts-runner';
import { REGISTRY } from './includes';

/**
 * The portal sessions of a customer of a site, oldest first; expired ones are forgotten on the way.
 * KEYS: entries, by-customer, by-time (includes.ts).
 * ARGV: 1 site, 2 customer, 3 now, 4 ttlMs.
 * Returns { id1, rememberedAt1, entity1, id2, ... } (entity '' for none).
 */
export const REGISTRY_LIST = defineScript(
  'registry-list',
  3,
  REGISTRY,
  `
local site, customer = ARGV[1], ARGV[2]
local cutoff = tonumber(ARGV[3]) - tonumber(ARGV[4])
local skip = #site + #customer + 2
local rows = {}
for _, member in ipairs(customerMembers(site, customer)) do
  local id = string.sub(member, skip + 1)
  local key = site .. ' ' .. id
  local record = redis.call('HGET', KEYS[1], key)
  local at, owner, entity
  if record then at, owner, entity = string.match(record, '^(%d+) (%S+) ?(%S*)$') end
  if not at or owner ~= customer then
    redis.call('ZREM', KEYS[2], member)
  elseif tonumber(at) <= cutoff then
    forget(key)
  else
    table.insert(rows, { id, at, entity, tonumber(at) })
  end
end
table.sort(rows, function(a, b)
  if a[4] ~= b[4] then return a[4] < b[4] end
  return a[1] < b[1]
end)
local out = {}
for _, row in ipairs(rows) do
  table.insert(out, row[1])
  table.insert(out, row[2])
  table.insert(out, row[3])
end
return out
`,
);
