import type { Logger } from 'pino';
import type { PortalSessionOutcome } from './outcome';
import { boundedText, scrub } from './redact';

/** Every line this package writes starts with this. */
export const LOG_PREFIX = 'chargebee portal logout';

/** Longest text taken from an error into a log line. */
const MAX_LOGGED_TEXT = 300;

/**
 * The log methods this package uses. Each call is safe: a logger that throws (a broken stream) or returns
 * a rejected promise loses its line, never the logout; the first such failure is reported once through
 * `process.emitWarning`, which does not depend on the logger.
 */
export interface Log {
  info(fields: object, text: string): void;
  warn(fields: object, text: string): void;
  error(fields: object, text: string): void;
  /** Whether a line of this level would be written: a line's fields need not be built when it would not. */
  enabled(level: 'info' | 'warn' | 'error'): boolean;
}

const reported = new WeakSet();

/**
 * Wraps a pino logger (or anything with `info`, `warn` and `error`). Messages get the package's prefix,
 * `chargebee portal logout: ...`, or `chargebee portal logout (scope): ...` when a scope is given.
 */
export function safeLog(logger: Logger, scope?: string): Log {
  const prefix = scope ? `${LOG_PREFIX} (${scope}): ` : `${LOG_PREFIX}: `;
  const write = (level: 'info' | 'warn' | 'error', fields: object, text: string): void => {
    try {
      const result: unknown = logger[level](fields, prefix + text);
      if (typeof (result as PromiseLike<unknown> | undefined)?.then === 'function')
        (result as PromiseLike<unknown>).then(undefined, (error: unknown) => loggerFailed(logger, error));
    } catch (error) {
      loggerFailed(logger, error);
    }
  };
  return {
    info: (fields, text) => write('info', fields, text),
    warn: (fields, text) => write('warn', fields, text),
    error: (fields, text) => write('error', fields, text),
    enabled: (level) => {
      try {
        // Only a plain `false` turns a line off: a logger that answers anything else gets its lines.
        const on: unknown = typeof logger.isLevelEnabled === 'function' ? logger.isLevelEnabled(level) : true;
        return on !== false;
      } catch {
        return true;
      }
    },
  };
}

function loggerFailed(logger: object, error: unknown): void {
  if (reported.has(logger)) return;
  reported.add(logger);
  try {
    process.emitWarning(
      `${LOG_PREFIX}: the logger failed (${errorFields(error).type}); its lines are lost until it recovers`,
      { code: 'CHARGEBEE_PORTAL_LOGOUT_LOGGER' },
    );
  } catch {
    // Nothing is left to report through.
  }
}

/**
 * An error as log fields: its type and a bounded message. The errors of this package carry no secret; a
 * function of the app may have thrown anything, so `redact` (when given) scrubs what this logout knows.
 */
export function errorFields(error: unknown, redact?: (text: string) => string): { type: string; message: string } {
  let type: string;
  let message: string;
  try {
    type = error instanceof Error ? error.name : error === null ? 'null' : typeof error;
    // A thrown object may carry anything as its message.
    const raw: unknown = error instanceof Error ? error.message : error;
    message = typeof raw === 'string' ? raw : '';
  } catch {
    return { type: 'unknown', message: '' };
  }
  // A message may come from the app's code (a function, a store, a registry): no email address is logged.
  return {
    type: boundedText(type, 60),
    message: boundedText(scrub(redact ? redact(message) : message), MAX_LOGGED_TEXT),
  };
}

/** The safe fields of a portal session's outcome, for a log line: no raw ID, no email, no key. */
export function outcomeFields(o: PortalSessionOutcome): Record<string, unknown> {
  return {
    idHash: o.idHash,
    status: o.status,
    businessEntityId: o.businessEntityId,
    httpStatus: o.httpStatus,
    apiErrorCode: o.apiErrorCode,
    reason: o.reason,
    attempts: o.attempts,
    elsewhere: o.elsewhere,
    error: o.status === 'failed' || o.status === 'deferred' ? o.error?.message : undefined,
    durationMs: o.durationMs,
  };
}
