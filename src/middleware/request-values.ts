import type { Request } from 'express';
import { isValidBusinessEntityId } from '../base/identifiers';
import { errorFields, type Log } from '../base/logging';
import type { Settings } from '../options/build';
import { settleWithin } from '../base/time';
import {
  deviceFromUserAgent,
  emailHeaders,
  eventSuppressionHeaders,
  normalizeIp,
  ORIGIN_HEADERS,
} from '../base/origin-headers';

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
 * `personal`: the function handles personal data, so its error's message is not logged (only its type).
 */
export async function appValue(
  fn: (req: Request) => unknown,
  req: Request,
  deadline: number,
  log: Log,
  what: string,
  personal: boolean,
  consequence = `no ${what} is sent`,
): Promise<unknown> {
  const settled = await settleWithin(() => fn(req), deadline);
  if (settled.status === 'ok') return settled.value;
  const failure = settled.status === 'timeout' ? 'did not answer within the budget' : settled.status;
  const err = settled.status === 'timeout' ? undefined : errorFields(settled.error);
  log.warn({ err: personal && err ? { type: err.type } : err }, `the ${what} function ${failure}; ${consequence}`);
  return undefined;
}

const asString = (value: unknown): string | undefined => (typeof value === 'string' ? value : undefined);

/**
 * The origin headers (IP, device, email) and event headers of this request, and the default business
 * entity when `needsEntity`. The app's functions run at once, each bounded by `deadline`.
 */
export async function requestValues(
  settings: Settings,
  req: Request,
  deadline: number,
  log: Log,
  needsEntity: boolean,
): Promise<RequestValues> {
  const [ip, device, email, entity] = await Promise.all([
    appValue(settings.ip, req, deadline, log, 'ip', true).then(asString),
    appValue(settings.device, req, deadline, log, 'device', true).then(asString),
    appValue(settings.email, req, deadline, log, 'email', true).then(asString),
    needsEntity
      ? appValue(settings.defaultEntity, req, deadline, log, 'businessEntityId', false).then(asString)
      : undefined,
  ]);
  const headers: Record<string, string> = { ...eventSuppressionHeaders(settings.suppressEvents) };
  const cleanIp = normalizeIp(ip);
  if (cleanIp) headers[ORIGIN_HEADERS.ip] = cleanIp;
  const cleanDevice = deviceFromUserAgent(device);
  if (cleanDevice) headers[ORIGIN_HEADERS.device] = cleanDevice;
  Object.assign(headers, emailHeaders(email));
  if (entity !== undefined && !isValidBusinessEntityId(entity)) {
    log.warn({}, 'businessEntityId function gave an invalid entity ID; none is sent');
    return { headers };
  }
  return entity === undefined ? { headers } : { headers, defaultEntityId: entity };
}
