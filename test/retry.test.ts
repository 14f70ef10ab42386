import { ChargebeeApiError, ChargebeeNetworkError, ChargebeeTimeoutError } from '../src/base/errors';
import {
  backoffDelay,
  isRetryable,
  MIN_ATTEMPT_MS,
  queueBackoffDelay,
  queueRetryDelay,
  retryAfterMs,
  withRetries,
  type Attempt,
  type Clock,
} from '../src/reliability/retry';

/** A clock that only moves when told: sleeping and slow calls advance it, nothing waits. */
function fakeClock(): Clock & { sleeps: number[]; advance(ms: number): void } {
  let now = 0;
  const sleeps: number[] = [];
  return {
    sleeps,
    now: () => now,
    sleep: async (ms) => {
      sleeps.push(ms);
      now += ms;
    },
    advance: (ms) => {
      now += ms;
    },
  };
}

const policy = { maxAttempts: 4, baseDelayMs: 100, maxDelayMs: 1000 };
const apiError = (status: number, extra: Partial<ConstructorParameters<typeof ChargebeeApiError>[0]> = {}) =>
  new ChargebeeApiError({ status, message: `status ${status}`, ...extra });

/** A call that fails with `errors` in turn, then resolves 'ok'; records the allowance of each attempt. */
function scripted(errors: unknown[], clock?: ReturnType<typeof fakeClock>, takesMs = 0) {
  const attempts: Attempt[] = [];
  const call = async (attempt: Attempt) => {
    attempts.push(attempt);
    clock?.advance(Math.min(takesMs, attempt.timeoutMs));
    const error = errors[attempts.length - 1];
    if (error) throw error;
    return 'ok';
  };
  return { call, attempts };
}

describe('backoffDelay (full jitter)', () => {
  it('draws between 0 and base * 2^(retry-1), capped at maxDelayMs', () => {
    expect(backoffDelay(1, policy, () => 0.999)).toBe(99);
    expect(backoffDelay(2, policy, () => 0.999)).toBe(199);
    expect(backoffDelay(3, policy, () => 0.5)).toBe(200);
    expect(backoffDelay(10, policy, () => 0.999)).toBe(999);
    expect(backoffDelay(3, policy, () => 0)).toBe(0);
  });
});

describe('isRetryable', () => {
  it.each([429, 500, 502, 503, 504])('retries HTTP %i', (status) => expect(isRetryable(apiError(status))).toBe(true));
  it.each([400, 401, 403, 404, 409, 422])('never retries HTTP %i', (status) =>
    expect(isRetryable(apiError(status))).toBe(false),
  );
  it('retries network errors, timeouts and a 2xx with an unusable body, not a 2xx that was read', () => {
    expect(isRetryable(new ChargebeeNetworkError('ECONNREFUSED'))).toBe(true);
    expect(isRetryable(new ChargebeeTimeoutError(100))).toBe(true);
    expect(isRetryable(apiError(200, { unusableBody: true }))).toBe(true);
    expect(isRetryable(apiError(200))).toBe(false);
    expect(isRetryable(new TypeError('bug'))).toBe(false);
  });
  it('reads Retry-After only on a 429', () => {
    expect(retryAfterMs(apiError(429, { retryAfterSeconds: 2 }))).toBe(2000);
    expect(retryAfterMs(apiError(503, { retryAfterSeconds: 2 }))).toBeUndefined();
    expect(retryAfterMs(apiError(429))).toBeUndefined();
  });
});

