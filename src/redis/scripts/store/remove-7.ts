import { defineScript } from '../../scripts-runner';
import { CLOCK, EXTEND, INDEXES, JOB } from './includes';

/**
 * The portal session ended, or Chargebee refused its logout for good (`remove`): its job goes, whoever
 * holds it.
 * KEYS: the seven job keys (includes.ts).
 * ARGV: 1 the portal-session ID.
 * Returns 1 when there was a job, 0 otherwise.
 */
export const REMOVE = defineScript(
  'remove',
  7,
  CLOCK,
  EXTEND,
  JOB,
  INDEXES,
  `
local id = ARGV[1]
local value = redis.call('HGET', KEYS[1], id)
forget(id, readJob(value))
finish()
if value then return 1 end
return 0
`,
);
