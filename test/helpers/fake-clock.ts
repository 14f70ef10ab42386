/**
 * Jest's modern fake timers for this process's clock (`Date`, `performance`, timers) while real I/O goes
 * on: loopback HTTP to the emulator still takes real time, so waits here turn the event loop with
 * `setImmediate` and measure real time with `process.hrtime` (both left real).
 */

export function useFakeClock(startAt = Date.UTC(2026, 0, 5, 9, 0, 0)): void {
  jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask', 'hrtime'], now: startAt });
}

const realMs = () => Number(process.hrtime.bigint() / 1_000_000n);
const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Turns the event loop (fake clock standing still) until `predicate` holds, for at most `timeoutMs` of real time. */
export async function untilReal(predicate: () => boolean, what: string, timeoutMs = 8000): Promise<void> {
  const end = realMs() + timeoutMs;
  while (!predicate()) {
    if (realMs() > end) throw new Error(`untilReal: ${what} not met within ${timeoutMs} ms of real time`);
    await turn();
  }
}

/** Turns the event loop for `ms` of real time (fake clock standing still): time for a wrong call to show. */
export async function settleReal(ms = 100): Promise<void> {
  const end = realMs() + ms;
  while (realMs() < end) await turn();
}

/** Moves the fake clock on by `ms`, running the timers due on the way, then lets I/O settle a little. */
export async function advance(ms: number): Promise<void> {
  await jest.advanceTimersByTimeAsync(ms);
  await settleReal(30);
}
