import { closestName } from './suggest';

/**
 * Checks of options at setup, for the middleware and for every store and registry: each throws a
 * `TypeError` whose message starts with its owner (`chargebeePortalLogout: `, `RedisDeferredLogoutStore: `)
 * and names the option, the problem and the fix. Durations are whole milliseconds: a fraction is rounded
 * here, once, so that no store or script ever sees one.
 */
export class OptionCheck {
  constructor(readonly owner: string) {}

  /** Throws the setup error. */
  fail(message: string): never {
    throw new TypeError(`${this.owner}: ${message}`);
  }

  /** Refuses keys that are not in `known`, suggesting the closest one (`budgetMS` → `budgetMs`). */
  keys(value: object, known: ReadonlySet<string>, where = ''): void {
    for (const key of Object.keys(value)) {
      if (known.has(key)) continue;
      const guess = closestName(key, known);
      const hint = guess === undefined ? '' : `did you mean ${where}${guess}? `;
      this.fail(`unknown option ${where}${key} (${hint}known: ${[...known].join(', ')})`);
    }
  }

  /** `undefined`, or an object with only `known` keys. */
  object(value: unknown, name: string, known: ReadonlySet<string>, shape = 'an object'): Record<string, unknown> {
    if (value === undefined) return {};
    if (!isPlainObject(value)) this.fail(`option ${name} must be ${shape}`);
    this.keys(value, known, `${name}.`);
    return value;
  }

  /** `false`, or an object with only `known` keys (empty for `undefined`). */
  section(value: unknown, name: string, known: ReadonlySet<string>): Record<string, unknown> | false {
    if (value === false) return false;
    return this.object(value, name, known, 'false or an object');
  }

  /** A whole number from `min` to `max`, or `fallback` when absent. */
  whole(value: unknown, name: string, fallback: number, min: number, max: number): number {
    if (value === undefined) return fallback;
    if (!Number.isInteger(value) || (value as number) < min || (value as number) > max)
      this.fail(`option ${name} must be a whole number from ${min} to ${max}`);
    return value as number;
  }

  /**
   * A number of milliseconds from `min` to `max` (finite), rounded to a whole one; `fallback` when absent.
   */
  ms(value: unknown, name: string, fallback: number, min: number, max: number = MAX_DURATION_MS): number {
    if (value === undefined) return fallback;
    if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) {
      const range = max !== MAX_DURATION_MS ? ` from ${min} to ${max}` : min <= 1 ? '' : ` of at least ${min}`;
      this.fail(
        `option ${name} must be a ${min <= 1 && max === MAX_DURATION_MS ? 'positive ' : ''}number of milliseconds${range}`,
      );
    }
    return Math.round(value);
  }

  /** A positive finite number (a rate), or `fallback` when absent. */
  positive(value: unknown, name: string, fallback: number, unit: string): number {
    if (value === undefined) return fallback;
    if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0)
      this.fail(`option ${name} must be a positive number of ${unit}`);
    return value;
  }

  /** A boolean, or `fallback` when absent. */
  boolean(value: unknown, name: string, fallback: boolean): boolean {
    if (value === undefined) return fallback;
    if (typeof value !== 'boolean') this.fail(`option ${name} must be a boolean`);
    return value;
  }

  /** A function, or `undefined` when absent. */
  func(value: unknown, name: string, shape = 'a function'): AnyFunction | undefined {
    if (value === undefined) return undefined;
    if (typeof value !== 'function') this.fail(`option ${name} must be ${shape}, got ${typeOf(value)}`);
    return value as AnyFunction;
  }

  /**
   * An object with these methods (a store, a registry, a provider), or `undefined` when absent. `see` names
   * the type that documents it; `shape` says what else the option may be.
   */
  implementation(
    value: unknown,
    name: string,
    methods: readonly string[],
    see: string,
    shape = 'an object',
  ): object | undefined {
    if (value === undefined) return undefined;
    if (typeof value !== 'object' || value === null) this.fail(`option ${name} must be ${shape} (see ${see})`);
    for (const method of methods) {
      if (typeof (value as Record<string, unknown>)[method] !== 'function')
        this.fail(`option ${name} must have a ${method}() method (see ${see})`);
    }
    return value;
  }
}

/** Any function, as an option may be one: the caller knows its signature. */
export type AnyFunction = (...args: never[]) => unknown;

/** Longest duration an option takes: a year and a day, well past any timer or lease that makes sense. */
export const MAX_DURATION_MS = 366 * 24 * 3600 * 1000;

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** `typeof`, with `null` and arrays named as such, for messages. */
export function typeOf(value: unknown): string {
  return value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value;
}
