import type { Request } from 'express';
import type { Logger } from 'pino';
import type { ChargebeeClient } from '../chargebee/client';
import { ChargebeeApiError, ChargebeeError } from '../base/errors';
import { hashPortalSessionId, isValidPortalSessionId } from '../base/identifiers';
import { errorFields, outcomeFields, safeLog, type Log } from '../base/logging';
import { ORIGIN_HEADERS } from '../base/origin-headers';
import type { CoreSettings } from './settings';
import { callAndForget } from '../base/time';
import type { DeferredLogoutJob } from '../queue/store';
import type { DeferredLogoutQueue } from '../queue/queue';
import { SingleFlight } from '../reliability/single-flight';
import type { RememberedEntry } from '../remembered/list';
import {
  hideId,
  summarize,
  type PortalLogoutOutcome,
  type PortalLogoutReason,
  type PortalSessionOutcome,
} from '../base/outcome';
import { PortalSessionLogout, type PortalSessionResult } from './portal-session-logout';
import { epochNow, now } from '../base/time';

/**
 * The logout of a list of portal sessions, without a framework: given the remembered entries, the origin
 * headers and a deadline, it validates each ID, logs each valid one out once (single flight) with retries
 * behind the circuit breaker, hands what runs out of time to the deferred queue, and reports the outcome
 * (one log line, `onOutcome` per portal session, the counts and telemetry of its queue and breakers). The
 * Express middleware reads a request into a call of
 * {@link LogoutCore.logout}; a logout without a request can make the same call.
 */

/** One logout: which portal sessions, with which headers, by when. */
export interface LogoutCall {
  /**
   * The portal sessions, as remembered: IDs are validated here, an invalid one is reported, never sent.
   * `elsewhere` marks one another app session opened (a sign-out everywhere); its outcome says so.
   */
  portalSessions: ReadonlyArray<RememberedEntry & { elsewhere?: boolean }>;
  /** Origin and event headers shared by every portal session, valid already. */
  headers: Record<string, string>;
  /** Business entity of a portal session remembered without one. */
  defaultEntityId?: string;
  /** When the Chargebee calls and the deferral must be over, on `now()` (base/time). */
  deadline: number;
  /** When the logout began, on `now()` (base/time), for `durationMs`. */
  startedAt: number;
  /** Where the logout's line goes (a request's logger, say). Default: the core's. */
  log?: Log;
  /** Handed to `onOutcome`; `undefined` for a logout without a request. */
  req?: Request;
  /** A failure before the calls (the registry could not be read): the logout `failed`, whatever the calls gave. */
  failure?: { error: Error; reason: PortalLogoutReason };
}

/**
 * Told the outcomes of every logout and of every deferred logout's end (`fromQueue`): the one place where
 * what keeps track of open portal sessions learns which ended. Waits at most until `waitUntil`
 * (`now()`).
 */
export type EndedHook = (
  outcomes: ReadonlyArray<Pick<PortalSessionOutcome, 'status' | 'id' | 'businessEntityId'>>,
  waitUntil: number,
  log: Log,
  fromQueue?: boolean,
) => Promise<void>;

export class LogoutCore {
  private readonly sessions: PortalSessionLogout;
  private readonly flights = new SingleFlight<PortalSessionResult>();
  private readonly clientIds: Map<ChargebeeClient, number>;
  private readonly log: Log;
  private readonly deferredLog: Log;

  constructor(
    private readonly settings: CoreSettings,
    logger: Logger,
    private readonly ended?: EndedHook,
  ) {
    this.log = safeLog(logger);
    this.deferredLog = safeLog(logger, 'deferred');
    this.clientIds = new Map(settings.clients.map((client, i) => [client, i]));
    this.sessions = new PortalSessionLogout(settings, (job, result) => this.reportDeferred(job, result), logger);
    settings.observer.watch({
      queue: this.sessions.queue,
      breakers: this.sessions.breakers,
      clients: settings.clients,
      circuitBreaker: settings.circuitBreaker !== false,
    });
  }

  /** The deferred queue, where scheduled logouts wait too; `undefined` with `deferred: false`. */
  get queue(): DeferredLogoutQueue | undefined {
    return this.sessions.queue;
  }

  /** Logs the portal sessions out and reports the outcome. Never rejects. */
  async logout(call: LogoutCall): Promise<PortalLogoutOutcome> {
    const log = call.log ?? this.log;
    const entries = call.portalSessions;
    // One portal session, the common case, without Promise.all's bookkeeping.
    const portalSessions =
      entries.length === 1
        ? [await this.logoutOne(entries[0], call, log)]
        : await Promise.all(entries.map((entry) => this.logoutOne(entry, call, log)));
    if (this.ended) await this.ended(portalSessions, call.deadline, log);
    const outcome: PortalLogoutOutcome = {
      result: summarize(portalSessions, call.failure?.error),
      portalSessions,
      ...call.failure,
      durationMs: since(call.startedAt),
    };
    writeLog(log, outcome);
    for (const item of portalSessions) this.callOnOutcome(item, call.req, log);
    return outcome;
  }

