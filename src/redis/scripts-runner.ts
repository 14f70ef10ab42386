import { createHash } from 'node:crypto';
import { deadlineIn, runUntil } from '../base/time';

/**
 * Running this package's Lua scripts on the app's node-redis client, shared by the deferred-logout store
 * and the registry of open portal sessions.
 */

/** Keys and arguments of a script call, as node-redis takes them. */
export interface RedisScriptArguments {
  keys: string[];
  arguments: string[];
}

/**
 * What this package uses of a node-redis client (`redis` 5 or 6, a client or a cluster): scripts by SHA with
 * the source as fallback, and a per-call abort signal when the client has one. Typed by shape, so that any
 * `createClient()` result fits, whatever its RESP version, modules or scripts.
 */
export interface RedisClientLike {
  evalSha(sha1: string, options: RedisScriptArguments): Promise<unknown>;
  eval(script: string, options: RedisScriptArguments): Promise<unknown>;
  withAbortSignal?(signal: AbortSignal): RedisClientLike;
}

/** A Lua script and its SHA1, for EVALSHA. */
export interface Script {
  source: string;
  sha: string;
}

export function script(source: string): Script {
  return { source, sha: createHash('sha1').update(source).digest('hex') };
}

/**
 * Runs a script by SHA, loading it with EVAL when Redis does not know it (after a restart or SCRIPT FLUSH).
 * Each call has its own deadline: the client's abort signal drops a command not yet sent, and the outer
 * one gives up on a command sent to a Redis that does not answer (it may still run: callers allow for it).
 */
export async function runScript(
  client: RedisClientLike,
  script: Script,
  keys: string[],
  args: Array<string | number>,
  timeoutMs: number,
): Promise<unknown> {
  const options = { keys, arguments: args.map(String) };
  try {
    return await withDeadline(client, (c) => c.evalSha(script.sha, options), timeoutMs);
  } catch (error) {
    if (!(error instanceof Error && error.message.startsWith('NOSCRIPT'))) throw error;
    return withDeadline(client, (c) => c.eval(script.source, options), timeoutMs);
  }
}

function withDeadline(
  client: RedisClientLike,
  call: (client: RedisClientLike) => Promise<unknown>,
  ms: number,
): Promise<unknown> {
  // The client's abort signal drops a command not sent yet; the deadline gives up on one sent to a Redis
  // that does not answer.
  return runUntil(deadlineIn(ms), 'Redis', (signal) => call(client.withAbortSignal?.(signal) ?? client));
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
