/**
 * What the request and upgrade handlers share with the server that owns the
 * connections: the current routes, the signer, the upstream pools, each
 * client connection's identity, and where finished entries go.
 */
import type { Duplex } from 'node:stream';
import type { RouteTable } from '../routes';
import type { LatticeSigner } from '../sigv4/lattice-signer';
import type { IngressAccessEntry } from './access';
import type { UpstreamPool } from '../../http1';
import type { UpstreamEndpoint } from './upstream-dialer';

/** One accepted client connection, once its PROXY header (and TLS handshake) is done. */
export interface ClientConnection {
  /** What HTTP runs on: the TCP socket, or the TLS socket over it. */
  stream: Duplex & { bytesRead: number; bytesWritten: number };
  client: string;
  clientPort: number;
  /** Requests (and upgrades) in progress; 0 means idle, closed at once when draining. */
  busy: number;
  /** Byte counters when the previous request on it ended. */
  markRead: number;
  markWritten: number;
}

export interface IngressContext {
  /** The routing table in force now (reloads replace it whole). */
  routes(): RouteTable;
  /** Null when no AWS region is configured: signed routes then answer 503. */
  readonly signer: LatticeSigner | null;
  readonly upstreams: UpstreamPool<UpstreamEndpoint>;
  /** The listener speaks TLS (X-Forwarded-Proto: https). */
  readonly tls: boolean;
  /** True once draining: responses stop offering keep-alive. */
  readonly closing: boolean;
  connectionOf(stream: Duplex): ClientConnection | undefined;
  /** A request or upgrade is over: its entry is complete. */
  finished(conn: ClientConnection, entry: IngressAccessEntry): void;
}

/** Bytes the connection carried since the previous request ended; moves the marks. */
export function takeBytes(conn: ClientConnection, entry: IngressAccessEntry): void {
  const read = conn.stream.bytesRead;
  const written = conn.stream.bytesWritten;
  entry.bytesIn = Math.max(0, read - conn.markRead);
  entry.bytesOut = Math.max(0, written - conn.markWritten);
  conn.markRead = read;
  conn.markWritten = written;
}
