import { defineScript } from '../../scripts-runner';

/**
 * The eviction policy of the Redis that holds the store's keys (on a Cluster, the node of their slot),
 * read through a script because INFO works there on managed Redis services that refuse CONFIG GET.
 * KEYS: 1 jobs (only so that a Cluster client sends the script to the node of the store's slot).
 * Returns `maxmemory_policy` from INFO memory, or false when it cannot be read.
 */
export const READ_SETTINGS = defineScript(
  'read-settings',
  1,
  `
local ok, info = pcall(redis.call, 'INFO', 'memory')
if not ok or type(info) ~= 'string' then return false end
return string.match(info, 'maxmemory_policy:(%S+)') or false
`,
);
