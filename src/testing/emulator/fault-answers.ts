/** What an injected fault answers, and applying a fault to one API request. */
import type { ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import { basicUser, type ApiRequest } from './api';
import { sendShaped } from './body-stream';
import { errorAnswer, HTML_TYPE, safeDecode, send, sendPartial, type Answer } from './http';
import type { EmulatorFault } from './types';

const FAULT_DEFAULTS: Record<number, [code: string, message: string]> = {
  400: ['param_wrong_value', 'A parameter has a wrong value (emulated fault).'],
  401: ['api_authentication_failed', 'Authentication failed (emulated fault).'],
  403: ['api_authorization_failed', 'The API key may not perform this operation (emulated fault).'],
  404: ['resource_not_found', 'The resource was not found (emulated fault).'],
  409: ['invalid_state_for_request', 'The resource is in a state that does not allow this request (emulated fault).'],
  422: ['unable_to_process_request', 'The request could not be processed (emulated fault).'],
  429: ['api_request_limit_exceeded', 'Too many requests for this site; try again later (emulated fault).'],
  500: ['internal_error', 'Internal error (emulated fault).'],
  503: ['internal_temporary_error', 'Temporary error; try again later (emulated fault).'],
};

function headerString(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(', ') : value;
}

/** A Chargebee error whose fields repeat what the request sent (see `EmulatorFault.echo`). */
function echoAnswer(status: number, request: ApiRequest, headers: Record<string, string> | undefined): Answer {
  const sent = request.req.headers;
  const authorization = headerString(sent.authorization);
  const key = authorization === undefined ? undefined : basicUser(authorization)?.user;
  const rawId = /^\/portal_sessions\/([^/]+)/.exec(request.apiPath ?? '')?.[1];
  const id = rawId === undefined ? undefined : (safeDecode(rawId) ?? rawId);
  const user = headerString(sent['chargebee-request-origin-user']);
  const userEncoded = headerString(sent['chargebee-request-origin-user-encoded']);
  const decodedUser = userEncoded === undefined ? undefined : Buffer.from(userEncoded, 'base64').toString('utf8');
  const email = user ?? decodedUser;
  const said: string[] = [];
  if (authorization !== undefined) said.push(`Authorization "${authorization}"`);
  if (key !== undefined) said.push(`invalid api key ${key} (${key.toUpperCase()}, ${encodeURIComponent(key)})`);
  if (rawId !== undefined) said.push(`portal session ${rawId} (${id})`);
  if (user !== undefined) said.push(`user ${user} (${user.toUpperCase()}, ${encodeURIComponent(user)})`);
  if (userEncoded !== undefined) said.push(`user-encoded ${userEncoded} (${decodedUser})`);
  return errorAnswer(
    status,
    key ?? 'api_authentication_failed',
    `Sorry, the request was refused: ${said.length > 0 ? said.join('; ') : 'nothing to repeat'}.`,
    id?.toUpperCase() ?? 'invalid_request',
    email === undefined ? undefined : encodeURIComponent(email),
    headers,
  );
}

/** The fault's own answer, or `undefined` when the request is to be processed normally. */
export function faultAnswer(fault: EmulatorFault, request: ApiRequest): Answer | undefined {
  const retryAfter = fault.retryAfterRaw ?? (fault.retryAfter === undefined ? undefined : String(fault.retryAfter));
  const headers = retryAfter === undefined ? undefined : { 'retry-after': retryAfter };
  if (fault.rawBody !== undefined) {
    return { status: fault.status ?? 502, body: fault.rawBody, contentType: fault.contentType ?? HTML_TYPE, headers };
  }
  const status =
    fault.status ??
    (retryAfter !== undefined ? 429 : fault.echo ? 401 : fault.bodyBytes !== undefined ? 500 : undefined);
  if (status === undefined) return undefined;
  if (fault.echo) return echoAnswer(status, request, headers);
  const [code, message] = FAULT_DEFAULTS[status] ?? [
    status >= 500 ? 'internal_error' : 'invalid_request',
    `Emulated fault with HTTP status ${status}.`,
  ];
  return errorAnswer(status, fault.apiErrorCode ?? code, fault.message ?? message, fault.type, undefined, headers);
}

/** What applying a fault needs from the emulator: its timers and open body streams, cleared on close. */
export interface FaultHost {
  timers: Set<NodeJS.Timeout>;
  streams: Set<Readable>;
  internalError(res: ServerResponse, err: unknown): void;
}

/** Applies a fault after its latency; `process` gives the normal answer. */
export function applyFault(
  host: FaultHost,
  fault: EmulatorFault,
  request: ApiRequest,
  res: ServerResponse,
  process: () => Answer,
): void {
  const act = (): void => {
    if (res.destroyed || fault.hang) return;
    if (fault.drop === 'before-response') {
      request.req.socket.destroy();
      return;
    }
    const answer = faultAnswer(fault, request) ?? process();
    if (fault.drop === 'mid-response') sendPartial(res, answer);
    else if (fault.trickle || fault.gzip || fault.bodyBytes !== undefined) sendShaped(res, answer, fault, host.streams);
    else send(res, answer);
  };
  if (!fault.latencyMs) return act();
  const timer = setTimeout(() => {
    host.timers.delete(timer);
    try {
      act();
    } catch (err) {
      host.internalError(res, err);
    }
  }, fault.latencyMs);
  host.timers.add(timer);
}
