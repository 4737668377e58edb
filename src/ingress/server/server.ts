/**
 * The ingress listener. A plain-HTTP listener is the native relay's
 * (relay-front.ts: routing, signing and logging per request in TypeScript,
 * bytes in C++); a connection that needs what the relay does not speak is
 * handed over to the node:http server below by its socket. With a
 * certificate (or engine 'node'), our own net.Server accepts each connection, reads
 * the PROXY protocol header when the NLB sends one, runs the TLS handshake
 * when the listener has a certificate, and only then hands the stream to a
 * node:http Server (keep-alive, head limits, 'upgrade'), which never listens
 * itself. The TLS context is swapped in place on SIGHUP (new handshakes use
 * the new certificate; connections already up keep theirs).
 *
 * Drain (close): stop accepting, close idle connections at once, let
 * requests in flight finish (their responses say Connection: close) until
 * the deadline, then close what is left.
 */
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import * as net from 'node:net';
import type { Duplex } from 'node:stream';
import * as tls from 'node:tls';
import { GatehouseError } from '../../errors';
import { boundAddresses, canonicalAddress, closeAll, deadlineCheckInterval, drainedOrDeadline, listenAll } from '../../listen';
import { readProxyHeader } from '../../proxy/proxy-protocol';
import { endWithReply } from '../../proxy/server/context';
import type { RouteTable } from '../routes';
import type { LatticeSigner } from '../sigv4/lattice-signer';
import type { IngressAccessEntry } from './access';
import type { ClientConnection, IngressContext } from './context';
import { handleRequest } from './handle-request';
import { checkIngressServerOptions, type CheckedIngressServerOptions, type IngressServerOptions, type TlsCredentials } from './options';
import { CLIENT_ERROR_REPLIES, rawReply } from './replies';
import type { UpstreamPool } from '../../http1';
import { IngressUpstreamDialer, ingressUpstreamPool, type UpstreamEndpoint } from './upstream-dialer';
import { handleUpgrade } from './websocket';
import { RelayFront } from './relay-front';

export interface IngressServerStats {
  /** Client connections accepted since start. */
  connections: number;
  /** Client connections open now (handshaking ones included). */
  active: number;
  /** Requests and upgrades finished. */
  requests: number;
  /** Connections dropped before HTTP: bad or late PROXY header, failed TLS handshake. */
  refused: number;
  /** Connections the native relay handed to node:http (see relay-front.ts). */
  handedOver: number;
  /** Requests the relay routed on a kept route without TypeScript (relay-front.ts keep). */
  repeated: number;
}

export interface IngressServer {
  addresses(): { host: string; port: number }[];
  stats(): IngressServerStats;
  /** Replaces the listener's certificate and key for new handshakes; throws (and keeps the old ones) when they do not load. */
  setTlsCredentials(credentials: TlsCredentials): void;
  /** The routes were reloaded: CA files are read again and idle upstream connections closed (TLS settings may have changed). */
  routesChanged(): void;
  close(opts: { drainMs: number }): Promise<void>;
}

const PEER_GONE = new Set(['ECONNRESET', 'EPIPE', 'ETIMEDOUT']);

class IngressServerImpl implements IngressServer, IngressContext {
  readonly upstreams: UpstreamPool<UpstreamEndpoint>;
  private readonly dialer = new IngressUpstreamDialer();
  readonly signer: LatticeSigner | null;
  readonly tls: boolean;
  private secureContext: tls.SecureContext | null;
  private readonly http: HttpServer;
  private listeners: net.Server[] = [];
  /** The plain-HTTP listener's relay; null with TLS or engine 'node'. */
  private readonly front: RelayFront | null;
  /** Raw sockets not yet handed to HTTP (PROXY header or TLS handshake under way). */
  private readonly pending = new Set<net.Socket>();
  private readonly connections = new Map<Duplex, ClientConnection>();
  private readonly counts = { connections: 0, requests: 0, refused: 0, handedOver: 0 };
  private closingFlag = false;
  private closePromise: Promise<void> | null = null;
  private onAllClosed: (() => void) | null = null;

