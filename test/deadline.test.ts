import { callAndForget, MAX_TIMER_MS, settleWithin, timerDelay } from '../src/base/time';

describe('timerDelay', () => {
  it('keeps a delay within what setTimeout holds', () => {
    expect(timerDelay(10)).toBe(10);
    expect(timerDelay(3_000_000_000)).toBe(MAX_TIMER_MS);
    expect(timerDelay(Infinity)).toBe(MAX_TIMER_MS);
    expect(timerDelay(-5)).toBe(0);
    expect(timerDelay(NaN)).toBe(0);
  });
});

describe('settleWithin', () => {
  const soon = () => performance.now() + 50;

  it('returns a plain value at once, and reports a throw, a rejection and no answer', async () => {
    expect(await settleWithin(() => 'x', soon())).toEqual({ status: 'ok', value: 'x' });
    expect(await settleWithin(async () => 'y', soon())).toEqual({ status: 'ok', value: 'y' });
    const boom = new Error('boom');
    expect(
      await settleWithin(() => {
        throw boom;
      }, soon()),
    ).toEqual({ status: 'threw', error: boom });
    expect(await settleWithin(() => Promise.reject(boom), soon())).toEqual({ status: 'rejected', error: boom });
    expect(await settleWithin(() => new Promise(() => undefined), soon())).toEqual({ status: 'timeout' });
  });

  it('treats a thenable whose then getter throws as a throw', async () => {
    const hostile = {
      get then(): never {
        throw new Error('getter');
      },
    };
    expect((await settleWithin(() => hostile, soon())).status).toBe('threw');
  });
});

describe('callAndForget', () => {
  it('reports a throw at once and a rejection when it comes', async () => {
    const errors: unknown[] = [];
    callAndForget(
      () => {
        throw new Error('sync');
      },
      (e) => errors.push(e),
    );
    callAndForget(
      () => Promise.reject(new Error('async')),
      (e) => errors.push(e),
    );
    callAndForget(
      () => new Promise(() => undefined),
      (e) => errors.push(e),
    );
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(errors.map((e) => (e as Error).message)).toEqual(['sync', 'async']);
  });
});
