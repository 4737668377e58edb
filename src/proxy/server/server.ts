/**
 * The egress forward proxy's server. The native relay (src/native/http-relay.ts)
 * accepts, frames heads and moves every byte; this class owns what is
 * decided per connection and per request: the PROXY header's meaning, the
 * connection limits, each request's route (http-exchange.ts, tunnel.ts),
 * the access records, and the drain on close.
 */
import { GatehouseError } from '../../errors';
import { parseRequestHead } from '../../http1';
import { HttpRelay, type RelayClientError, type RelayHandler, type RelayOutcome, type RelayStats } from '../../native/http-relay';
import { canonicalAddress, deadlineCheckInterval, drainedOrDeadline, listenOnIps } from '../../listen';
import { parseProxyHeader } from '../proxy-protocol';
import type { AccessEntry, ProxyRequestFacts } from '../types';
import { AccessRecord, type ClientIdentity } from './access';
import { finishExchange, replyAndFinish, type ClientConnection, type Exchange, type ProxyContext, type ProxyCounters } from './context';
import { onHttpDone, onRoutedAnswer, onRoutedRequest, onUpstreamResponse, startHttpRequest, UPSTREAM_MAX_HEAD_BYTES } from './http-exchange';
import { checkProxyServerOptions, type CheckedProxyServerOptions, type ProxyDecision, type ProxyServerOptions } from './options';
import { onTunnelConnected, onTunnelDone, onTunnelStart, startTunnel } from './tunnel';

export interface ProxyServerStats {
  /** Client connections accepted since start. */
  connections: number;
  /** Client connections open now. */
  active: number;
  /** HTTP requests and CONNECTs received. */
  requests: number;
  /** CONNECT tunnels established (200 sent). */
  tunnels: number;
  /** Access entries with decision 'deny' (policy, SSRF, fronting). */
  denied: number;
  /** Access entries with decision 'error' (bad requests, limits, timeouts, upstream failures). */
  errors: number;
  /** Bytes received from and sent to clients. */
  bytesIn: number;
  bytesOut: number;
}

export interface ProxyServer {
  /** The bound addresses (the real port when 0 was asked for). */
  addresses(): { host: string; port: number }[];
  stats(): ProxyServerStats;
  /**
   * Stops accepting, closes idle connections at once, lets requests and
   * tunnels in flight run until `drainMs`, then destroys what is left.
   */
  close(opts: { drainMs: number }): Promise<void>;
  /** The policy `decide` answers with changed: no kept route is repeated any more (see keptRouteMs). */
  policyChanged(): void;
}

/**
 * A kept route's finished exchange reaches the logs and counters at most
 * this late: the relay gathers such reports into one call per batch, which
 * at a steady load halves what a repeated request costs in JavaScript.
 */
const ROUTED_REPORT_DELAY_MS = 50;

const CLIENT_ERROR_REPLIES: Record<'head-too-large' | 'head-timeout', { status: number; reason: string; text: string }> = {
  'head-too-large': { status: 431, reason: 'header-too-large', text: 'the request head is too large' },
  'head-timeout': { status: 408, reason: 'timeout', text: 'the request head did not arrive in time' },
};

class ProxyServerImpl implements ProxyServer, ProxyContext, RelayHandler {
  readonly counters: ProxyCounters = { connections: 0, requests: 0, tunnels: 0, denied: 0, errors: 0 };
  readonly relay: HttpRelay;
  private bound: { host: string; port: number }[] = [];
  private readonly conns = new Map<number, ClientConnection>();
  private readonly perClient = new Map<string, number>();
  private closingFlag = false;
  private closePromise: Promise<void> | null = null;
  private onAllClosed: (() => void) | null = null;
  /** The relay's byte counts as they were when it was destroyed. */
  private finalRelayStats: RelayStats | null = null;

  constructor(readonly opts: CheckedProxyServerOptions) {
    this.relay = new HttpRelay(
      {
        maxHeadBytes: opts.maxHeaderBytes,
        maxResponseHeadBytes: UPSTREAM_MAX_HEAD_BYTES,
        proxyProtocol: opts.proxyProtocol,
        headerTimeoutMs: opts.headerTimeoutMs,
        idleTimeoutMs: opts.idleTimeoutMs,
        connectTimeoutMs: opts.connectTimeoutMs,
        poolIdleMs: opts.idleTimeoutMs,
        frontingTimeoutMs: opts.frontingTimeoutMs,
        tickMs: deadlineCheckInterval(opts.headerTimeoutMs),
        reportDelayMs: ROUTED_REPORT_DELAY_MS,
      },
      this,
    );
  }

  get closing(): boolean {
    return this.closingFlag;
  }

  async listen(): Promise<void> {
    try {
      this.bound = await listenOnIps(this.opts.listen, (ip, port) => this.relay.listen(ip, port));
    } catch (err) {
      this.relay.destroy();
      throw err;
    }
  }

  addresses(): { host: string; port: number }[] {
    return this.bound.map((b) => ({ ...b }));
  }