  constructor(private readonly opts: CheckedIngressServerOptions) {
    this.upstreams = ingressUpstreamPool(opts.upstreamIdleMs, this.dialer);
    this.signer = opts.signer;
    this.tls = opts.tls !== null;
    this.secureContext = opts.tls === null ? null : tls.createSecureContext({ cert: opts.tls.cert, key: opts.tls.key });
    this.http = createHttpServer({
      maxHeaderSize: opts.maxHeaderBytes,
      headersTimeout: opts.headerTimeoutMs,
      // Bodies may stream for as long as they make progress (uploads of any size).
      requestTimeout: 0,
      keepAliveTimeout: opts.idleTimeoutMs,
      connectionsCheckingInterval: deadlineCheckInterval(opts.headerTimeoutMs),
      // A request without Host gets the resolver's 421, which says why.
      requireHostHeader: false,
    });
    this.http.timeout = 0;
    // Node starts its head-deadline checks on 'listening'; this server never listens itself.
    this.http.emit('listening');
    this.http.on('request', (req: IncomingMessage, res: ServerResponse) => handleRequest(this, req, res));
    this.http.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => handleUpgrade(this, req, socket, head));
    this.http.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => this.onClientError(err, socket as net.Socket));
    this.front =
      opts.tls === null && opts.engine === 'relay'
        ? new RelayFront(opts, {
            routes: () => this.opts.routes(),
            signer: this.signer,
            finished: (entry) => this.logEntry(entry),
            handOver: (fd, input, output, client, clientPort) => this.adopt(fd, input, output, client, clientPort),
          })
        : null;
  }

  get closing(): boolean {
    return this.closingFlag;
  }

  routes(): RouteTable {
    return this.opts.routes();
  }

  connectionOf(stream: Duplex): ClientConnection | undefined {
    return this.connections.get(stream);
  }

  finished(conn: ClientConnection, entry: IngressAccessEntry): void {
    conn.busy = Math.max(0, conn.busy - 1);
    if (this.closingFlag && conn.busy === 0) endGracefully(conn.stream);
    this.logEntry(entry);
  }

  private logEntry(entry: IngressAccessEntry): void {
    this.counts.requests++;
    try {
      this.opts.onAccess(entry);
    } catch {
      // A failing log sink must not take the ingress down with it.
    }
  }

  async listen(): Promise<void> {
    const front = this.front;
    if (front === null) {
      this.listeners = await listenAll(this.opts.listen, (socket) => this.onConnection(socket), { noDelay: true });
      return;
    }
    try {
      await front.listen(this.opts.listen);
    } catch (err) {
      await front.close(0);
      throw err;
    }
  }

  addresses(): { host: string; port: number }[] {
    return this.front === null ? boundAddresses(this.listeners) : this.front.boundAddresses();
  }

  stats(): IngressServerStats {
    const own = { ...this.counts, active: this.connections.size + this.pending.size, repeated: 0 };
    if (this.front === null) return own;
    const relay = this.front.stats();
    // A handed-over connection was counted when the relay accepted it.
    return { ...own, connections: own.connections + relay.connections, refused: own.refused + relay.refused, active: own.active + relay.active, repeated: relay.repeated };
  }

  setTlsCredentials(credentials: TlsCredentials): void {
    if (!this.tls) throw new GatehouseError('ERR_INVALID_ARG', 'Expected a TLS listener for setTlsCredentials but received a plain HTTP one');
    // createSecureContext throws on a key that does not match or a PEM that does not parse: the old context stays.
    this.secureContext = tls.createSecureContext({ cert: credentials.cert, key: credentials.key });
  }

  routesChanged(): void {
    // A route's TLS settings or CA file may have changed: connections made under the old ones are not reused.
    this.dialer.renew();
    this.upstreams.closeIdle();
    this.front?.routesChanged();
  }

  /** A connection the relay hands over (see relay-front.ts): node:http carries it on from `input`. */
  private adopt(fd: number, input: Buffer, output: Buffer, client: string, clientPort: number): void {
    this.counts.handedOver++;
    const socket = new net.Socket({ fd, readable: true, writable: true });
    socket.on('error', () => undefined);
    socket.setNoDelay(true);
    if (output.length > 0) socket.write(output);
    // Read again before anything new from the socket: the request the relay had framed, and what followed it.
    socket.pause();
    socket.unshift(input);
    this.pending.add(socket);
    // Even while draining: its request was read, and gets its answer (with Connection: close).
    this.attach(socket, socket, client, clientPort, true);
    const conn = this.connections.get(socket);
    // The first request's bytes were read by the relay: they count for it here.
    if (conn !== undefined) conn.markRead -= input.length;
  }

  private onConnection(socket: net.Socket): void {
    this.counts.connections++;
    // Each user of the socket handles its errors; this keeps a late one from crashing the process.
    socket.on('error', () => undefined);
    if (this.closingFlag) {
      socket.destroy();
      return;
    }
    this.pending.add(socket);
    socket.once('close', () => this.forgetPending(socket));
    this.admit(socket).catch(() => socket.destroy());
  }

  private async admit(socket: net.Socket): Promise<void> {
    let client = canonicalAddress(socket.remoteAddress);
    let clientPort = socket.remotePort ?? 0;
    if (this.opts.proxyProtocol) {
      try {
        const header = await readProxyHeader(socket, { timeoutMs: this.opts.headerTimeoutMs });
        // LOCAL (an NLB health check) has no source: the TCP peer is the client.
        if (header.source !== null) {
          client = canonicalAddress(header.source.address);
          clientPort = header.source.port;
        }
      } catch {
        this.counts.refused++;
        socket.destroy();
        return;
      }
      if (socket.destroyed) return;
    }
    if (this.secureContext === null) {
      this.attach(socket, socket, client, clientPort);
      return;
    }
    const secure = new tls.TLSSocket(socket, { isServer: true, secureContext: this.secureContext, ALPNProtocols: ['http/1.1'] });
    const timer = setTimeout(() => secure.destroy(), this.opts.headerTimeoutMs);
    secure.on('error', () => {
      clearTimeout(timer);
      if (!secure.encrypted || this.connections.get(secure) === undefined) this.counts.refused++;
      secure.destroy();
      socket.destroy();
    });
    secure.once('secure', () => {
      clearTimeout(timer);
      this.attach(socket, secure, client, clientPort);
    });
  }

  private attach(socket: net.Socket, stream: Duplex & { bytesRead: number; bytesWritten: number }, client: string, clientPort: number, handedOver = false): void {
    this.pending.delete(socket);
    if ((this.closingFlag && !handedOver) || socket.destroyed) {
      stream.destroy();
      return;
    }
    const conn: ClientConnection = { stream, client, clientPort, busy: 0, markRead: stream.bytesRead, markWritten: stream.bytesWritten };
    this.connections.set(stream, conn);
    const forget = (): void => {
      if (this.connections.delete(stream)) this.checkAllClosed();
    };
    stream.once('close', forget);
    if (stream !== socket) socket.once('close', () => stream.destroy());
    this.http.emit('connection', stream);
    // The header reader may leave the socket paused with the request's first bytes unshifted.
    if (stream === socket && socket.isPaused()) socket.resume();
  }

  private forgetPending(socket: net.Socket): void {
    if (this.pending.delete(socket)) this.checkAllClosed();
  }

  private checkAllClosed(): void {
    if (this.pending.size === 0 && this.connections.size === 0) this.onAllClosed?.();
  }

  /** Bad heads, head timeouts, oversized heads: answered when nothing else is in flight, then closed. */
  private onClientError(err: NodeJS.ErrnoException, socket: net.Socket): void {
    const conn = this.connections.get(socket);
    if (PEER_GONE.has(err.code ?? '') || conn === undefined || conn.busy > 0 || !socket.writable) {
      socket.destroy();
      return;
    }
    const reply =
      err.code === 'HPE_HEADER_OVERFLOW'
        ? rawReply(CLIENT_ERROR_REPLIES['head-too-large'])
        : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
          ? rawReply(CLIENT_ERROR_REPLIES['head-timeout'])
          : rawReply({ error: 'bad-request', reason: 'the request could not be parsed as HTTP/1.1' });
    endWithReply(socket, reply, this.opts.headerTimeoutMs);
  }

  close(opts: { drainMs: number }): Promise<void> {
    if (this.closePromise !== null) return this.closePromise;
    if (!(Number.isFinite(opts?.drainMs) && opts.drainMs >= 0)) {
      throw new GatehouseError('ERR_INVALID_ARG', `Expected a number of milliseconds >= 0 for drainMs but received ${String(opts?.drainMs)}`);
    }
    this.closingFlag = true;
    const frontClosed = this.front?.close(opts.drainMs) ?? Promise.resolve();
    const listenersClosed = closeAll(this.listeners);
    for (const socket of this.pending) socket.destroy();
    for (const conn of this.connections.values()) if (conn.busy === 0) conn.stream.destroy();
    const drained = new Promise<void>((resolve) => {
      this.onAllClosed = resolve;
      this.checkAllClosed();
    });
    this.closePromise = drainedOrDeadline(drained, opts.drainMs).then(async () => {
      for (const conn of this.connections.values()) conn.stream.destroy();
      this.http.close(() => undefined); // stops Node's head-deadline checks
      this.upstreams.close();
      await listenersClosed;
      await frontClosed;
    });
    return this.closePromise;
  }
}

/** Closes a connection once what was written to it is flushed. */
function endGracefully(stream: Duplex): void {
  if (stream.destroyed) return;
  stream.once('finish', () => stream.destroy());
  stream.end();
}

/** Starts the ingress on every `listen` address. */
export async function startIngressServer(options: IngressServerOptions): Promise<IngressServer> {
  const server = new IngressServerImpl(checkIngressServerOptions(options));
  await server.listen();
  return server;
}
