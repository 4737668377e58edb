/**
 * What the request and tunnel handlers share with the server that owns the
 * connections: the checked options, the native relay that moves the bytes,
 * each client connection's identity and its exchange in progress, and the
 * counters.
 */
import type { Socket } from 'node:net';
import type { HttpRelay } from '../../native/http-relay';
import type { ProxyRequestFacts } from '../types';
import { AccessRecord, type ClientIdentity } from './access';
import type { FrontingContext } from './fronting';
import type { CheckedProxyServerOptions, ProxyDecision } from './options';
import { rawReply, type ProxyReply } from './responses';
import type { RequestTarget } from './target';
import type { UpstreamTarget } from './upstream';

/** One request or tunnel, from its head to its last byte. */
export interface Exchange {
  readonly rec: AccessRecord;
  /** The client's HTTP minor version and whether it allows another request after this one. */
  readonly clientMinor: 0 | 1;
  readonly clientKeepAlive: boolean;
  /** `host[:port]` as the client asked for it (for the texts of failures). */
  authority: string;
  /** The request target, once it parsed. */
  target: RequestTarget | null;
  upstream: UpstreamTarget | null;
  /** Set for a CONNECT once its upstream is connected: the check its first bytes must pass. */
  fronting: FrontingContext | null;
  /** The response head went to the client: a failure now can only cut it short. */
  answered: boolean;
}

/** What the relay repeats for a connection's kept route, and what each repeat's record needs. */
export interface KeptRouteMemo {
  readonly method: string;
  readonly target: RequestTarget;
  readonly decision: ProxyDecision;
  readonly upstream: UpstreamTarget;
  readonly resolvedAddresses: readonly string[];
}

/** One accepted client connection (after its PROXY header, when there is one). */
export interface ClientConnection extends ClientIdentity {
  readonly id: number;
  /** The request the relay may repeat on its own (set with the relay's keepRoute). */
  route: KeptRouteMemo | null;
  /** The request or tunnel in progress; null between requests. */
  exchange: Exchange | null;
  /** The proxy answered and closes the connection: heads the relay read meanwhile are ignored. */
  ended: boolean;
  /** Bytes of the exchange in progress so far (the relay reports them in steps). */
  bytesFromClient: number;
  bytesToClient: number;
}

export interface ProxyCounters {
  connections: number;
  requests: number;
  tunnels: number;
  denied: number;
  errors: number;
}

export interface ProxyContext {
  readonly opts: CheckedProxyServerOptions;
  readonly relay: HttpRelay;
  readonly counters: ProxyCounters;
  /** True once close() was called: no new tunnels, no more keep-alive. */
  readonly closing: boolean;
  /** The connection, if it is still open and still on `exchange` (a late DNS answer finds it gone or moved on). */
  current(conn: ClientConnection, exchange: Exchange): boolean;
  /** Opens the access record of one request or tunnel. */
  record(who: ClientIdentity, method: string, url: string): AccessRecord;
  /** The current policy's answer; a policy that throws denies (and is reported as an error by the caller). */
  decide(facts: ProxyRequestFacts): ProxyDecision | null;
}

/** Ends the connection's exchange: its record gets the bytes counted so far and is handed on. */
export function finishExchange(conn: ClientConnection, fields: Parameters<AccessRecord['finish']>[0] = {}): void {
  const ex = conn.exchange;
  if (ex === null) return;
  conn.exchange = null;
  fields.bytesFromClient = conn.bytesFromClient;
  fields.bytesToClient = conn.bytesToClient;
  ex.rec.finish(fields);
  conn.bytesFromClient = 0;
  conn.bytesToClient = 0;
}

/**
 * Answers the exchange with the proxy's own reply and ends it. The record
 * says why (`squidResult`, `reason`; the decision follows: TCP_DENIED is a
 * denial, anything else here an error unless the caller set it already).
 */
export function replyAndFinish(ctx: ProxyContext, conn: ClientConnection, reply: ProxyReply, squidResult: string, reason: string, keepAlive: boolean): void {
  const ex = conn.exchange;
  if (ex === null) return;
  const keep = keepAlive && ex.clientKeepAlive && ex.clientMinor === 1 && !ctx.closing;
  const raw = rawReply(reply, keep);
  const read = ctx.relay.respond(conn.id, raw, keep);
  if (!keep) conn.ended = true;
  conn.bytesFromClient += Math.max(0, read);
  conn.bytesToClient += read < 0 ? 0 : Buffer.byteLength(raw, 'latin1');
  const e = ex.rec.entry;
  e.squidResult = squidResult;
  e.reason = reason;
  e.decision = squidResult === 'TCP_DENIED' ? 'deny' : 'error';
  finishExchange(conn, { status: read < 0 ? 0 : reply.status });
}

/** Ends a socket after `data` is flushed, reading (and dropping) what the client still sends so the close is not a reset. */
export function endWithReply(socket: Socket, data: string, lingerMs: number): void {
  if (socket.destroyed) return;
  const timer = setTimeout(() => socket.destroy(), lingerMs);
  socket.once('close', () => clearTimeout(timer));
  socket.end(data);
  socket.resume();
}
