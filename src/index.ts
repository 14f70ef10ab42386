export { chargebeePortalLogout, DEFAULT_CLOSE_TIMEOUT_MS, type PortalLogoutMiddleware } from './middleware';
export type { ChargebeePortalLogoutOptions, BusinessEntityOptions, RequestValue, RetryOptions, DeferredLogoutOptions } from './options';
export {
  ChargebeeClient,
  DEFAULT_TIMEOUT_MS,
  type ChargebeeClientOptions,
  type CallOptions,
  type ChargebeeHeaders,
  type CreatePortalSessionParams,
  type PortalSession,
  type LinkedCustomer,
} from './client';
export { ChargebeeError, ChargebeeApiError, ChargebeeTimeoutError, ChargebeeNetworkError, ChargebeeCircuitOpenError, PortalLogoutError } from './errors';
export type { PortalLogoutOutcome, PortalSessionOutcome, PortalSessionStatus, PortalSessionReason } from './outcome';
export { MemoryDeferredLogoutStore, DEFAULT_MAX_QUEUED, type DeferredLogoutStore, type DeferredLogoutJob, type DeferReason } from './deferred-queue';
export { DEFAULT_BUDGET_MS, DEFAULT_RETRY_POLICY, backoffDelay, isRetryable } from './retry';
export { DEFAULT_CIRCUIT_BREAKER, type CircuitBreakerOptions } from './circuit-breaker';
export { isCrossSiteSafeRequest } from './cross-site';
export type { PortalSessionStore } from './store';
export type { PortalSessionCookieOptions } from './cookie-store';
export type { RememberedPortalSession } from './remembered';
export {
  ORIGIN_HEADERS,
  normalizeIp,
  deviceFromUserAgent,
  emailHeaders,
  eventSuppressionHeaders,
  type EventSuppression,
} from './origin-headers';
export { isValidPortalSessionId, isValidBusinessEntityId, hashPortalSessionId } from './identifiers';
export { signCookieValue, unsignCookieValue } from './cookie-signature';
