/**
 * Errors of the Chargebee client. None of them carries the API key, the Authorization header or the
 * request configuration: they hold only what is safe to log.
 */

/** Base class of every error the Chargebee client rejects with. */
export class ChargebeeError extends Error {
  /** True when retrying the same call later may succeed. */
  readonly retryable: boolean;

  constructor(message: string, retryable: boolean) {
    super(message);
    this.name = new.target.name;
    this.retryable = retryable;
  }
}

/** API error codes that mean the client is configured wrong (key, permissions or site), not that one call failed. */
const CONFIGURATION_FAULT_CODES = new Set([
  'api_authentication_failed',
  'basic_authentication_failed',
  'api_authorization_failed',
  'site_not_found',
]);

const RETRYABLE_STATUSES = new Set([429, 500, 502, 503, 504]);

/** Chargebee (or a proxy in front of it) answered with an HTTP error status or an unusable body. */
export class ChargebeeApiError extends ChargebeeError {
  /** HTTP status of the answer. */
  readonly status: number;
  /** Chargebee's `api_error_code`, when the body was a Chargebee error. */
  readonly apiErrorCode: string | undefined;
  /** Chargebee's error `type` (`invalid_request`, `operation_failed`, `payment`), when sent. */
  readonly type: string | undefined;
  /** The request parameter Chargebee blamed, when sent. */
  readonly param: string | undefined;
  /**
   * Seconds from a `Retry-After` header, when it held a number of seconds (or an HTTP date) up to a year
   * ahead; anything else is ignored and the backoff applies.
   */
  readonly retryAfterSeconds: number | undefined;
  /**
   * True when the body could not be used (not JSON, or no `portal_session` in a success answer). With a
   * 2xx status it makes the error retryable: the answer was cut or mangled, and logout is idempotent.
   */
  readonly unusableBody: boolean;

  constructor(fields: {
    status: number;
    message: string;
    apiErrorCode?: string;
    type?: string;
    param?: string;
    retryAfterSeconds?: number;
    unusableBody?: boolean;
  }) {
    const unusableBody = fields.unusableBody ?? false;
    const success = fields.status >= 200 && fields.status < 300;
    super(fields.message, RETRYABLE_STATUSES.has(fields.status) || (success && unusableBody));
    this.status = fields.status;
    this.apiErrorCode = fields.apiErrorCode;
    this.type = fields.type;
    this.param = fields.param;
    this.retryAfterSeconds = fields.retryAfterSeconds;
    this.unusableBody = unusableBody;
  }

  /** True for 401, 403 and `site_not_found`: the API key, its permissions or the site are wrong. */
  get isConfigurationFault(): boolean {
    return this.status === 401 || this.status === 403 || CONFIGURATION_FAULT_CODES.has(this.apiErrorCode ?? '');
  }
}

/**
 * Chargebee (or something in front of it) answered with a body larger than the client reads (64 KB,
 * compressed or decompressed; a real answer is about 1 KB). Reading stopped at the limit and the
 * connection was closed. Retryable like any unusable answer of its status.
 */
export class ChargebeeResponseTooLargeError extends ChargebeeApiError {
  /** The limit that was passed, in bytes. */
  readonly limitBytes: number;

  constructor(status: number, limitBytes: number, retryAfterSeconds?: number) {
    super({
      status,
      message: `Chargebee answered ${status} with a body over ${limitBytes} bytes; it was not read`,
      retryAfterSeconds,
      unusableBody: true,
    });
    this.limitBytes = limitBytes;
  }
}

/** No answer came within the time allowed. */
export class ChargebeeTimeoutError extends ChargebeeError {
  readonly timeoutMs: number;

  constructor(timeoutMs: number) {
    super(`Chargebee did not answer within ${timeoutMs} ms`, true);
    this.timeoutMs = timeoutMs;
  }
}

/** The connection failed or broke: refused, reset, DNS failure, or a response cut short. */
export class ChargebeeNetworkError extends ChargebeeError {
  /** The system error code, such as `ECONNREFUSED` or `ECONNRESET`, when known. */
  readonly code: string | undefined;

  constructor(code: string | undefined) {
    super(`Could not reach Chargebee${code ? ` (${code})` : ''}`, true);
    this.code = code;
  }
}

/**
 * No call was made: the circuit breaker is open after repeated failures of this Chargebee site, and calls
 * wait until its cool-off ends. Seen in an outcome only when the logout could not be deferred.
 */
export class ChargebeeCircuitOpenError extends ChargebeeError {
  /** When the breaker lets a probe call through again (ms since the epoch). */
  readonly retryAt: number;

  constructor(retryAt: number) {
    // One is made for every logout while the breaker is open, and its stack tells nothing: capturing
    // one was the largest cost of such a logout (npm run bench, outage scenario), so none is captured.
    const stackTraceLimit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    try {
      super('Chargebee calls are paused after repeated failures (circuit breaker open); no call was made', true);
    } finally {
      Error.stackTraceLimit = stackTraceLimit;
    }
    this.retryAt = retryAt;
  }
}
