import { defineScript } from '../../scripts-runner';
import { CLOCK, EXTEND, INDEXES, JOB } from './includes';

/**
 * The portal sessions ended another way (`cancel`): their jobs go, unless handed over.
 * KEYS: the seven job keys (includes.ts).
 * ARGV: the portal-session IDs.
 * Returns how many went.
 */
export const CANCEL = defineScript(
  'cancel',
  7,
  CLOCK,
  EXTEND,
  JOB,
  INDEXES,
  `
local removed = 0
for _, id in ipairs(ARGV) do
  local value = redis.call('HGET', KEYS[1], id)
  if value and redis.call('HEXISTS', KEYS[2], id) == 0 then
    forget(id, readJob(value))
    removed = removed + 1
  end
end
finish()
return removed
`,
);
