/**
 * What the request and tunnel handlers share with the server that owns the
 * connections: the checked options, the upstream connection pool, each client
 * connection's identity and byte marks, and the counters.
 */
import type { Socket } from 'node:net';
import { AccessRecord, type ClientIdentity } from './access';
import type { CheckedProxyServerOptions, ProxyDecision } from './options';
import type { UpstreamPool } from '../../http1';
import type { UpstreamTarget } from './upstream';
import type { ProxyRequestFacts } from '../types';

/** One accepted client connection, once its PROXY header (if any) is read. */
export interface ClientConnection extends ClientIdentity {
  socket: Socket;
  /** Requests and tunnels in progress on it; 0 means idle (closed at once on shutdown). */
  busy: number;
  /** The socket's byte counters when the previous request on it ended (per-request byte counts). */
  markRead: number;
  markWritten: number;
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
  readonly upstreams: UpstreamPool<UpstreamTarget>;
  readonly counters: ProxyCounters;
  /** True once close() was called: responses stop offering keep-alive. */
  readonly closing: boolean;
  connectionOf(socket: Socket): ClientConnection | undefined;
  /** Opens the access record of one request or tunnel. */
  record(who: ClientIdentity, method: string, url: string): AccessRecord;
  /** The current policy's answer; a policy that throws denies (and is reported as an error by the caller). */
  decide(facts: ProxyRequestFacts): ProxyDecision | null;
  /** Called once per request or tunnel when it is over. */
  requestDone(conn: ClientConnection): void;
}

/** Bytes the connection carried since the previous request ended; moves the marks. */
export function takeBytes(conn: ClientConnection): { bytesFromClient: number; bytesToClient: number } {
  const read = conn.socket.bytesRead;
  const written = conn.socket.bytesWritten;
  const bytes = { bytesFromClient: Math.max(0, read - conn.markRead), bytesToClient: Math.max(0, written - conn.markWritten) };
  conn.markRead = read;
  conn.markWritten = written;
  return bytes;
}

/** Ends a socket after `data` is flushed, reading (and dropping) what the client still sends so the close is not a reset. */
export function endWithReply(socket: Socket, data: string, lingerMs: number): void {
  if (socket.destroyed) return;
  const timer = setTimeout(() => socket.destroy(), lingerMs);
  socket.once('close', () => clearTimeout(timer));
  socket.end(data);
  socket.resume();
}
