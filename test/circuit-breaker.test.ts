import { CircuitBreaker } from '../src/reliability/circuit-breaker';
import { SingleFlight } from '../src/reliability/single-flight';

function breaker(failureThreshold = 3, coolOffMs = 1000) {
  let now = 0;
  const b = new CircuitBreaker({ failureThreshold, coolOffMs }, () => now);
  return { b, advance: (ms: number) => (now += ms) };
}

function fail(b: CircuitBreaker, times: number): void {
  for (let i = 0; i < times; i++) b.record('failure', b.acquire());
}

describe('CircuitBreaker', () => {
  it('stays closed below the threshold and opens at it', () => {
    const { b } = breaker(3);
    fail(b, 2);
    expect(b.state).toBe('closed');
    fail(b, 1);
    expect(b.state).toBe('open');
    expect(b.acquire()).toBeUndefined();
  });

  it('counts consecutive failures only: a success resets the count', () => {
    const { b } = breaker(3);
    fail(b, 2);
    b.record('success', b.acquire());
    fail(b, 2);
    expect(b.state).toBe('closed');
  });

  it('lets one probe through after the cool-off, and closes on its success', () => {
    const { b, advance } = breaker(1, 1000);
    fail(b, 1);
    advance(999);
    expect(b.acquire()).toBeUndefined();
    advance(1);
    expect(b.state).toBe('half_open');
    const probe = b.acquire();
    expect(probe).toMatchObject({ probe: true });
    expect(b.acquire()).toBeUndefined();
    b.record('success', probe);
    expect(b.state).toBe('closed');
    expect(b.acquire()).toMatchObject({ probe: false });
  });

  it('reopens for a full cool-off when the probe fails', () => {
    const { b, advance } = breaker(1, 1000);
    fail(b, 1);
    advance(1000);
    b.record('failure', b.acquire());
    expect(b.state).toBe('open');
    advance(999);
    expect(b.state).toBe('open');
    advance(1);
    expect(b.state).toBe('half_open');
  });

  it('frees the probe slot on a neutral result without changing state', () => {
    const { b, advance } = breaker(1, 1000);
    fail(b, 1);
    advance(1000);
    b.record('neutral', b.acquire());
    expect(b.state).toBe('half_open');
    expect(b.acquire()).toMatchObject({ probe: true });
  });

  it('ignores results of calls that started before it opened or closed', () => {
    const { b, advance } = breaker(2, 1000);
    const early = b.acquire();
    fail(b, 2);
    expect(b.state).toBe('open');
    b.record('success', early); // started while closed: stale
    expect(b.state).toBe('open');
    advance(1000);
    const late = b.acquire();
    expect(b.isCurrent(early!)).toBe(false);
    b.record('failure', early); // stale: does not reopen the half-open breaker
    expect(b.state).toBe('half_open');
    b.record('success', late);
    expect(b.state).toBe('closed');
  });

  it('tells a logout under an older permit to stop retrying', () => {
    const { b } = breaker(1);
    const permit = b.acquire()!;
    expect(b.isCurrent(permit)).toBe(true);
    fail(b, 1);
    expect(b.isCurrent(permit)).toBe(false);
  });

  it('closes on a success recorded without a permit (a background attempt)', () => {
    const { b } = breaker(1);
    fail(b, 1);
    b.record('success');
    expect(b.state).toBe('closed');
  });
});

describe('SingleFlight', () => {
  it('shares one run between concurrent callers of a key, and runs again once it settled', async () => {
    const flights = new SingleFlight<number>();
    let runs = 0;
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const work = async () => {
      runs += 1;
      await gate;
      return runs;
    };
    const a = flights.run('k', work);
    const b = flights.run('k', work);
    const other = flights.run('other', async () => 99);
    expect(flights.size).toBe(2);
    release();
    expect(await Promise.all([a, b, other])).toEqual([1, 1, 99]);
    expect(flights.size).toBe(0);
    expect(await flights.run('k', work)).toBe(2);
  });

  it('shares a rejection too, and forgets the key after it', async () => {
    const flights = new SingleFlight<number>();
    const boom = async () => {
      throw new Error('boom');
    };
    await expect(Promise.all([flights.run('k', boom), flights.run('k', boom)])).rejects.toThrow('boom');
    expect(flights.size).toBe(0);
  });
});
