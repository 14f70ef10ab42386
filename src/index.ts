/**
 * Express middleware that logs customers out of their Chargebee self-serve portal sessions when they log
 * out of the app, the Chargebee client it uses, and the types of its options, outcome and stores.
 * @module chargebee-portal-logout
 */
// Only what an app needs is exported; the rules the middleware is made of (origin headers, retry
// maths, cookie signing) are internal, and tests import them from their modules.
import './augmentations'; // the typings of req.session and res.locals

export { chargebeePortalLogout, type PortalLogoutMiddleware } from './middleware/middleware';
export type {
  ChargebeePortalLogoutOptions,
  BusinessEntityOptions,
  RequestValue,
  RetryOptions,
  DeferredLogoutOptions,
  TelemetryOptions,
  TracerProviderLike,
  MeterProviderLike,
  PortalSessionExpiryOptions,
} from './options/types';
export type { CircuitBreakerOptions } from './reliability/circuit-breaker';
export type { PortalSessionCookieOptions } from './remembered/cookie-store';
export type { EventSuppression } from './base/origin-headers';
export type { PortalSessionStore } from './remembered/store';
export type { RememberedPortalSession } from './remembered/list';
export type {
  PortalLogoutOutcome,
  PortalSessionOutcome,
  PortalSessionStatus,
  PortalSessionReason,
  PortalLogoutReason,
} from './base/outcome';
export type {
  PortalLogoutStats,
  DeferredQueueSnapshot,
  CircuitSnapshot,
  DeferredResultStatus,
} from './observability/stats';
export type { HealthCheckOptions, HealthReport, HealthCheckHandler } from './observability/health';
export {
  ChargebeeClient,
  type ChargebeeClientOptions,
  type CallOptions,
  type ChargebeeHeaders,
  type CreatePortalSessionParams,
  type PortalSession,
  type ChargebeePortalSessionState,
  type LinkedCustomer,
} from './chargebee/client';
export {
  ChargebeeError,
  ChargebeeApiError,
  ChargebeeTimeoutError,
  ChargebeeNetworkError,
  ChargebeeCircuitOpenError,
  ChargebeeResponseTooLargeError,
} from './base/errors';
export { PortalLogoutError } from './base/outcome';
export { MemoryDeferredLogoutStore } from './queue/memory-store';
export type {
  DeferredLogoutStore,
  DeferredLogoutJob,
  DeferReason,
  ScheduledLogoutReason,
  DueJobs,
  StoreFigures,
} from './queue/store';
export type { DrainRate } from './reliability/rate-limit';
export { hashPortalSessionId } from './base/identifiers';
export { MemoryPortalSessionRegistry, type MemoryPortalSessionRegistryOptions } from './registry/memory';
export type { PortalSessionRegistry, RegisteredPortalSession, RegistryAddResult } from './registry/registry';
export { PortalSessionRegistryError } from './registry/open-portal-sessions';
export type { LogoutCustomerOptions } from './logout/customer';
