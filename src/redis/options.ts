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
 * Whether `client` is a Redis Cluster client (node-redis `createCluster()`, 5 or 6), told by its shape: a
 * cluster client maps slots to nodes (`slots`, `masters`) and hands out a node's own client (`nodeClient`),
 * which a plain client (`createClient()`) has none of.
 */
export function isClusterClient(client: unknown): boolean {
  if (typeof client !== 'object' || client === null) return false;
  const c = client as Record<string, unknown>;
  return typeof c.nodeClient === 'function' && 'slots' in c && 'masters' in c;
}

/**
 * Whether keys that start with `text` carry a Redis Cluster hash tag there: the first `{` followed, later,
 * by a `}` with something between. Every key that starts so hashes to the same slot.
 */
export function hasHashTag(text: string): boolean {
  const open = text.indexOf('{');
  if (open < 0) return false;
  const close = text.indexOf('}', open + 1);
  return close > open + 1;
}

/** The key prefix a node-redis 6.1+ client adds to every key (its `keyPrefix` option), or ''. */
function clientKeyPrefix(client: unknown): string {
  try {
    const prefix = (client as { _keyPrefix?: unknown })._keyPrefix;
    return typeof prefix === 'string' ? prefix : '';
  } catch {
    return '';
  }
}

/**
 * Checks the client and the common options of a Redis store or registry (`owner` names it in errors):
 * a node-redis client, a key prefix of visible ASCII, a whole command timeout. On a Cluster client the
 * prefix (after the client's own key prefix) must hold a {hash tag}: `example` shows one.
 */
export function redisCommon(
  owner: string,
  client: unknown,
  options: unknown,
  defaultPrefix: string,
  example: string,
): { check: OptionCheck; options: Record<string, unknown>; prefix: string; commandTimeoutMs: number } {
  const check: OptionCheck = new OptionCheck(owner);
  const c = client as Partial<RedisClientLike> | null | undefined;
  if (typeof c?.evalSha !== 'function' || typeof c.eval !== 'function')
    check.fail('pass a node-redis client (createClient() or createCluster() from the redis package, connected)');
  if (typeof options !== 'object' || options === null) check.fail('options must be an object');
  const o = options as Record<string, unknown>;
  const prefix = o.prefix ?? defaultPrefix;
  if (typeof prefix !== 'string' || !PREFIX.test(prefix))
    check.fail('option prefix must be 1 to 200 visible ASCII characters without spaces');
  if (isClusterClient(client) && !hasHashTag(clientKeyPrefix(client) + prefix))
    check.fail(
      `option prefix ${JSON.stringify(prefix)} has no {hash tag}, which a Redis Cluster client (createCluster) ` +
        `needs: each of its scripts uses several keys at once, and Cluster runs a script only when all of its ` +
        `keys are in one slot, which only a hash tag ensures. Put one at the start, e.g. prefix: '${example}'`,
    );
  return {
    check,
    options: o,
    prefix,
    commandTimeoutMs: check.whole(o.commandTimeoutMs, 'commandTimeoutMs', DEFAULT_COMMAND_TIMEOUT_MS, 1, 600_000),
  };
}
