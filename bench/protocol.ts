/** What bench/run.ts and the app process (bench/app.ts) say to each other over IPC. */

/**
 * The logout routes, in the order of the report: the floor, hand-written axios, the same hand-written axios
 * again on a second path (an A/A control: its ratio to route 2 is what two identical routes differ by in a
 * run), the SDK, ours.
 */
export const ROUTES = ['bare', 'axios', 'axiosAA', 'sdk', 'ours'] as const;
export type RouteName = (typeof ROUTES)[number];

export const ROUTE_LABELS: Record<RouteName, string> = {
  bare: '1 bare (no call)',
  axios: '2 hand-written axios',
  axiosAA: '2′ hand-written axios (A/A)',
  sdk: '3 chargebee SDK',
  ours: '4 our middleware',
};

/** A command to the app; each is answered with `{ id, ok, result | error }`. */
export type AppCommand = { cmd: 'prepare'; count: number; perSession: number } | { cmd: 'stats' } | { cmd: 'close' };

/** What the app sends once it listens. */
export interface AppReady {
  ready: true;
  url: string;
  /** Which options of the reliability work the middleware accepts (route 4 gets their defaults). */
  features: { budgetMs: boolean; retry: boolean; deferred: boolean; circuitBreaker: boolean };
  /** The inline time route 4 may spend on a logout: `budgetMs`'s default when it exists, else `timeoutMs`'s. */
  logoutBudgetMs: number;
}

/** The app's answer to `stats`: per route, and the app process's CPU time since the last `stats`. */
export interface AppStats {
  routes: Record<RouteName, RouteStats>;
  /** User and system CPU time of the app process, in microseconds, since the last `stats` command. */
  cpuUs: number;
}

/** Per route, what its logouts achieved since the last `stats` command. */
export interface RouteStats {
  requests: number;
  portalSessionsEnded: number;
  portalSessionsFailed: number;
  /** Failures by error name and code, e.g. `ChargebeeTimeoutError`. */
  failureKinds: Record<string, number>;
}
