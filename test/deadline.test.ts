import {
  callAndForget,
  DeadlineError,
  deadlineIn,
  MAX_TIMER_MS,
  runUntil,
  settleWithin,
  timerDelay,
  type DeadlineSignal,
} from '../src/base/time';

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

describe('runUntil', () => {
  it('hands the work a signal that aborts once at the deadline, and rejects with a DeadlineError', async () => {
    const calls: string[] = [];
    let seen: DeadlineSignal | undefined;
    const run = runUntil(deadlineIn(30), 'The work', (signal) => {
      seen = signal;
      const removed = () => calls.push('removed');
      signal.addEventListener('abort', () => calls.push('first'));
      signal.addEventListener('abort', () => {
        throw new Error('a listener that throws');
      });
      signal.addEventListener('abort', removed);
      signal.addEventListener('abort', () => calls.push('last'));
      signal.removeEventListener('abort', removed);
      return new Promise<never>(() => {});
    });
    await expect(run).rejects.toThrow(new DeadlineError('The work', 30));
    expect(seen?.aborted).toBe(true);
    expect(calls).toEqual(['first', 'last']);
    expect(seen?.toAbortSignal().aborted).toBe(true);
    seen?.addEventListener('abort', () => calls.push('too late'));
    expect(calls).toEqual(['first', 'last']);
  });

  it('aborts with the linked signal, whose abort a real AbortSignal of the work follows', async () => {
    const linked = new AbortController();
    let real: AbortSignal | undefined;
    const run = runUntil(
      deadlineIn(5000),
      'The work',
      (signal) => {
        real = signal.toAbortSignal();
        return new Promise<string>((resolve) => signal.addEventListener('abort', () => resolve('stopped')));
      },
      linked.signal,
    );
    expect(real?.aborted).toBe(false);
    linked.abort();
    await expect(run).resolves.toBe('stopped');
    expect(real?.aborted).toBe(true);
  });

  it('settles as the work does, and turns its throw into a rejection', async () => {
    await expect(runUntil(deadlineIn(5000), 'x', async (signal) => signal.aborted)).resolves.toBe(false);
    await expect(
      runUntil(deadlineIn(5000), 'x', () => {
        throw new Error('at once');
      }),
    ).rejects.toThrow('at once');
  });
});
