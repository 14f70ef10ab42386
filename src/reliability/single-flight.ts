/**
 * Single flight: concurrent calls for the same key share one run of the work and its result. Two
 * logouts of the same portal session at once (a double click) make one upstream call.
 */
export class SingleFlight<T> {
  private readonly inFlight = new Map<string, Promise<T>>();

  /** Runs `work` unless a run for `key` is under way, in which case its promise is returned. */
  run(key: string, work: () => Promise<T>): Promise<T> {
    const running = this.inFlight.get(key);
    if (running) return running;
    const forget = () => this.inFlight.delete(key);
    let promise: Promise<T>;
    try {
      promise = work();
    } catch (error) {
      // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- the work's own throw, passed on
      return Promise.reject(error);
    }
    this.inFlight.set(key, promise);
    promise.then(forget, forget);
    return promise;
  }

  /** Runs under way, for tests and shutdown. */
  get size(): number {
    return this.inFlight.size;
  }
}
