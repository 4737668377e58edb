/**
 * The HTTP/1 byte mover of `gatehouse proxy` (native/src/http_relay.cc):
 * checks its options, decodes its batched event tuples into calls on a
 * typed handler, and gives its commands names and types. What the relay
 * does is described once, in binding.ts (NativeHttpRelay).
 */
import { constants as osConstants } from 'node:os';
import { loadNative } from './addon';
import type { ExactRoute, HttpRelayOptions, IngressRoute, NativeHttpRelay, NativeRelayPayload } from './binding';
import { checkBoolean, checkInteger, invalidArg } from './validate';
import { GatehouseError } from '../errors';

export type { ExactRoute, IngressRoute } from './binding';

/** How a response body is framed toward the client; values as BodyKind in http_relay.cc. */
export const RELAY_BODY = {
  none: 0,
  length: 1,
  /** Passed through as the upstream framed it. */
  chunked: 2,
  /** Until the upstream closes; the client connection ends with it. */
  close: 3,
  /** Until the upstream closes, re-framed as chunks so the client connection can stay open. */
  closeToChunked: 4,
  /** A chunked body as plain bytes (for an HTTP/1.0 client; the connection ends with it). */
  dechunk: 5,
  /** A 1xx head: the final head follows. */
  informational: 6,
} as const;
export type RelayBody = (typeof RELAY_BODY)[keyof typeof RELAY_BODY];

/** How an exchange or tunnel ended; index = the relay's Outcome value. */
const OUTCOMES = ['complete', 'upstream-failed', 'upstream-timeout', 'aborted', 'client-gone', 'bad-upstream-head', 'bad-request-body', 'bad-upstream-body'] as const;
export type RelayOutcome = (typeof OUTCOMES)[number];

/** What went wrong before a request could be decided; index = the relay's ClientErrorKind value. */
const CLIENT_ERRORS = ['head-too-large', 'head-timeout', 'bad-proxy-header', 'proxy-header-timeout'] as const;
export type RelayClientError = (typeof CLIENT_ERRORS)[number];

/**
 * What the relay reports, per connection id. Calls arrive in order per
 * connection; `closed` is the last one for an id.
 */
export interface RelayHandler {
  /** A connection is accepted (with PROXY protocol: once its header arrived, its bytes in `proxyHeader`). */
  open(id: number, peer: string, peerPort: number, proxyHeader: Buffer | null): void;
  /** A request head arrived (one-byte string: each char code is a byte, CRLF CRLF at the end): answer with respond, forward or tunnel. */
  request(id: number, head: string): void;
  /** The upstream's response head (1xx ones too; a one-byte string): answer with `answer`, or `respond` to refuse it. */
  response(id: number, head: string, connectMs: number): void;
  /** A tunnel's upstream is connected and the 200 is on its way. */
  connected(id: number, connectMs: number): void;
  /** The client's first tunnel bytes so far (all of them, again, as more arrive); `allowTunnel` or `close`. */
  fronting(id: number, bytes: Buffer, timedOut: boolean): void;
  /**
   * An exchange or tunnel ended. After 'upstream-failed', 'upstream-timeout'
   * and 'bad-upstream-head' nothing was sent to the client yet: answer with
   * `respond`. `error` is the errno name when a socket error is the cause.
   */
  done(id: number, outcome: RelayOutcome, error: string | null, bytesFromClient: number, bytesToClient: number): void;
  /**
   * A head that could not be read: answer with `respond` (too large,
   * timeout). A PROXY header error comes before `open` (with the TCP peer)
   * and the connection is closed already.
   */
  clientError(id: number, kind: RelayClientError, peer: string, peerPort: number): void;
  closed(id: number, bytesFromClient: number, bytesToClient: number): void;
  /**
   * A request repeating the connection's kept route went upstream without a
   * `request` call (`path`: its origin-form target; `startedAt`: when its
   * head arrived, epoch ms), and now needs TypeScript: a `response` (a 1xx,
   * an answer not plain), a `done` (a failure, an abort) or `closed`
   * follows. A plain one is reported in one `routedDone` call instead.
   */
  routed(id: number, path: string, keepAlive: boolean, startedAt: number): void;
  /**
   * An answer head went to the client, rewritten by the relay: a reported
   * kept route's, or (just before its DONE or CLOSED) a forward's with
   * answerHere whose exchange did not end plainly.
   */
  answered(id: number, status: number, connectMs: number, contentType: string | null): void;
  /**
   * A forward with answerHere ended plainly, its answer rewritten by the
   * relay: ANSWERED and DONE ('complete') in one report, which may come up
   * to reportDelayMs late; `tookMs` (forward to end) and `headMs` (forward
   * to the answer's head) are the relay's own measures.
   */
  answeredDone(id: number, status: number, connectMs: number, contentType: string | null, bytesFromClient: number, bytesToClient: number, tookMs: number, headMs: number): void;
  /**
   * A kept route's request and its plain answer, complete: what routed,
   * answered and done would say, with how long it took (`tookMs`) and how
   * long until the answer's head (`headMs`), since the report may come
   * later than its end (reportDelayMs).
   */
  routedDone(
    id: number,
    path: string,
    contentType: string | null,
    status: number,
    connectMs: number,
    bytesFromClient: number,
    bytesToClient: number,
    startedAt: number,
    tookMs: number,
    headMs: number,
  ): void;
}

