import { createHash } from 'node:crypto';
import { deadlineIn, runUntil } from '../base/time';

/**
 * The one loader of this package's Lua scripts, shared by the deferred-logout store and the registry of
 * open portal sessions: each script is a module of its own under `scripts/` (named, as BullMQ names its
 * scripts, with the number of keys it takes: `take-due-8.ts`), defined here with its name and key count,
 * and run by SHA on the app's node-redis client, its source sent only when Redis does not know it.
 */

/** Keys and arguments of a script call, as node-redis takes them. */
export interface RedisScriptArguments {
  keys: string[];
  arguments: string[];
}

/**
 * What this package uses of a node-redis client (`redis` 5 or 6, a client or a cluster): scripts by SHA with
 * the source as fallback, and a per-call abort signal when the client has one. Typed by shape, so that any
 * `createClient()` or `createCluster()` result fits, whatever its RESP version, modules or scripts.
 */
export interface RedisClientLike {
  evalSha(sha1: string, options: RedisScriptArguments): Promise<unknown>;
  eval(script: string, options: RedisScriptArguments): Promise<unknown>;
  withAbortSignal?(signal: AbortSignal): RedisClientLike;
}

/** A Lua script of this package: its name, the number of keys it takes (KEYS[1..n]), its source and SHA1. */
export interface RedisScript {
  name: string;
  numberOfKeys: number;
  source: string;
  sha: string;
}

/**
 * Defines a script from its parts (shared Lua helpers, then its own body). The source starts with a comment
 * that names it, so that SCRIPT and SLOWLOG output says which one it is.
 */
export function defineScript(name: string, numberOfKeys: number, ...parts: string[]): RedisScript {
  const source = [`-- chargebee-portal-logout ${name}-${numberOfKeys}`, ...parts.map((p) => p.trim())].join('\n');
  return { name, numberOfKeys, source, sha: createHash('sha1').update(source).digest('hex') };
}

/**
 * Runs a script by SHA, loading it with EVAL when Redis does not know it (after a restart or SCRIPT FLUSH).
 * Every argument is text: numbers are whole (the callers round them; a fraction would fail a command such
 * as PEXPIREAT halfway through the script). Each call has its own deadline: the client's abort signal drops
 * a command not yet sent, and the outer one gives up on a command sent to a Redis that does not answer (it
 * may still run: callers allow for it).
 */
export async function runScript(
  client: RedisClientLike,
  script: RedisScript,
  keys: readonly string[],
  args: ReadonlyArray<string | number>,
  timeoutMs: number,
): Promise<unknown> {
  if (keys.length !== script.numberOfKeys)
    throw new Error(`the Redis script ${script.name} takes ${script.numberOfKeys} keys, not ${keys.length}`);
  const options = { keys: [...keys], arguments: args.map(wholeText) };
  try {
    return await withDeadline(client, (c) => c.evalSha(script.sha, options), timeoutMs);
  } catch (error) {
    if (!(error instanceof Error && error.message.startsWith('NOSCRIPT'))) throw error;
    return withDeadline(client, (c) => c.eval(script.source, options), timeoutMs);
  }
}

/** An argument as text; a number that is not whole is a bug of the caller, refused before Redis sees it. */
function wholeText(value: string | number): string {
  if (typeof value === 'string') return value;
  if (!Number.isSafeInteger(value))
    throw new RangeError(`a Redis script argument must be a whole number, not ${value}`);
  return String(value);
}

function withDeadline(
  client: RedisClientLike,
  call: (client: RedisClientLike) => Promise<unknown>,
  ms: number,
): Promise<unknown> {
  // The client's abort signal drops a command not sent yet; the deadline gives up on one sent to a Redis
  // that does not answer.
  return runUntil(deadlineIn(ms), 'Redis', (signal) =>
    call(client.withAbortSignal?.(signal.toAbortSignal()) ?? client),
  );
}

/** A script's reply that must be an array; `what` names the script's owner in the error. */
export function replyArray(reply: unknown, what: string): unknown[] {
  if (!Array.isArray(reply)) throw new Error(`Redis answered a ${what} script with an unexpected reply`);
  return reply;
}

/** A reply item as text (a client may map strings to Buffers). */
export function replyText(value: unknown): string {
  return Buffer.isBuffer(value) ? value.toString('utf8') : String(value);
}

/** A reply item as a number (NaN when it is none). */
export function replyNumber(value: unknown): number {
  return value === null || value === undefined ? NaN : Number(replyText(value));
}
