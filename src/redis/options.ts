import { OptionCheck } from '../base/validate';
import type { RedisClientLike } from './scripts-runner';

/** Default longest wait for one Redis call, whatever the client's own timeouts. */
export const DEFAULT_COMMAND_TIMEOUT_MS = 1000;
const PREFIX = /^[\x21-\x7e]{1,200}$/;

/** The settings every Redis store and registry takes, checked the same way. */
export interface RedisCommonOptions {
  prefix?: string;
  commandTimeoutMs?: number;
}

/**
 * Checks the client and the common options of a Redis store or registry (`owner` names it in errors):
 * a node-redis client, a key prefix of visible ASCII, a whole command timeout.
 */
export function redisCommon(
  owner: string,
  client: unknown,
  options: unknown,
  defaultPrefix: string,
): { check: OptionCheck; options: Record<string, unknown>; prefix: string; commandTimeoutMs: number } {
  const check: OptionCheck = new OptionCheck(owner);
  const c = client as Partial<RedisClientLike> | null | undefined;
  if (typeof c?.evalSha !== 'function' || typeof c.eval !== 'function')
    check.fail('pass a node-redis client (createClient() from the redis package, connected)');
  if (typeof options !== 'object' || options === null) check.fail('options must be an object');
  const o = options as Record<string, unknown>;
  const prefix = o.prefix ?? defaultPrefix;
  if (typeof prefix !== 'string' || !PREFIX.test(prefix))
    check.fail('option prefix must be 1 to 200 visible ASCII characters without spaces');
  return {
    check,
    options: o,
    prefix,
    commandTimeoutMs: check.whole(o.commandTimeoutMs, 'commandTimeoutMs', DEFAULT_COMMAND_TIMEOUT_MS, 1, 600_000),
  };
}
