/**
 * Keep-alive HTTP/1.1 connections to upstreams, for both proxies: one
 * exchange (request out, response in) at a time on each connection, idle
 * connections pooled per key, last released first reused.
 *
 * Written on net.Socket rather than http.request: the client side of
 * node:http (Agent, ClientRequest, IncomingMessage, listeners added and
 * removed per request) cost more CPU per request than everything else a
 * proxy here does; this keeps one set of socket listeners per connection and
 * hands the response straight to the caller's handler, read with this
 * folder's strict heads, framing and chunked coding.
 *
 * Who the pool connects to, and how (an SSRF-checked address for the egress
 * proxy, a name over TCP or TLS for the ingress), is its dialer's business.
 */
import type * as net from 'node:net';
import { performance } from 'node:perf_hooks';
import { ChunkedDecoder, encodeChunk, LAST_CHUNK } from './chunked';
import { parseResponseHead, responseFraming, type BodyFraming, type ResponseHead } from './response-head';

/** How a pool reaches its targets: connections are shared only between targets of one key. */
export interface UpstreamDialer<Target> {
  keyOf(target: Target): string;
  /** A new connection, connecting (a net.Socket or a tls.TLSSocket). May throw (e.g. a CA file that cannot be read). */
  dial(target: Target): net.Socket;
}

