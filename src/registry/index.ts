// The registry's public names, re-exported by the package's index.
export type { PortalSessionRegistry, RegisteredPortalSession, RegistryAddResult } from './registry';
export { MemoryPortalSessionRegistry, type MemoryPortalSessionRegistryOptions } from './memory';
export { PortalSessionRegistryError } from './open-portal-sessions';
export type { LogoutCustomerOptions } from '../options/types';