describe('withRetries', () => {
  it('returns the first success and counts the attempts', async () => {
    const clock = fakeClock();
    const { call } = scripted([apiError(503), new ChargebeeNetworkError('ECONNRESET')], clock);
    const result = await withRetries(call, { policy, deadline: 3000, timeoutMs: 1000, clock, random: () => 0.5 });
    expect(result).toEqual({ ok: true, value: 'ok', attempts: 3 });
    expect(clock.sleeps).toEqual([50, 100]);
  });

  it('stops at once on an answer a retry would not change', async () => {
    const clock = fakeClock();
    const { call, attempts } = scripted([apiError(401)], clock);
    const result = await withRetries(call, { policy, deadline: 3000, timeoutMs: 1000, clock });
    expect(result).toMatchObject({ ok: false, stop: 'not_retryable', attempts: 1 });
    expect(attempts).toHaveLength(1);
  });

  it('stops after maxAttempts retryable failures', async () => {
    const clock = fakeClock();
    const { call } = scripted(Array(10).fill(apiError(500)), clock);
    const result = await withRetries(call, { policy, deadline: 60_000, timeoutMs: 1000, clock, random: () => 0.5 });
    expect(result).toMatchObject({ ok: false, stop: 'attempts_exhausted', attempts: 4 });
  });

  it('makes one attempt when retries are off', async () => {
    const { call } = scripted([apiError(500)]);
    expect(
      await withRetries(call, { policy: false, deadline: Infinity, timeoutMs: 1000, clock: fakeClock() }),
    ).toMatchObject({ stop: 'attempts_exhausted', attempts: 1 });
  });

  it('gives each attempt the smaller of the call timeout and the time left, and ends within the budget', async () => {
    const clock = fakeClock();
    const { call, attempts } = scripted(Array(10).fill(new ChargebeeTimeoutError(400)), clock, 10_000);
    const result = await withRetries(call, {
      policy: { ...policy, maxAttempts: 10 },
      deadline: 1000,
      timeoutMs: 400,
      clock,
      random: () => 0,
    });
    expect(attempts.map((a) => a.timeoutMs)).toEqual([400, 400, 200]);
    expect(result).toMatchObject({ ok: false, stop: 'budget_exhausted', attempts: 3 });
    expect(clock.now()).toBeLessThanOrEqual(1000);
  });

  it('honours Retry-After when it fits the time left', async () => {
    const clock = fakeClock();
    const { call } = scripted([apiError(429, { retryAfterSeconds: 1 })], clock);
    const result = await withRetries(call, { policy, deadline: 3000, timeoutMs: 1000, clock });
    expect(result).toMatchObject({ ok: true, attempts: 2 });
    expect(clock.sleeps).toEqual([1000]);
  });

  it('stops with budget_exhausted and reports the wait when Retry-After does not fit', async () => {
    const clock = fakeClock();
    const { call, attempts } = scripted([apiError(429, { retryAfterSeconds: 5 })], clock);
    const result = await withRetries(call, { policy, deadline: 3000, timeoutMs: 1000, clock });
    expect(result).toMatchObject({ ok: false, stop: 'budget_exhausted', attempts: 1, retryAfterMs: 5000 });
    expect(attempts).toHaveLength(1);
    expect(clock.sleeps).toEqual([]);
  });

  it('backs off on a 429 without Retry-After', async () => {
    const clock = fakeClock();
    const { call } = scripted([apiError(429)], clock);
    await withRetries(call, { policy, deadline: 3000, timeoutMs: 1000, clock, random: () => 0.5 });
    expect(clock.sleeps).toEqual([50]);
  });

  it('does not start a retry that would have less than the minimum attempt time', async () => {
    const clock = fakeClock();
    const { call, attempts } = scripted(Array(10).fill(apiError(503)), clock, 0);
    clock.advance(0);
    const result = await withRetries(call, {
      policy,
      deadline: MIN_ATTEMPT_MS + 10,
      timeoutMs: 1000,
      clock,
      random: () => 0.999,
    });
    expect(result).toMatchObject({ stop: 'budget_exhausted', attempts: 1 });
    expect(attempts).toHaveLength(1);
  });

  it('always makes the first attempt, even when the budget is spent already', async () => {
    const clock = fakeClock();
    clock.advance(5000);
    const { call, attempts } = scripted([], clock);
    expect(await withRetries(call, { policy, deadline: 3000, timeoutMs: 1000, clock })).toMatchObject({ ok: true });
    expect(attempts[0].timeoutMs).toBe(MIN_ATTEMPT_MS);
  });

  it('asks the gate before every attempt and stops with circuit_open when refused', async () => {
    const clock = fakeClock();
    const { call, attempts } = scripted([apiError(503), apiError(503)], clock);
    let allowed = 2;
    const seen: unknown[] = [];
    const result = await withRetries(call, {
      policy,
      deadline: 3000,
      timeoutMs: 1000,
      clock,
      random: () => 0,
      gate: () => allowed-- > 0,
      onAttempt: (e) => seen.push(e),
    });
    expect(result).toMatchObject({
      ok: false,
      stop: 'circuit_open',
      attempts: 2,
      error: expect.any(ChargebeeApiError),
    });
    expect(attempts).toHaveLength(2);
    expect(seen).toHaveLength(2);
  });

  it('reports the gate error when the first attempt is refused', async () => {
    const { call, attempts } = scripted([]);
    const gateError = new Error('open');
    const result = await withRetries(call, {
      policy,
      deadline: 3000,
      timeoutMs: 1000,
      clock: fakeClock(),
      gate: () => false,
      gateError: () => gateError,
    });
    expect(result).toEqual({ ok: false, stop: 'circuit_open', attempts: 0, error: gateError });
    expect(attempts).toHaveLength(0);
  });
});

describe('queueBackoffDelay (equal jitter, for the background queue)', () => {
  it('draws between half and all of base * 2^(retry-1), capped at maxDelayMs', () => {
    expect(queueBackoffDelay(1, policy, () => 0)).toBe(50);
    expect(queueBackoffDelay(1, policy, () => 0.999)).toBe(99);
    expect(queueBackoffDelay(3, policy, () => 0)).toBe(200);
    expect(queueBackoffDelay(20, policy, () => 0)).toBe(500);
  });
});

describe('queueRetryDelay', () => {
  const queue = { baseDelayMs: 1000, maxDelayMs: 60_000, maxAgeMs: 24 * 3600 * 1000 };

  it("honours Chargebee's Retry-After up to maxDelayMs or a minute, whichever is longer", () => {
    expect(queueRetryDelay(0, 1, queue)).toBe(0);
    expect(queueRetryDelay(30_000, 1, queue)).toBe(30_000);
    expect(queueRetryDelay(3_600_000, 1, queue)).toBe(60_000);
    expect(queueRetryDelay(3_600_000, 1, { ...queue, maxDelayMs: 300 })).toBe(60_000);
    expect(queueRetryDelay(3_600_000, 1, { ...queue, maxDelayMs: 120_000 })).toBe(120_000);
  });

  it('falls back to the backoff without one, or for one past the maximum age', () => {
    const backoff = queueBackoffDelay(2, queue, () => 0.5);
    expect(queueRetryDelay(undefined, 2, queue, () => 0.5)).toBe(backoff);
    expect(queueRetryDelay(3_000_000_000, 2, queue, () => 0.5)).toBe(backoff);
    expect(queueRetryDelay(Infinity, 2, queue, () => 0.5)).toBe(backoff);
    expect(queueRetryDelay(NaN, 2, queue, () => 0.5)).toBe(backoff);
  });
});
