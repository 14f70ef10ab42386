/**
 * The names this package records OpenTelemetry data under: the instrumentation scope, the span and metric
 * names, the attribute keys and the histogram buckets. Plain constants with no import, so that dashboards,
 * tests and the rest of observability/ share one spelling, and reading a name never loads the API.
 */

/** The instrumentation scope: the package's name (its version comes from `base/version`). */
export const INSTRUMENTATION_NAME = 'chargebee-portal-logout';

export const SPAN_NAMES = {
  logout: 'chargebee_portal_logout.logout',
  deferredAttempt: 'chargebee_portal_logout.deferred_attempt',
} as const;

export const METRIC_NAMES = {
  portalSessions: 'chargebee_portal_logout.portal_sessions',
  logoutDuration: 'chargebee_portal_logout.logout.duration',
  callDuration: 'chargebee_portal_logout.chargebee.call.duration',
  attempts: 'chargebee_portal_logout.portal_session.attempts',
  queueDepth: 'chargebee_portal_logout.deferred_queue.depth',
  queueOldestAge: 'chargebee_portal_logout.deferred_queue.oldest_job.age',
  circuitState: 'chargebee_portal_logout.circuit.state',
} as const;

/** Attribute keys: semantic-convention ones where they apply, the package's own under its namespace. */
export const ATTRIBUTES = {
  result: 'chargebee_portal_logout.result',
  portalSessionCount: 'chargebee_portal_logout.portal_session.count',
  idHashes: 'chargebee_portal_logout.portal_session.id_hashes',
  idHash: 'chargebee_portal_logout.portal_session.id_hash',
  businessEntityIds: 'chargebee_portal_logout.business_entity.ids',
  businessEntityId: 'chargebee_portal_logout.business_entity.id',
  deferred: 'chargebee_portal_logout.deferred',
  background: 'chargebee_portal_logout.background',
  status: 'chargebee_portal_logout.status',
  reason: 'chargebee_portal_logout.reason',
  attempt: 'chargebee_portal_logout.attempt',
  site: 'chargebee_portal_logout.site',
  circuitState: 'chargebee_portal_logout.circuit.state',
  errorType: 'error.type',
  httpStatusCode: 'http.response.status_code',
} as const;

/** Buckets of the duration histograms, in seconds: those of OpenTelemetry's HTTP duration metrics. */
export const DURATION_BUCKETS_S = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10];
/** Buckets of the attempts histogram: a count of calls, so small integers. */
export const ATTEMPT_BUCKETS = [0, 1, 2, 3, 4, 5, 6, 8, 10, 15, 20];

/** The values of the circuit-state gauge's state attribute: each site reports 1 for one of them, 0 for the others. */
export const CIRCUIT_STATES = ['closed', 'open', 'half_open'] as const;
export type CircuitState = (typeof CIRCUIT_STATES)[number];
