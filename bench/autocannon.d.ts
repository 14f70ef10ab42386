/** The part of autocannon's programmatic API that bench/load.ts uses (autocannon ships no types). */
declare module 'autocannon' {
  import type { EventEmitter } from 'node:events';

  interface RequestParams {
    method?: string;
    path?: string;
    headers?: Record<string, string>;
    body?: string | Buffer;
  }

  interface Request extends RequestParams {
    /** Called before each request with the request to send; returns it (changed) or a new one. */
    setupRequest?: (request: RequestParams) => RequestParams;
  }

  interface Options {
    url: string;
    connections?: number;
    pipelining?: number;
    /** Stop after this many requests. */
    amount?: number;
    /** Seconds without an answer before a request counts as timed out. */
    timeout?: number;
    headers?: Record<string, string>;
    requests?: Request[];
  }

  interface Result {
    errors: number;
    timeouts: number;
    non2xx: number;
    /** Seconds, rounded; ends at autocannon's next one-second tick after the last answer. */
    duration: number;
  }

  interface Instance extends EventEmitter, PromiseLike<Result> {
    stop(): void;
  }

  function autocannon(options: Options, callback?: (error: Error | null, result: Result) => void): Instance;
  export = autocannon;
}
