/** Small HTTP helpers of the emulator: answers as values, reading a bounded body, sending an answer. */
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { ChargebeeErrorBody } from './types';

/** An answer to send: the API, the control API and faults build these, one function sends them. */
export interface Answer {
  status: number;
  body: string;
  contentType?: string;
  headers?: Record<string, string>;
}

export const JSON_TYPE = 'application/json;charset=utf-8';
export const HTML_TYPE = 'text/html; charset=utf-8';
const HTML_CSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'";
export const MAX_BODY_BYTES = 1024 * 1024;

export function errorAnswer(
  status: number,
  apiErrorCode: string,
  message: string,
  type?: string,
  param?: string,
  headers?: Record<string, string>,
): Answer {
  const body: ChargebeeErrorBody = {
    message,
    ...(type !== undefined && { type }),
    api_error_code: apiErrorCode,
    ...(param !== undefined && { param }),
    http_status_code: status,
    error_code: apiErrorCode,
    error_msg: message,
    ...(param !== undefined && { error_param: param }),
  };
  return { status, body: JSON.stringify(body), headers };
}

export function jsonAnswer(status: number, value: unknown): Answer {
  return { status, body: JSON.stringify(value) };
}

export function safeDecode(segment: string): string | undefined {
  try {
    return decodeURIComponent(segment);
  } catch {
    return undefined;
  }
}

/** Reads the body as UTF-8; `undefined` when it is larger than {@link MAX_BODY_BYTES} (the rest is drained). */
export function readBody(req: IncomingMessage, done: (body: string | undefined) => void): void {
  const chunks: Buffer[] = [];
  let size = 0;
  req.on('data', (chunk: Buffer) => {
    size += chunk.length;
    if (size <= MAX_BODY_BYTES) chunks.push(chunk);
  });
  req.on('end', () => {
    if (size > MAX_BODY_BYTES) done(undefined);
    else
      done(
        chunks.length === 0
          ? ''
          : chunks.length === 1
            ? chunks[0].toString('utf8')
            : Buffer.concat(chunks).toString('utf8'),
      );
  });
  // A client that gives up mid-body leaves nothing to answer.
  req.on('error', () => undefined);
}

export function answerHeaders(answer: Answer, length: number): OutgoingHttpHeaders {
  return { 'content-type': answer.contentType ?? JSON_TYPE, 'content-length': length, ...answer.headers };
}

export function send(res: ServerResponse, answer: Answer): void {
  if (res.destroyed || res.headersSent) return;
  res.writeHead(answer.status, answerHeaders(answer, Buffer.byteLength(answer.body)));
  res.end(answer.body);
}

/** Headers and part of the body, then a dead socket: the client sees a truncated response. */
export function sendPartial(res: ServerResponse, answer: Answer): void {
  if (res.destroyed) return;
  const body = Buffer.from(answer.body);
  res.writeHead(answer.status, answerHeaders(answer, body.length));
  res.write(body.subarray(0, Math.max(1, Math.floor(body.length / 2))), () => res.socket?.destroy());
}

export function sendHtml(res: ServerResponse, status: number, html: string): void {
  send(res, {
    status,
    body: html,
    contentType: HTML_TYPE,
    headers: { 'content-security-policy': HTML_CSP, 'cache-control': 'no-store' },
  });
}

export function sendPlain(res: ServerResponse, status: number, text: string): void {
  send(res, { status, body: `${text}\n`, contentType: 'text/plain; charset=utf-8' });
}