  /** Drains the deferred queue for at most `timeoutMs`, then closes the clients' keep-alive sockets. */
  async close(timeoutMs: number): Promise<void> {
    try {
      await this.sessions.queue?.close(timeoutMs);
    } finally {
      this.settings.observer.close();
      this.settings.clients.forEach((client) => client.close());
    }
  }

  private async logoutOne(
    entry: LogoutCall['portalSessions'][number],
    call: LogoutCall,
    log: Log,
  ): Promise<PortalSessionOutcome> {
    const started = now();
    const { id } = entry;
    // A portal session another app session opened was registered with its entity, or for the default site:
    // this request's default entity is not its own.
    const businessEntityId = entry.businessEntityId ?? (entry.elsewhere ? undefined : call.defaultEntityId);
    const valid = isValidPortalSessionId(id);
    let result: PortalSessionResult;
    if (!valid) result = { status: 'invalid_id' };
    else {
      const headers =
        businessEntityId === undefined
          ? call.headers
          : { ...call.headers, [ORIGIN_HEADERS.businessEntity]: businessEntityId };
      try {
        // A double click logs the same portal session out twice at once: one upstream call, one shared result.
        result = await this.flights.run(this.flightKey(businessEntityId, id), () =>
          this.sessions.inline(id, businessEntityId, headers, call.deadline),
        );
      } catch (error) {
        // Not Chargebee's doing: a bug. The portal session is reported failed, and the logout goes on.
        log.error({ err: errorFields(error) }, 'unexpected error');
        result = { status: 'failed', error: new ChargebeeError('The logout failed unexpectedly', false) };
      }
    }
    // A result may be shared by two logouts (single flight): each gets an outcome of its own.
    const outcome = { ...result, idHash: hashPortalSessionId(id) } as PortalSessionOutcome;
    if (businessEntityId !== undefined) outcome.businessEntityId = businessEntityId;
    if (entry.elsewhere) outcome.elsewhere = true;
    outcome.durationMs = since(started);
    return hideId(outcome, valid ? id : undefined);
  }

  /** The single-flight key of a portal session: its client (site and key), entity and ID. */
  private flightKey(businessEntityId: string | undefined, id: string): string {
    // The common case, one client and no entity, keys by the ID alone: no new string to hash.
    if (businessEntityId === undefined && this.clientIds.size === 1) return id;
    return `${this.clientIds.get(this.settings.clientFor(businessEntityId))}\n${businessEntityId ?? ''}\n${id}`;
  }

  /** The final result of a deferred logout: one log line and `onOutcome` without a request. */
  private reportDeferred(job: DeferredLogoutJob, result: PortalSessionResult): void {
    const outcome: PortalSessionOutcome = hideId(
      {
        ...result,
        idHash: hashPortalSessionId(job.portalSessionId),
        ...(job.businessEntityId === undefined ? {} : { businessEntityId: job.businessEntityId }),
        deferred: true,
        durationMs: Math.max(0, epochNow() - job.firstAttemptAt),
      },
      job.portalSessionId,
    );
    const entry = { chargebeePortalLogout: { deferred: true, ...outcomeFields(outcome) } };
    const text = `${outcome.status}${outcome.reason ? ` (${outcome.reason})` : ''}`;
    if (isConfigurationFault(outcome)) this.deferredLog.error(entry, `${text} (check the Chargebee site and API key)`);
    else if (outcome.status === 'failed') this.deferredLog.error(entry, `${text}; the portal session may stay open`);
    else this.deferredLog.info(entry, text);
    this.settings.observer.deferredResult(job, outcome);
    void this.ended?.([outcome], now(), this.log, true);
    this.callOnOutcome(outcome, undefined, this.log);
  }

  /** `onOutcome` may throw, reject or never settle: nobody waits for it, and a failure is logged once. */
  private callOnOutcome(outcome: PortalSessionOutcome, req: Request | undefined, log: Log): void {
    const hook = this.settings.onOutcome;
    if (!hook) return;
    callAndForget(
      () => hook(outcome, req),
      (error) => log.warn({ err: errorFields(error) }, 'onOutcome failed; the logout is not affected'),
    );
  }
}

function since(started: number): number {
  return Math.round((now() - started) * 10) / 10;
}

function isConfigurationFault(o: PortalSessionOutcome): boolean {
  return o.error instanceof ChargebeeApiError && o.error.isConfigurationFault;
}

function writeLog(log: Log, outcome: PortalLogoutOutcome): void {
  const configurationFault = outcome.portalSessions.some(isConfigurationFault);
  const level = configurationFault
    ? 'error'
    : outcome.result === 'failed' || outcome.result === 'deferred'
      ? 'warn'
      : 'info';
  if (!log.enabled(level)) return;
  const entry = {
    chargebeePortalLogout: {
      result: outcome.result,
      durationMs: outcome.durationMs,
      portalSessions: outcome.portalSessions.map(outcomeFields),
    },
  };
  log[level](entry, configurationFault ? `${outcome.result} (check the Chargebee site and API key)` : outcome.result);
}
