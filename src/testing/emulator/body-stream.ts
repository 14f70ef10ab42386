/**
 * Streamed answer bodies for faults: a body padded to a size, gzip that is computed without holding the
 * body in memory, and a trickle of a few bytes per interval. Nothing here builds a large buffer.
 */
import type { ServerResponse } from 'node:http';
import { Readable, pipeline } from 'node:stream';
import * as zlib from 'node:zlib';
import { answerHeaders, type Answer } from './http';

/** Bytes as they are, or `length` copies of the byte `fill`. */
export type Segment = Buffer | { fill: number; length: number };

const CHUNK_BYTES = 64 * 1024;
const GZIP_BLOCK_BYTES = 1024 * 1024;
const FULL_FLUSH = { finishFlush: zlib.constants.Z_FULL_FLUSH };
// Magic, deflate, no flags, no mtime, no extra flags, OS unknown.
const GZIP_HEADER = Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]);

/** The answer's body padded to exactly `bytes`: spaces inside a JSON error's `message`, else at the end. */
export function paddedBody(body: string, bytes: number): Segment[] {
  const prefix = '{"message":';
  let at = body.length;
  if (body.startsWith(prefix)) {
    const { message } = JSON.parse(body) as { message: string };
    at = prefix.length + JSON.stringify(message).length - 1; // before the message's closing quote
  }
  const head = Buffer.from(body.slice(0, at));
  const tail = Buffer.from(body.slice(at));
  if (bytes < head.length + tail.length) return [Buffer.concat([head, tail]).subarray(0, bytes)];
  return [head, { fill: 0x20, length: bytes - head.length - tail.length }, tail];
}

const fillBlocks = new Map<string, Buffer>();
function fillBlock(fill: number, length: number): Buffer {
  const key = `${fill}:${length}`;
  let block = fillBlocks.get(key);
  if (!block) {
    block = Buffer.alloc(length, fill);
    fillBlocks.set(key, block);
  }
  return block;
}

/** The segments' bytes in chunks of at most 64 KiB (or `blockBytes` for fills). */
function* plainChunks(segments: Segment[], blockBytes = CHUNK_BYTES): Generator<Buffer> {
  for (const s of segments) {
    if (Buffer.isBuffer(s)) {
      if (s.length > 0) yield s;
      continue;
    }
    const block = fillBlock(s.fill, blockBytes);
    for (let left = s.length; left > 0; left -= block.length)
      yield left >= block.length ? block : block.subarray(0, left);
  }
}

const crc32: (data: Buffer, value?: number) => number =
  (zlib as { crc32?: (data: Buffer, value?: number) => number }).crc32 ?? crc32Js;

let crcTable: Int32Array | undefined;
/** For Node versions without `zlib.crc32`. */
function crc32Js(data: Buffer, value = 0): number {
  if (!crcTable) {
    crcTable = new Int32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c;
    }
  }
  let c = ~value;
  for (let i = 0; i < data.length; i++) c = crcTable[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}

const deflatedBlocks = new Map<number, Buffer>();
/**
 * One gzip member built from independently deflated parts: after a full flush a deflate stream is byte
 * aligned and refers to nothing before it, so a 1 MiB block of one byte value is deflated once and repeated.
 */
export function gzipBody(segments: Segment[]): { length: number; chunks: () => Iterable<Buffer> } {
  const parts: { plain: Segment; deflated: Buffer; repeat: number }[] = [];
  let size = 0;
  for (const s of segments) {
    size += s.length;
    if (Buffer.isBuffer(s)) {
      parts.push({ plain: s, deflated: zlib.deflateRawSync(s, FULL_FLUSH), repeat: 1 });
      continue;
    }
    const whole = Math.floor(s.length / GZIP_BLOCK_BYTES);
    if (whole > 0) {
      let deflated = deflatedBlocks.get(s.fill);
      if (!deflated) {
        deflated = zlib.deflateRawSync(fillBlock(s.fill, GZIP_BLOCK_BYTES), FULL_FLUSH);
        deflatedBlocks.set(s.fill, deflated);
      }
      parts.push({ plain: { fill: s.fill, length: GZIP_BLOCK_BYTES }, deflated, repeat: whole });
    }
    const rest = s.length % GZIP_BLOCK_BYTES;
    if (rest > 0) {
      const plain = fillBlock(s.fill, GZIP_BLOCK_BYTES).subarray(0, rest);
      parts.push({ plain, deflated: zlib.deflateRawSync(plain, FULL_FLUSH), repeat: 1 });
    }
  }
  const finalBlock = zlib.deflateRawSync(Buffer.alloc(0));
  const length = parts.reduce((n, p) => n + p.deflated.length * p.repeat, GZIP_HEADER.length + finalBlock.length + 8);
  function* chunks(): Generator<Buffer> {
    yield GZIP_HEADER;
    let crc = 0;
    for (const part of parts) {
      const plain = Buffer.isBuffer(part.plain) ? part.plain : fillBlock(part.plain.fill, part.plain.length);
      for (let i = 0; i < part.repeat; i++) {
        crc = crc32(plain, crc);
        yield part.deflated;
      }
    }
    const trailer = Buffer.alloc(8);
    trailer.writeUInt32LE(crc >>> 0, 0);
    trailer.writeUInt32LE(size % 2 ** 32, 4);
    yield Buffer.concat([finalBlock, trailer]);
  }
  return { length, chunks };
}

/** Pushes `bytes` bytes of its source every `intervalMs`; destroying it clears its timer. */
class Trickle extends Readable {
  private timer: NodeJS.Timeout | undefined;
  private pending: Buffer = Buffer.alloc(0);

  constructor(
    private readonly source: Iterator<Buffer>,
    private readonly bytes: number,
    private readonly intervalMs: number,
  ) {
    super({ highWaterMark: 1 });
  }

  override _read(): void {
    if (this.timer || this.destroyed) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      while (this.pending.length === 0) {
        const next = this.source.next();
        if (next.done) {
          this.push(null);
          return;
        }
        this.pending = next.value;
      }
      const piece = this.pending.subarray(0, this.bytes);
      this.pending = this.pending.subarray(piece.length);
      this.push(piece);
    }, this.intervalMs);
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    callback(err);
  }
}

export interface BodyShape {
  bodyBytes?: number;
  gzip?: boolean;
  trickle?: { intervalMs: number; bytes?: number };
}

/**
 * Sends the answer shaped as asked: headers at once, then the body as a stream. The stream is added to
 * `open` until it ends, so that the emulator can destroy it on close.
 */
export function sendShaped(res: ServerResponse, answer: Answer, shape: BodyShape, open: Set<Readable>): void {
  if (res.destroyed || res.headersSent) return;
  const segments =
    shape.bodyBytes === undefined ? [Buffer.from(answer.body)] : paddedBody(answer.body, shape.bodyBytes);
  let length = segments.reduce((n, s) => n + s.length, 0);
  let chunks = (): Iterable<Buffer> => plainChunks(segments);
  const headers = answerHeaders(answer, length);
  if (shape.gzip) {
    ({ length, chunks } = gzipBody(segments));
    headers['content-encoding'] = 'gzip';
    headers['content-length'] = length;
  }
  const body = shape.trickle
    ? new Trickle(chunks()[Symbol.iterator](), shape.trickle.bytes ?? 1, shape.trickle.intervalMs)
    : Readable.from(chunks(), { objectMode: false });
  res.writeHead(answer.status, headers);
  res.flushHeaders();
  open.add(body);
  pipeline(body, res, () => open.delete(body));
}