  stats(): ProxyServerStats {
    const r = this.finalRelayStats ?? this.relay.stats();
    return { ...this.counters, active: this.conns.size, bytesIn: r.bytesIn, bytesOut: r.bytesOut };
  }

  current(conn: ClientConnection, exchange: Exchange): boolean {
    return this.conns.get(conn.id) === conn && conn.exchange === exchange;
  }

  record(who: ClientIdentity, method: string, url: string): AccessRecord {
    return new AccessRecord((entry) => this.emitAccess(entry), who, method, url);
  }

  decide(facts: ProxyRequestFacts): ProxyDecision | null {
    try {
      return this.opts.decide(facts);
    } catch {
      return null;
    }
  }

  private emitAccess(entry: AccessEntry): void {
    if (entry.decision === 'deny') this.counters.denied++;
    if (entry.decision === 'error') this.counters.errors++;
    try {
      this.opts.onAccess(entry);
    } catch {
      // A failing log sink must not take the proxy down with it.
    }
  }

  // ---- the relay's events

  open(id: number, peerAddress: string, peerPort: number, proxyHeader: Buffer | null): void {
    this.counters.connections++;
    // The relay's listeners are IPv6-only: a peer is never IPv4-mapped, and inet_ntop's text is canonical already.
    const peer: ClientIdentity = { client: peerAddress, clientPort: peerPort, endpoint: null };
    if (this.closingFlag) {
      this.relay.close(id);
      return;
    }
    let who = peer;
    if (proxyHeader !== null) {
      const header = parseProxyHeader(proxyHeader);
      if (header.status !== 'complete') {
        this.record(peer, 'NONE', 'error:proxy-protocol').finish({ decision: 'error', reason: 'proxy-protocol', bytesFromClient: proxyHeader.length });
        this.relay.close(id);
        return;
      }
      who = header.source === null ? { ...peer, endpoint: header.vpceId } : { client: canonicalAddress(header.source.address), clientPort: header.source.port, endpoint: header.vpceId };
    }
    // Fields spelled out: an object spread here cost more than the rest of open() (V8 clones through the runtime).
    const conn: ClientConnection = {
      client: who.client,
      clientPort: who.clientPort,
      endpoint: who.endpoint,
      id,
      route: null,
      exchange: null,
      ended: false,
      bytesFromClient: 0, // the relay counts every byte read (the PROXY header too) and reports them with the exchange
      bytesToClient: 0,
    };
    this.conns.set(id, conn);
    const count = (this.perClient.get(conn.client) ?? 0) + 1;
    this.perClient.set(conn.client, count);
    // Counted after the PROXY header: behind an NLB every connection comes from the balancer.
    if (this.conns.size > this.opts.maxConnections) {
      this.refuse(conn, 503, 'connection-limit', 'the proxy has too many connections; retry later');
    } else if (count > this.opts.maxConnectionsPerClient) {
      this.refuse(conn, 429, 'client-limit', 'too many connections from this client; retry later');
    }
  }

  private refuse(conn: ClientConnection, status: 503 | 429, what: string, text: string): void {
    conn.exchange = this.newExchange(conn, 'NONE', `error:${what}`, 1, false);
    replyAndFinish(this, conn, { status, text }, 'NONE', 'limit', false);
  }

  private newExchange(conn: ClientConnection, method: string, url: string, clientMinor: 0 | 1, clientKeepAlive: boolean): Exchange {
    return { rec: this.record(conn, method, url), clientMinor, clientKeepAlive, authority: '', target: null, upstream: null, fronting: null, answered: false };
  }

  request(id: number, bytes: string): void {
    const conn = this.conns.get(id);
    if (conn === undefined) {
      this.relay.close(id);
      return;
    }
    if (conn.ended) return;
    this.counters.requests++;
    const parsed = parseRequestHead(bytes);
    if (!parsed.ok) {
      conn.exchange = this.newExchange(conn, 'NONE', 'error:bad-request', 1, false);
      replyAndFinish(this, conn, { status: 400, text: `the request could not be parsed (${parsed.reason})` }, 'NONE', 'bad-request', false);
      return;
    }
    const head = parsed.head;
    const method = head.method.toUpperCase();
    conn.exchange = this.newExchange(conn, method, head.target, head.minorVersion, head.keepAlive && !this.closingFlag);
    // (A handler that throws costs this connection only: the relay wrapper closes it.)
    if (method === 'CONNECT') startTunnel(this, conn, head);
    else startHttpRequest(this, conn, head);
  }

  routed(id: number, path: string, keepAlive: boolean, startedAt: number): void {
    this.openRouted(id, path, keepAlive, startedAt);
  }

