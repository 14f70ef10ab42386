export { chargebeePortalLogout, DEFAULT_CLOSE_TIMEOUT_MS, type PortalLogoutMiddleware } from './middleware/middleware';
export type {
  ChargebeePortalLogoutOptions,
  BusinessEntityOptions,
  RequestValue,
  RetryOptions,
  DeferredLogoutOptions,
} from './options/types';
export {
  ChargebeeClient,
  DEFAULT_TIMEOUT_MS,
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
  PortalLogoutError,
} from './chargebee/errors';
export type {
  PortalLogoutOutcome,
  PortalSessionOutcome,
  PortalSessionStatus,
  PortalSessionReason,
} from './logout/outcome';
export {
  MemoryDeferredLogoutStore,
  DEFAULT_MAX_QUEUED,
  type DeferredLogoutStore,
  type DeferredLogoutJob,
  type DeferReason,
} from './reliability/deferred-queue';
export { DEFAULT_BUDGET_MS, DEFAULT_RETRY_POLICY, backoffDelay, isRetryable } from './reliability/retry';
export { DEFAULT_CIRCUIT_BREAKER, type CircuitBreakerOptions } from './reliability/circuit-breaker';
export { isCrossSiteSafeRequest } from './middleware/cross-site';
export type { PortalSessionStore } from './remembered/store';
export type { PortalSessionCookieOptions } from './remembered/cookie-store';
export type { RememberedPortalSession } from './remembered/list';
export {
  ORIGIN_HEADERS,
  normalizeIp,
  deviceFromUserAgent,
  emailHeaders,
  eventSuppressionHeaders,
  type EventSuppression,
} from './middleware/origin-headers';
export { isValidPortalSessionId, isValidBusinessEntityId, hashPortalSessionId } from './identifiers';
export { signCookieValue, unsignCookieValue } from './remembered/cookie-signature';