/** The error an upstream deadline ends an exchange with (connect, or no byte for too long). */
export function timeoutError(what: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${what} timed out`), { code: 'ERR_UPSTREAM_TIMEOUT' });
}

/** How the request body goes upstream: as it came (Content-Length), re-chunked, or there is none. */
export type RequestBodyFraming = 'length' | 'chunked' | 'none';

/** What the caller of an exchange is told, in this order: connected?, response, data*, end | error. */
export interface ExchangeHandler {
  /** A new connection is up (not called for a kept-alive one). */
  onConnected(connectMs: number): void;
  /** The final response head (1xx interim heads are skipped). */
  onResponse(head: ResponseHead, framing: BodyFraming): void;
  /** Body data, decoded from the chunked coding if it was chunked. */
  onData(data: Buffer): void;
  onEnd(): void;
  /**
   * The exchange failed. `beforeResponse` is true when no response byte had
   * arrived (the request may be retried on a new connection if it was idempotent).
   */
  onError(err: NodeJS.ErrnoException, beforeResponse: boolean): void;
}

export interface UpstreamPoolOptions {
  /** No byte for this long ends an exchange (504) or an idle connection. */
  idleTimeoutMs: number;
  connectTimeoutMs: number;
  /** Largest response head accepted. */
  maxHeadBytes: number;
  /** Idle connections kept per address and port (default 256). */
  maxIdlePerTarget?: number;
}

function upstreamError(code: string, message: string): NodeJS.ErrnoException {
  return Object.assign(new Error(message), { code });
}

const enum Phase {
  Idle,
  Head,
  Body,
}

/** One upstream connection; `exchange()` starts a request on it. */
export class UpstreamConnection {
  /** Exchanges completed on it before the current one (0: a new connection). */
  uses = 0;
  private handler: ExchangeHandler | null = null;
  private phase = Phase.Idle;
  private method = 'GET';
  private requestFraming: RequestBodyFraming = 'none';
  private requestDone = true;
  private responseStarted = false;
  private head: Buffer | null = null;
  private scanFrom = 0;
  private framing: BodyFraming = { kind: 'none' };
  private remaining = 0;
  private decoder: ChunkedDecoder | null = null;
  private reusable = false;
  private connectTimer: NodeJS.Timeout | null = null;
  /** The current exchange set its own inactivity limit; the pool's comes back on release. */
  private ownTimeout = false;
  private readonly deliver = (data: Buffer): void => this.handler?.onData(data);

  constructor(
    readonly socket: net.Socket,
    readonly key: string,
    private readonly pool: ConnectionOwner,
    connecting: boolean,
  ) {
    socket.setTimeout(pool.opts.idleTimeoutMs);
    socket.on('data', (chunk: Buffer) => this.onSocketData(chunk));
    socket.on('end', () => this.onSocketEnd());
    socket.on('close', () => this.onSocketClose());
    socket.on('error', (err: NodeJS.ErrnoException) => this.fail(err));
    socket.on('timeout', () => this.fail(timeoutError('upstream idle')));
    if (connecting) {
      const started = performance.now();
      this.connectTimer = setTimeout(() => this.fail(timeoutError('connect')), pool.opts.connectTimeoutMs);
      socket.once('connect', () => {
        if (this.connectTimer !== null) clearTimeout(this.connectTimer);
        this.connectTimer = null;
        this.handler?.onConnected(Math.round(performance.now() - started));
      });
    }
  }

  /**
   * Sends a request head; the body (if any) follows with writeBody/endBody.
   * `timeoutMs` (default: the pool's idle timeout) is how long the upstream
   * may stay silent during this exchange (504).
   */
  exchange(handler: ExchangeHandler, method: string, head: string, bodyFraming: RequestBodyFraming, timeoutMs?: number): void {
    if (timeoutMs !== undefined && timeoutMs !== this.pool.opts.idleTimeoutMs) {
      this.socket.setTimeout(timeoutMs);
      this.ownTimeout = true;
    }
    this.handler = handler;
    this.phase = Phase.Head;
    this.method = method;
    this.requestFraming = bodyFraming;
    this.requestDone = bodyFraming === 'none';
    this.responseStarted = false;
    this.head = null;
    this.scanFrom = 0;
    this.decoder = null;
    this.socket.write(head, 'latin1');
  }

  /** Writes request body data; false when the socket's buffer is full (wait for onceDrain). */
  writeBody(data: Buffer): boolean {
    if (this.socket.destroyed || data.length === 0) return true;
    if (this.requestFraming !== 'chunked') return this.socket.write(data);
    let ok = true;
    for (const piece of encodeChunk(data)) ok = this.socket.write(piece);
    return ok;
  }

  endBody(): void {
    if (this.requestDone) return;
    this.requestDone = true;
    if (this.requestFraming === 'chunked' && !this.socket.destroyed) this.socket.write(LAST_CHUNK);
    if (this.phase === Phase.Idle) this.release(); // the response was complete before the body was
  }

  onceDrain(fn: () => void): void {
    this.socket.once('drain', fn);
  }

  /** Back-pressure from the client: stop reading the response for a while. */
  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  /** Gives up the exchange (the client left): the connection is closed, the handler hears nothing more. */
  abort(): void {
    this.handler = null;
    this.socket.destroy();
  }

  private onSocketData(chunk: Buffer): void {
    if (this.handler === null) {
      // Bytes nobody asked for: the connection's framing cannot be trusted any more.
      this.socket.destroy();
      return;
    }
    this.responseStarted = true;
    if (this.phase === Phase.Head) this.readHead(chunk);
    else if (this.phase === Phase.Body) this.readBody(chunk, 0);
  }

  private readHead(chunk: Buffer): void {
    this.head = this.head === null ? chunk : Buffer.concat([this.head, chunk]);
    for (;;) {
      const parsed = parseResponseHead(this.head, this.pool.opts.maxHeadBytes, this.scanFrom);
      if (parsed.kind === 'incomplete') {
        this.scanFrom = parsed.scanFrom;
        return;
      }
      if (parsed.kind === 'invalid') {
        this.fail(upstreamError('ERR_BAD_RESPONSE', `invalid response head (${parsed.reason})`));
        return;
      }
      const rest = this.head.subarray(parsed.bytes);
      const status = parsed.head.statusCode;
      if (status === 101) {
        this.fail(upstreamError('ERR_BAD_RESPONSE', 'an upgrade the request did not ask for'));
        return;
      }
      if (status < 200) {
        // 100 Continue, 103 Early Hints: interim, the final response follows.
        this.head = rest;
        this.scanFrom = 0;
        if (rest.length === 0) return;
        continue;
      }
      const framing = responseFraming(parsed.head, this.method);
      if (!framing.ok) {
        this.fail(upstreamError('ERR_BAD_RESPONSE', `invalid response framing (${framing.reason})`));
        return;
      }
      this.head = null;
      this.framing = framing.framing;
      this.reusable = framing.reusable;
      this.phase = Phase.Body;
      if (framing.framing.kind === 'length') this.remaining = framing.framing.length;
      if (framing.framing.kind === 'chunked') this.decoder = new ChunkedDecoder();
      this.handler?.onResponse(parsed.head, framing.framing);
      if (this.handler === null) return; // aborted by the handler
      if (framing.framing.kind === 'none' || (framing.framing.kind === 'length' && this.remaining === 0)) {
        if (rest.length > 0) this.reusable = false;
        this.complete();
      } else if (rest.length > 0) {
        this.readBody(rest, 0);
      }
      return;
    }
  }

  private readBody(buf: Buffer, offset: number): void {
    switch (this.framing.kind) {
      case 'length': {
        const take = Math.min(this.remaining, buf.length - offset);
        this.handler?.onData(offset === 0 && take === buf.length ? buf : buf.subarray(offset, offset + take));
        this.remaining -= take;
        if (this.remaining === 0) {
          if (offset + take < buf.length) this.reusable = false;
          this.complete();
        }
        return;
      }
      case 'chunked': {
        const decoder = this.decoder as ChunkedDecoder;
        const result = decoder.push(buf, this.deliver, offset);
        if (!result.ok) {
          this.fail(upstreamError('ERR_BAD_RESPONSE', `invalid chunked body (${result.reason})`));
          return;
        }
        if (result.done) {
          if (offset + result.consumed < buf.length) this.reusable = false;
          this.complete();
        }
        return;
      }
      case 'close':
        this.handler?.onData(offset === 0 ? buf : buf.subarray(offset));
        return;
      case 'none':
        return;
    }
  }

  private complete(): void {
    const handler = this.handler;
    this.phase = Phase.Idle;
    this.handler = null;
    this.uses++;
    handler?.onEnd();
    if (this.requestDone) this.release();
  }

  private release(): void {
    if (!this.reusable || !this.requestDone || this.socket.destroyed) {
      this.socket.destroy();
      return;
    }
    // A caller that paused for back-pressure on the last chunk hears no
    // 'drain' after its end(): an idle connection reads again, so that it
    // notices a close (or bytes nobody asked for) and serves the next request.
    this.socket.resume();
    if (this.ownTimeout) {
      this.socket.setTimeout(this.pool.opts.idleTimeoutMs);
      this.ownTimeout = false;
    }
    this.pool.release(this);
  }

  private onSocketEnd(): void {
    if (this.handler !== null && this.phase === Phase.Body && this.framing.kind === 'close') {
      this.reusable = false;
      this.complete();
      return;
    }
    this.fail(upstreamError('ECONNRESET', 'the upstream closed the connection'));
  }

  private onSocketClose(): void {
    if (this.connectTimer !== null) clearTimeout(this.connectTimer);
    this.connectTimer = null;
    this.pool.forget(this);
    if (this.handler !== null) this.fail(upstreamError('ECONNRESET', 'the upstream closed the connection'));
  }

  private fail(err: NodeJS.ErrnoException): void {
    const handler = this.handler;
    this.handler = null;
    this.phase = Phase.Idle;
    this.socket.destroy();
    handler?.onError(err, !this.responseStarted);
  }
}

/** What a connection needs from its pool. */
interface ConnectionOwner {
  readonly opts: Required<UpstreamPoolOptions>;
  release(conn: UpstreamConnection): void;
  forget(conn: UpstreamConnection): void;
}

/** Kept-alive upstream connections, by the dialer's key; last released, first reused. */
export class UpstreamPool<Target> implements ConnectionOwner {
  readonly opts: Required<UpstreamPoolOptions>;
  private readonly idle = new Map<string, UpstreamConnection[]>();
  private readonly all = new Set<UpstreamConnection>();

  constructor(
    opts: UpstreamPoolOptions,
    private readonly dialer: UpstreamDialer<Target>,
  ) {
    this.opts = { maxIdlePerTarget: 256, ...opts };
  }

  /** A kept-alive connection to `target`, or (with `fresh`, or none idle) a new one, connecting. Throws what the dialer throws. */
  acquire(target: Target, fresh = false): UpstreamConnection {
    const key = this.dialer.keyOf(target);
    const idle = fresh ? undefined : this.idle.get(key);
    const kept = idle?.pop();
    if (kept !== undefined) {
      if (idle?.length === 0) this.idle.delete(key);
      return kept;
    }
    const conn = new UpstreamConnection(this.dialer.dial(target), key, this, true);
    this.all.add(conn);
    return conn;
  }

  release(conn: UpstreamConnection): void {
    let idle = this.idle.get(conn.key);
    if (idle === undefined) {
      idle = [];
      this.idle.set(conn.key, idle);
    }
    if (idle.length >= this.opts.maxIdlePerTarget) {
      conn.socket.destroy();
      return;
    }
    idle.push(conn);
  }

  /** Called when a connection's socket has closed. */
  forget(conn: UpstreamConnection): void {
    this.all.delete(conn);
    const idle = this.idle.get(conn.key);
    if (idle === undefined) return;
    const i = idle.indexOf(conn);
    if (i >= 0) idle.splice(i, 1);
    if (idle.length === 0) this.idle.delete(conn.key);
  }

  /** Idle connections now. */
  idleCount(): number {
    let n = 0;
    for (const list of this.idle.values()) n += list.length;
    return n;
  }

  /** Closes the idle connections (after a reload: new ones are dialled as the new settings say). */
  closeIdle(): void {
    for (const list of this.idle.values()) for (const conn of list) conn.socket.destroy();
    this.idle.clear();
  }

  /** Closes every connection, idle or busy. */
  close(): void {
    for (const conn of this.all) conn.socket.destroy();
    this.all.clear();
    this.idle.clear();
  }
}
