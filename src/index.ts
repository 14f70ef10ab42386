export { chargebeePortalLogout, type PortalLogoutMiddleware } from './middleware';
export type { ChargebeePortalLogoutOptions, BusinessEntityOptions, RequestValue } from './options';
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
export { ChargebeeError, ChargebeeApiError, ChargebeeTimeoutError, ChargebeeNetworkError, PortalLogoutError } from './errors';
export type { PortalLogoutOutcome, PortalSessionOutcome, PortalSessionStatus } from './outcome';
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