/** What a kept route repeats (see NativeHttpRelay.keepRoute). */
export interface KeptRoute {
  method: 'GET' | 'HEAD';
  /** `http://authority` exactly as the client wrote it in its request target. */
  prefix: string;
  /** The Host sent upstream. */
  host: string;
  ip: string;
  port: number;
  via: string | null;
  forwardedFor: string | null;
  lifetimeMs: number;
}

export interface RelayStats {
  active: number;
  pooled: number;
  bytesIn: number;
  bytesOut: number;
}

const ERRNO_NAMES = new Map<number, string>(Object.entries(osConstants.errno).map(([name, value]) => [value, name]));
const MAX_MS = 24 * 3600 * 1000;
const MAX_HEAD = 1024 * 1024;
/** Numbers per event in eventSlots(): kind, id, then up to seven (kSlotsPerEvent in http_relay.cc). */
const SLOTS_PER_EVENT = 9;

function checkExactRoute(route: ExactRoute): void {
  checkInteger('port', route.port, 1, 65535);
  checkInteger('lifetimeMs', route.lifetimeMs, 0, MAX_MS);
  checkInteger('idleMs', route.idleMs, 0, MAX_MS);
}

function errnoName(n: number): string | null {
  if (n === 0) return null;
  return ERRNO_NAMES.get(n) ?? `E${n}`;
}

function checkOptions(o: HttpRelayOptions): HttpRelayOptions {
  return {
    maxHeadBytes: checkInteger('maxHeadBytes', o.maxHeadBytes, 64, MAX_HEAD),
    maxResponseHeadBytes: checkInteger('maxResponseHeadBytes', o.maxResponseHeadBytes, 64, MAX_HEAD),
    proxyProtocol: checkBoolean('proxyProtocol', o.proxyProtocol),
    headerTimeoutMs: checkInteger('headerTimeoutMs', o.headerTimeoutMs, 1, MAX_MS),
    idleTimeoutMs: checkInteger('idleTimeoutMs', o.idleTimeoutMs, 1, MAX_MS),
    connectTimeoutMs: checkInteger('connectTimeoutMs', o.connectTimeoutMs, 1, MAX_MS),
    poolIdleMs: checkInteger('poolIdleMs', o.poolIdleMs, 1, MAX_MS),
    frontingTimeoutMs: checkInteger('frontingTimeoutMs', o.frontingTimeoutMs, 1, MAX_MS),
    tickMs: checkInteger('tickMs', o.tickMs, 5, 60_000),
    reportDelayMs: checkInteger('reportDelayMs', o.reportDelayMs ?? 0, 0, 1000),
  };
}

/** What the relay needs to answer an HTTP/1.1 client itself (forward's answerHere). */
export interface AnswerHere {
  /** The connection stays open after the answer (the client's wish, and not draining). */
  keepAlive: boolean;
  /** The request is a HEAD: the answer has no body whatever its fields say. */
  headRequest: boolean;
}

// forward()'s flags, as http_relay.cc reads them.
const FORWARD_ANSWER_HERE = 1;
const FORWARD_CLIENT_KEEP_ALIVE = 2;
const FORWARD_HEAD_REQUEST = 4;

export class HttpRelay {
  private readonly native: NativeHttpRelay;
  private readonly slots: Float64Array;
  private destroyed = false;

  constructor(options: HttpRelayOptions, handler: RelayHandler) {
    const checked = checkOptions(options);
    this.native = new (loadNative().HttpRelay)(checked, (count, payloads) => this.dispatch(count, payloads, handler));
    this.slots = this.native.eventSlots();
  }

  /** Listens on an IP literal; returns the bound port. */
  listen(ip: string, port: number): number {
    checkInteger('port', port, 0, 65535);
    try {
      return this.native.listen(ip, port);
    } catch (err) {
      const errno = (err as { errno?: number }).errno;
      const code = errno === undefined ? (err as Error).message : (errnoName(errno) ?? 'error');
      throw new GatehouseError('ERR_LISTEN', `Expected a free address to listen on but received ${ip}:${port} (${code})`, { cause: err });
    }
  }

  stopListening(): void {
    if (!this.destroyed) this.native.stopListening();
  }

  // Heads and replies are one-byte strings: each char code is a byte
  // (callers keep them to latin1; a higher code would be cut to its low byte).

  respond(id: number, reply: string, keepAlive: boolean): number {
    return this.destroyed ? -1 : this.native.respond(id, reply, keepAlive);
  }

