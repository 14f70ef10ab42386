/** The `chargebee-portal-logout/testing` entry point: a loopback emulator of Chargebee's portal-session API. */
export { ChargebeeEmulator } from './emulator';
export type {
  ChargebeeErrorBody,
  CreateSessionInput,
  EmulatedPortalSession,
  EmulatorFault,
  EmulatorOptions,
  EmulatorSiteConfig,
  LinkedCustomer,
  PortalSessionStatus,
  RecordedRequest,
} from './emulator';
