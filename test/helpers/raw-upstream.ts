import { once } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import zlib from 'node:zlib';

/**
 * A raw loopback HTTP server standing in for Chargebee (or a proxy in front of it) that misbehaves in
 * ways the emulator does not: trickling bodies, floods, gzip bombs, odd headers, echoed secrets. Each
 * request is answered by the current `answer` function; the server counts connections and bytes sent.
 */
export interface RecordedCall {
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  at: number;
}

export type Answer = (req: IncomingMessage, res: ServerResponse, call: RecordedCall) => void;

export interface RawUpstream {
  /** Base URL to give as `baseUrl` (`http://127.0.0.1:{port}/api/v2`). */
  baseUrl: string;
  calls: RecordedCall[];
  /** Body bytes written by answers, over all requests. */
  bytesSent: () => number;
  /** Connections accepted, and the most open at once. */
  connections: () => { total: number; open: number; maxOpen: number };
  answer: Answer;
  close(): Promise<void>;
}

export async function rawUpstream(answer: Answer): Promise<RawUpstream> {
  let bytes = 0;
  let total = 0;
  let maxOpen = 0;
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();
  const upstream: RawUpstream = {
    baseUrl: '',
    calls: [],
    bytesSent: () => bytes,
    connections: () => ({ total, open: sockets.size, maxOpen }),
    answer,
    close: async () => {
      for (const timer of timers) clearInterval(timer);
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  const server = createServer((req, res) => {
    const call = { method: req.method ?? '', path: req.url ?? '', headers: req.headers, at: Date.now() };
    upstream.calls.push(call);
    const write = res.write.bind(res) as (chunk: unknown, ...rest: unknown[]) => boolean;
    res.write = ((chunk: unknown, ...rest: unknown[]) => {
      bytes += typeof chunk === 'string' ? Buffer.byteLength(chunk) : (chunk as Buffer).length;
      return write(chunk, ...rest);
    }) as typeof res.write;
    (res as ServerResponse & { timers?: Set<NodeJS.Timeout> }).timers = timers;
    req.resume();
    req.on('end', () => upstream.answer(req, res, call));
  });
  server.on('connection', (socket) => {
    total += 1;
    sockets.add(socket);
    maxOpen = Math.max(maxOpen, sockets.size);
    socket.on('close', () => sockets.delete(socket));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  upstream.baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/v2`;
  return upstream;
}

function timersOf(res: ServerResponse): Set<NodeJS.Timeout> {
  return (res as ServerResponse & { timers: Set<NodeJS.Timeout> }).timers;
}

/** Headers at once, then one byte of a JSON body every `everyMs`, forever (until the client leaves). */
export function trickle(status = 200, everyMs = 200): Answer {
  return (_req, res) => {
    res.writeHead(status, { 'Content-Type': 'application/json' });
    res.write('{');
    const timer = setInterval(() => {
      if (res.destroyed || res.writableEnded) {
        clearInterval(timer);
        timersOf(res).delete(timer);
      } else res.write(' ');
    }, everyMs);
    timersOf(res).add(timer);
    res.on('close', () => {
      clearInterval(timer);
      timersOf(res).delete(timer);
    });
  };
}

/** A body of `totalBytes` streamed as fast as the client reads it (no Content-Length: chunked). */
export function flood(status: number, totalBytes: number): Answer {
  return (_req, res) => {
    res.writeHead(status, { 'Content-Type': 'application/json' });
    const chunk = Buffer.alloc(64 * 1024, 0x61);
    let sent = 0;
    const pump = (): void => {
      while (sent < totalBytes && !res.destroyed) {
        sent += chunk.length;
        if (!res.write(chunk)) return void res.once('drain', pump);
      }
      if (!res.destroyed) res.end();
    };
    res.on('error', () => undefined);
    pump();
  };
}

/**
 * A gzip bomb: `megabytes` gzip members of 1 MB of zeros each, about 1 KB apiece. A reader that inflates
 * it all holds `megabytes` MB; built without ever holding more than 1 MB here.
 */
export function gzipBomb(megabytes: number): Buffer {
  const member = zlib.gzipSync(Buffer.alloc(1024 * 1024), { level: 9 });
  return Buffer.concat(new Array<Buffer>(megabytes).fill(member));
}

/**
 * Sends `body` gzip-encoded: the first `firstBytes` at once, the rest only after `holdMs`, so a test can
 * see whether the client stopped reading before the end.
 */
export function gzipAnswer(status: number, body: Buffer, firstBytes: number, holdMs: number): Answer {
  return (_req, res) => {
    res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Encoding': 'gzip' });
    res.on('error', () => undefined);
    res.write(body.subarray(0, firstBytes));
    const timer = setTimeout(() => {
      timersOf(res).delete(timer);
      if (!res.destroyed) res.end(body.subarray(firstBytes));
    }, holdMs);
    timersOf(res).add(timer);
  };
}

/** A JSON answer with the given status, body and headers. */
export function json(status: number, body: unknown, headers: Record<string, string> = {}): Answer {
  return (_req, res) => {
    res.writeHead(status, { 'Content-Type': 'application/json', ...headers });
    res.end(typeof body === 'string' ? body : JSON.stringify(body));
  };
}

/** A logged-out portal session for the ID of the path. */
export function loggedOut(): Answer {
  return (req, res) => {
    const id = /\/portal_sessions\/([^/]+)\/logout/.exec(req.url ?? '')?.[1] ?? 'unknown';
    const now = Math.floor(Date.now() / 1000);
    json(200, {
      portal_session: {
        id,
        token: 't',
        access_url: 'https://example.test/portal',
        status: 'logged_out',
        created_at: now,
        customer_id: 'cus_raw',
        logout_at: now,
      },
    })(req, res, { method: '', path: '', headers: {}, at: 0 });
  };
}
