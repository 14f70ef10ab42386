import { defineScript } from '../../scripts-runner';
import { REGISTRY } from './includes';

/**
 * Forgets portal sessions of a site by ID, whatever their customer.
 * KEYS: entries, by-customer, by-time (includes.ts).
 * ARGV: 1 site, 2... the portal-session IDs.
 * Returns how many were kept.
 */
export const REGISTRY_REMOVE = defineScript(
  'registry-remove',
  3,
  REGISTRY,
  `
local removed = 0
for i = 2, #ARGV do
  local key = ARGV[1] .. ' ' .. ARGV[i]
  if redis.call('HEXISTS', KEYS[1], key) == 1 then removed = removed + 1 end
  forget(key)
end
return removed
`,
);
