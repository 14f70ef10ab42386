/**
 * The `chargebee-portal-logout/testing` entry point: a loopback emulator of Chargebee's portal-session API.
 * @module chargebee-portal-logout/testing
 */
export { ChargebeeEmulator } from './emulator/emulator';
export type {
  ChargebeeErrorBody,
  ChargebeePortalSessionState,
  CreateSessionInput,
  EmulatedPortalSession,
  EmulatorFault,
  EmulatorOptions,
  EmulatorRateLimit,
  EmulatorRateLimitStats,
  EmulatorSiteConfig,
  LinkedCustomer,
  RecordedRequest,
} from './emulator/types';