  /**
   * `idleMs`: this exchange's inactivity limit (default: the relay's
   * idleTimeoutMs). `answerHere`: an HTTP/1.1 client's plain answer is
   * rewritten by the relay (see NativeHttpRelay.forward) and reported
   * through `answeredDone` (or `answered` before a cut-short end), not
   * `response`.
   */
  forward(id: number, ip: string, port: number, head: string, bodyLength: number, retryable: boolean, idleMs = 0, answerHere: AnswerHere | null = null): boolean {
    checkInteger('port', port, 1, 65535);
    checkInteger('idleMs', idleMs, 0, MAX_MS);
    const flags = answerHere === null ? 0 : FORWARD_ANSWER_HERE | (answerHere.keepAlive ? FORWARD_CLIENT_KEEP_ALIVE : 0) | (answerHere.headRequest ? FORWARD_HEAD_REQUEST : 0);
    return !this.destroyed && this.native.forward(id, ip, port, head, bodyLength, retryable, idleMs, flags);
  }

  answer(id: number, head: string, body: RelayBody, length: number, keepAlive: boolean, reusable: boolean): boolean {
    return !this.destroyed && this.native.answer(id, head, body, length, keepAlive, reusable);
  }

  tunnel(id: number, ip: string, port: number, established: string): boolean {
    checkInteger('port', port, 1, 65535);
    return !this.destroyed && this.native.tunnel(id, ip, port, established);
  }

  allowTunnel(id: number): boolean {
    return !this.destroyed && this.native.allowTunnel(id);
  }

  close(id: number): boolean {
    return !this.destroyed && this.native.close(id);
  }

  /** See NativeHttpRelay.detach: the connection's socket, for another server to carry on with. */
  detach(id: number): { fd: number; input: Buffer; output: Buffer } | null {
    return this.destroyed ? null : this.native.detach(id);
  }

  keepRoute(id: number, route: KeptRoute): boolean {
    checkInteger('port', route.port, 1, 65535);
    checkInteger('lifetimeMs', route.lifetimeMs, 0, MAX_MS);
    return !this.destroyed && this.native.keepRoute(id, route.method, route.prefix, route.host, route.ip, route.port, route.via ?? '', route.forwardedFor ?? '', route.lifetimeMs);
  }

  keepExact(id: number, route: ExactRoute): boolean {
    checkExactRoute(route);
    return !this.destroyed && this.native.keepExact(id, route.method, route.request, route.upstreamHead, route.ip, route.port, route.path, route.lifetimeMs, route.idleMs);
  }

  keepIngress(id: number, route: IngressRoute): boolean {
    checkExactRoute(route);
    const signing = route.signing;
    if (signing !== null) {
      checkInteger('second', signing.second, 0, Number.MAX_SAFE_INTEGER);
      if (!Buffer.isBuffer(signing.key) || signing.key.length !== 32) invalidArg('a 32-byte signing key', 'key', signing.key);
    }
    return !this.destroyed && this.native.keepIngress(id, route);
  }

  forgetRoutes(): void {
    if (!this.destroyed) this.native.forgetRoutes();
  }

  closeIdle(): void {
    if (!this.destroyed) this.native.closeIdle();
  }

  destroy(): void {
    if (this.destroyed) return;
    this.native.destroy();
    this.destroyed = true;
  }

  stats(): RelayStats {
    return this.destroyed ? { active: 0, pooled: 0, bytesIn: 0, bytesOut: 0 } : this.native.stats();
  }

  private dispatch(count: number, payloads: NativeRelayPayload[], h: RelayHandler): void {
    const f = this.slots;
    for (let i = 0; i < count; i++) {
      const at = i * SLOTS_PER_EVENT;
      const id = f[at + 1];
      const p = payloads[i];
      try {
        switch (f[at]) {
          case 0: {
            const [peer, header] = p as [string, Buffer | null];
            h.open(id, peer, f[at + 2], header);
            break;
          }
          case 1:
            h.request(id, p as string);
            break;
          case 2:
            h.response(id, p as string, f[at + 2]);
            break;
          case 3:
            h.connected(id, f[at + 2]);
            break;
          case 4:
            h.fronting(id, p as Buffer, f[at + 2] !== 0);
            break;
          case 5:
            h.done(id, OUTCOMES[f[at + 2]] ?? 'aborted', errnoName(f[at + 3]), f[at + 4], f[at + 5]);
            break;
          case 6:
            h.clientError(id, CLIENT_ERRORS[f[at + 2]] ?? 'head-too-large', p as string, f[at + 3]);
            break;
          case 7:
            h.closed(id, f[at + 2], f[at + 3]);
            break;
          case 8:
            h.routed(id, p as string, f[at + 2] !== 0, f[at + 3]);
            break;
          case 9:
            h.answered(id, f[at + 2], f[at + 3], p === undefined ? null : (p as string));
            break;
          case 10: {
            const [path, contentType] = p as [string, string | null];
            h.routedDone(id, path, contentType, f[at + 2], f[at + 3], f[at + 4], f[at + 5], f[at + 6], f[at + 7], f[at + 8]);
            break;
          }
          case 11:
            h.answeredDone(id, f[at + 2], f[at + 3], p === undefined ? null : (p as string), f[at + 4], f[at + 5], f[at + 6], f[at + 7]);
            break;
        }
      } catch {
        // A handler bug costs its connection, never the process.
        this.close(id);
      }
    }
  }
}
