import type { Request } from 'express';
import { isValidBusinessEntityId } from '../base/identifiers';
import { errorFields, type Log } from '../base/logging';
import {
  deviceFromUserAgent,
  emailHeaders,
  eventSuppressionHeaders,
  normalizeIp,
  ORIGIN_HEADERS,
} from '../base/origin-headers';
import { settle, type Settled } from '../base/time';
import type { Settings } from '../options/build';

/** What a logout takes from the request besides the remembered IDs. */
export interface RequestValues {
  /** Origin and event headers, valid for sending. */
  headers: Record<string, string>;
  /** Entity for portal sessions remembered without one. */
  defaultEntityId?: string;
}

/**
 * Calls one of the app's functions of the request. It may return a value or a promise, throw, reject or
 * never settle: what it gave by `deadline`, else `undefined` with a warning that ends with `consequence`.
 * A plain value comes back at once (no promise); a promise, as a promise. `personal`: the function handles
 * personal data, so its error's message is not logged (only its type).
 */
export function appValue(
  fn: (req: Request) => unknown,
  req: Request,
  deadline: number,
  log: Log,
  what: string,
  personal: boolean,
  consequence = `no ${what} is sent`,
): unknown {
  const settled = settle(() => fn(req), deadline);
  if (!(settled instanceof Promise)) return valueOf(settled, log, what, personal, consequence);
  return settled.then((s) => valueOf(s, log, what, personal, consequence));
}

function valueOf(settled: Settled<unknown>, log: Log, what: string, personal: boolean, consequence: string): unknown {
  if (settled.status === 'ok') return settled.value;
  const failure = settled.status === 'timeout' ? 'did not answer within the budget' : settled.status;
  const err = settled.status === 'timeout' ? undefined : errorFields(settled.error);
  log.warn({ err: personal && err ? { type: err.type } : err }, `the ${what} function ${failure}; ${consequence}`);
  return undefined;
}

const asString = (value: unknown): string | undefined => (typeof value === 'string' ? value : undefined);

/**
 * The origin headers (IP, device, email) and event headers of this request, and the default business
 * entity when `needsEntity` (the value in `known` when the logout already asked for it). The app's functions
 * run at once, each bounded by `deadline`; when they all answer with plain values (the default rules do), no
 * promise is made.
 */
export function requestValues(
  settings: Settings,
  req: Request,
  deadline: number,
  log: Log,
  needsEntity: boolean,
  known?: { entity: unknown },
): RequestValues | Promise<RequestValues> {
  const ip = appValue(settings.ip, req, deadline, log, 'ip', true);
  const device = appValue(settings.device, req, deadline, log, 'device', true);
  const email = appValue(settings.email, req, deadline, log, 'email', true);
  const entity = !needsEntity
    ? undefined
    : known
      ? known.entity
      : appValue(settings.defaultEntity, req, deadline, log, 'businessEntityId', false);
  if (ip instanceof Promise || device instanceof Promise || email instanceof Promise || entity instanceof Promise)
    return Promise.all([ip, device, email, entity]).then(([i, d, e, b]) => build(settings, log, i, d, e, b));
  return build(settings, log, ip, device, email, entity);
}

function build(
  settings: Settings,
  log: Log,
  ip: unknown,
  device: unknown,
  email: unknown,
  entity: unknown,
): RequestValues {
  const headers: Record<string, string> = eventSuppressionHeaders(settings.suppressEvents);
  const cleanIp = normalizeIp(asString(ip));
  if (cleanIp) headers[ORIGIN_HEADERS.ip] = cleanIp;
  const cleanDevice = deviceFromUserAgent(asString(device));
  if (cleanDevice) headers[ORIGIN_HEADERS.device] = cleanDevice;
  const mail = emailHeaders(asString(email));
  for (const name in mail) headers[name] = mail[name];
  const entityId = asString(entity);
  if (entityId === undefined) return { headers };
  if (!isValidBusinessEntityId(entityId)) {
    log.warn({}, 'businessEntityId function gave an invalid entity ID; none is sent');
    return { headers };
  }
  return { headers, defaultEntityId: entityId };
}