  /** False when the connection cannot take a routed exchange (it is closed instead). */
  private openRouted(id: number, path: string, keepAlive: boolean, startedAt: number): boolean {
    const conn = this.conns.get(id);
    // The relay routes only between exchanges of a connection that has a route.
    if (conn === undefined || conn.route === null || conn.exchange !== null || conn.ended) {
      this.relay.close(id);
      return false;
    }
    this.counters.requests++;
    const route = conn.route;
    conn.exchange = this.newExchange(conn, route.method, `http://${route.target.authority}${path}`, 1, keepAlive && !this.closingFlag);
    conn.exchange.rec.backdate(startedAt);
    onRoutedRequest(conn, route);
    return true;
  }

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
  ): void {
    // Refused: the rest of this report would land on another exchange.
    if (!this.openRouted(id, path, true, startedAt)) return;
    this.conns.get(id)?.exchange?.rec.took(tookMs);
    this.answered(id, status, connectMs, contentType);
    this.done(id, 'complete', null, bytesFromClient, bytesToClient);
  }

  /** The proxy never forwards with answerHere (its plain answers are the kept routes'). */
  answeredDone(id: number): void {
    this.relay.close(id);
  }

  answered(id: number, status: number, connectMs: number, contentType: string | null): void {
    const conn = this.conns.get(id);
    if (conn !== undefined) onRoutedAnswer(conn, status, connectMs, contentType);
  }

  policyChanged(): void {
    this.relay.forgetRoutes();
  }

  response(id: number, head: string, connectMs: number): void {
    const conn = this.conns.get(id);
    if (conn !== undefined) onUpstreamResponse(this, conn, head, connectMs);
  }

  connected(id: number, connectMs: number): void {
    const conn = this.conns.get(id);
    if (conn !== undefined) onTunnelConnected(this, conn, connectMs);
  }

  fronting(id: number, bytes: Buffer, timedOut: boolean): void {
    const conn = this.conns.get(id);
    if (conn !== undefined) onTunnelStart(this, conn, bytes, timedOut);
  }

  done(id: number, outcome: RelayOutcome, error: string | null, bytesFromClient: number, bytesToClient: number): void {
    const conn = this.conns.get(id);
    if (conn === undefined || conn.exchange === null) return;
    conn.bytesFromClient += bytesFromClient;
    conn.bytesToClient += bytesToClient;
    if (conn.exchange.rec.entry.method === 'CONNECT') onTunnelDone(this, conn, outcome, error);
    else onHttpDone(this, conn, outcome, error);
  }

  clientError(id: number, kind: RelayClientError, peer: string, peerPort: number): void {
    if (kind === 'bad-proxy-header' || kind === 'proxy-header-timeout') {
      // The relay has closed it; open() never ran for it.
      const who = { client: canonicalAddress(peer), clientPort: peerPort, endpoint: null };
      this.record(who, 'NONE', 'error:proxy-protocol').finish({ decision: 'error', reason: 'proxy-protocol' });
      return;
    }
    const conn = this.conns.get(id);
    if (conn === undefined) return;
    const reply = CLIENT_ERROR_REPLIES[kind];
    conn.exchange = this.newExchange(conn, 'NONE', `error:${reply.reason}`, 1, false);
    replyAndFinish(this, conn, { status: reply.status, text: reply.text }, 'NONE', reply.reason, false);
  }

  closed(id: number, bytesFromClient: number, bytesToClient: number): void {
    const conn = this.conns.get(id);
    if (conn === undefined) return;
    this.conns.delete(id);
    conn.bytesFromClient += bytesFromClient;
    conn.bytesToClient += bytesToClient;
    const ex = conn.exchange;
    if (ex !== null) {
      // The connection ended in the middle of its exchange (the client left, or a fronting refusal).
      const e = ex.rec.entry;
      if (e.method !== 'CONNECT' && e.squidResult !== 'NONE' && !e.squidResult.endsWith('_ABORTED')) e.squidResult = `${e.squidResult}_ABORTED`;
      finishExchange(conn);
    }
    const left = (this.perClient.get(conn.client) ?? 1) - 1;
    if (left > 0) this.perClient.set(conn.client, left);
    else this.perClient.delete(conn.client);
    if (this.conns.size === 0) this.onAllClosed?.();
  }

  close(opts: { drainMs: number }): Promise<void> {
    if (this.closePromise !== null) return this.closePromise;
    if (!(Number.isFinite(opts?.drainMs) && opts.drainMs >= 0)) {
      throw new GatehouseError('ERR_INVALID_ARG', `Expected a number of milliseconds >= 0 for drainMs but received ${String(opts?.drainMs)}`);
    }
    this.closingFlag = true;
    this.relay.stopListening();
    this.relay.closeIdle();
    const drained = new Promise<void>((resolve) => {
      if (this.conns.size === 0) resolve();
      else this.onAllClosed = resolve;
    });
    this.closePromise = drainedOrDeadline(drained, opts.drainMs).then(() => {
      this.finalRelayStats = this.relay.stats();
      this.relay.destroy();
      // Whatever was still open is gone now: its records end here.
      for (const id of [...this.conns.keys()]) this.closed(id, 0, 0);
    });
    return this.closePromise;
  }
}

/** Starts the egress forward proxy on every `listen` address. */
export async function startProxyServer(options: ProxyServerOptions): Promise<ProxyServer> {
  const server = new ProxyServerImpl(checkProxyServerOptions(options));
  await server.listen();
  return server;
}

