import type { Readable, Transform } from 'node:stream';
import zlib from 'node:zlib';
import type { DeadlineSignal } from '../base/time';

/**
 * Reading an answer's body within bounds. A portal-session answer is about 1 KB; a proxy or a hostile
 * upstream may send hundreds of megabytes, or a small gzip body that inflates to hundreds. Both the bytes
 * received and the bytes decoded are counted, and reading stops (the connection is closed) as soon as
 * either passes the limit.
 */

/** Most bytes of an answer read, compressed and decompressed: tens of times a real answer. */
export const MAX_RESPONSE_BYTES = 64 * 1024;

export type BodyResult =
  | { kind: 'text'; text: string }
  | { kind: 'too_large' }
  /** A `Content-Encoding` this client did not ask for, or a body that does not decode. */
  | { kind: 'undecodable' };

function decoderFor(encoding: string): Transform | undefined | null {
  switch (encoding) {
    case '':
    case 'identity':
      return undefined;
    case 'gzip':
    case 'x-gzip':
    case 'deflate':
      // Gzip and zlib-wrapped deflate; the header tells which.
      return zlib.createUnzip();
    case 'br':
      return zlib.createBrotliDecompress();
    default:
      return null;
  }
}

/**
 * Reads `stream` (an HTTP response body) as UTF-8 text, at most `limit` bytes before and after decoding.
 * Rejects with the stream's error (a cut connection) or with `signal`'s abort; resolves `too_large` or
 * `undecodable` without reading further. The stream is destroyed whenever reading stops early.
 */
export function readBody(
  stream: Readable,
  contentEncoding: unknown,
  declaredLength: unknown,
  limit: number,
  signal: DeadlineSignal,
): Promise<BodyResult> {
  const encoding = typeof contentEncoding === 'string' ? contentEncoding.trim().toLowerCase() : '';
  const decoder = decoderFor(encoding);
  const length = Number(declaredLength);
  if (decoder === null || (Number.isFinite(length) && length > limit)) {
    stream.destroy();
    return Promise.resolve({ kind: decoder === null ? 'undecodable' : 'too_large' });
  }
  return new Promise<BodyResult>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let received = 0;
    let decoded = 0;
    let settled = false;
    let ended = false;

    const stop = (): void => {
      signal.removeEventListener('abort', onAbort);
      decoder?.destroy();
      if (!ended) stream.destroy();
    };
    const settle = (outcome: BodyResult | Error): void => {
      if (settled) return;
      settled = true;
      stop();
      if (outcome instanceof Error) reject(outcome);
      else resolve(outcome);
    };
    const onAbort = (): void => settle(new Error('aborted'));
    const keep = (chunk: Buffer): void => {
      decoded += chunk.length;
      if (decoded > limit) settle({ kind: 'too_large' });
      else chunks.push(chunk);
    };
    const done = (): void => {
      const text = (chunks.length === 1 ? chunks[0] : Buffer.concat(chunks)).toString('utf8');
      settle({ kind: 'text', text: text.charCodeAt(0) === 0xfeff ? text.slice(1) : text });
    };

    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort);
    stream.on('error', (error: Error) => settle(error));
    stream.on('close', () => {
      // A response received whole (`complete`) still delivers its 'end'; anything else was cut.
      if (!ended && !(stream as Readable & { complete?: boolean }).complete)
        settle(Object.assign(new Error('the answer was cut short'), { code: 'ECONNRESET' }));
    });
    stream.on('data', (chunk: Buffer) => {
      if (settled) return;
      received += chunk.length;
      if (received > limit) return settle({ kind: 'too_large' });
      if (!decoder) return keep(chunk);
      if (!decoder.write(chunk)) stream.pause();
    });
    stream.on('end', () => {
      ended = true;
      if (decoder) decoder.end();
      else done();
    });
    if (decoder) {
      decoder.on('drain', () => stream.resume());
      decoder.on('data', (chunk: Buffer) => {
        if (!settled) keep(chunk);
      });
      decoder.on('error', () => settle({ kind: 'undecodable' }));
      decoder.on('end', done);
    }
  });
}
