import type { Request } from 'express';
import { MemoryPortalSessionRegistry } from '../registry/memory';
import type { PortalSessionRegistry } from '../registry/registry';
import type { ChargebeePortalLogoutOptions } from './types';

/** The registry options after validation. */
export interface RegistrySettings {
  /** `undefined` when the app turned the registry off (`registry: false`). */
  registry: PortalSessionRegistry | undefined;
  /** Whether a logout also ends the customer's other portal sessions; `undefined` when never. */
  everywhere: ((req: Request) => unknown) | undefined;
  /** The signed-in user's customer ID, from the app. */
  customerId: ((req: Request) => unknown) | undefined;
}

const REGISTRY_METHODS = ['add', 'list', 'remove'] as const;

/**
 * Validates `registry`, `everywhere` and `customerId`. `fail` throws the setup `TypeError`; `unsignedStore`
 * is true when the remembered portal sessions live where the user can edit them (an unsigned cookie).
 */
export function normalizeRegistry(
  o: ChargebeePortalLogoutOptions,
  fail: (message: string) => never,
  unsignedStore: boolean,
): RegistrySettings & { warnings: string[] } {
  const warnings: string[] = [];
  let registry: PortalSessionRegistry | undefined;
  if (o.registry === undefined) registry = new MemoryPortalSessionRegistry();
  else if (o.registry === false) registry = undefined;
  else {
    const custom = o.registry as unknown as Record<string, unknown>;
    if (typeof custom !== 'object' || custom === null)
      fail('option registry must be false or an object (see PortalSessionRegistry)');
    for (const method of REGISTRY_METHODS) {
      if (typeof custom[method] !== 'function')
        fail(`option registry must have a ${method}() method (see PortalSessionRegistry)`);
    }
    registry = o.registry;
  }

  if (o.customerId !== undefined && typeof o.customerId !== 'function')
    fail(`option customerId must be a function (req) => customer ID, got ${typeof o.customerId}`);
  const given: unknown = o.everywhere;
  let everywhere: RegistrySettings['everywhere'];
  if (given === true) everywhere = () => true;
  else if (typeof given === 'function') everywhere = given as RegistrySettings['everywhere'];
  else if (given !== undefined && given !== false)
    fail(`option everywhere must be a boolean or a function (req) => boolean, got ${typeof given}`);

  if (everywhere && !registry)
    fail("can't pass everywhere and registry: false together: signing out everywhere reads the registry");
  if (everywhere && !o.customerId) {
    if (unsignedStore)
      fail(
        "can't pass everywhere with an unsigned cookie store and no customerId: a user could edit the cookie " +
          'to name another customer; set customerId: (req) => ..., or sign the cookie',
      );
    warnings.push(
      'everywhere is on without a customerId option: the customer is read from the portal sessions this app ' +
        'session remembered, so a sign-in that opened none ends nothing elsewhere; set customerId: (req) => ...',
    );
  }
  return { registry, everywhere, customerId: o.customerId, warnings };
}
