/**
 * The ingress on the native relay (src/native/http-relay.ts), for plain-HTTP
 * listeners: the relay accepts, frames heads, pools upstream connections and
 * moves both bodies; this module routes, signs and rewrites each request and
 * records it, as handle-request.ts does on node:http (same routing, same
 * headers toward the upstream, same JSON answers, same access entries).
 *
 * What the relay does not speak is handed over, socket and all, to the
 * node:http server, which carries that connection on from the request in
 * hand: a route with TLS to its upstream (Lattice's default), a WebSocket
 * upgrade, and `Expect: 100-continue` (Node answers the 100 itself).
 */
import { isIP } from 'node:net';
import { performance } from 'node:perf_hooks';
import { isIdempotent, parseRequestHead, readResponseHead, requestFraming, responseFraming, serializeRequestHead, type RequestFraming, type RequestHead as WireRequestHead } from '../../http1';
import { HttpRelay, type ExactRoute, type IngressRoute, type RelayClientError, type RelayHandler, type RelayOutcome } from '../../native/http-relay';
import { canonicalAddress, deadlineCheckInterval, drainedOrDeadline, listenOnIps, type ListenAddress } from '../../listen';
import { parseProxyHeader } from '../../proxy/proxy-protocol';
import { clientAnswer } from '../../proxy/server/http-exchange';
import type { ResolvedUpstream, Route, RouteTable } from '../routes';
import type { LatticeSigner, SignedHeaders } from '../sigv4/lattice-signer';
import { newAccessEntry, pathWithoutQuery, type IngressAccessEntry } from './access';
import { noRouteReply, NO_REGION_REPLY, routeLabel, routeRequest, signingRefusal } from './handle-request';
import type { CheckedIngressServerOptions } from './options';
import { CLIENT_ERROR_REPLIES, rawReply, replyStatus, type IngressReply } from './replies';
import { readRequestHead, type RequestHead } from './request-head';
import { MAX_RESPONSE_HEAD_BYTES, UPSTREAM_CONNECT_TIMEOUT_MS } from './upstream-dialer';
import { UpstreamAddresses } from './upstream-addresses';
import { upstreamRequestHeaders } from './upstream-headers';

/** What the front needs from the server that owns it. */
export interface RelayFrontHost {
  routes(): RouteTable;
  readonly signer: LatticeSigner | null;
  /** A request is over: its entry is complete. */
  finished(entry: IngressAccessEntry): void;
  /**
   * Carries a connection on in the node:http server: its socket, the bytes
   * the client sent from this request's head on, and the answer bytes the
   * relay had not written yet (they go out first).
   */
  handOver(fd: number, input: Buffer, output: Buffer, client: string, clientPort: number): void;
}

export interface RelayFrontStats {
  connections: number;
  active: number;
  refused: number;
  repeated: number;
}

interface FrontExchange {
  readonly entry: IngressAccessEntry;
  readonly startedAt: number;
  readonly minor: 0 | 1;
  readonly keepAlive: boolean;
  /** Where routing sent it (null before, and for the ingress's own answers). */
  call: UpstreamCall | null;
  /** The address dialled for `call`'s upstream. */
  ip: string;
  sentAt: number;
  answered: boolean;
}

interface FrontConnection {
  readonly id: number;
  readonly client: string;
  readonly clientPort: number;
  exchange: FrontExchange | null;
  /** The last request given to the relay as a kept route: its repeats are logged as it was. */
  kept: UpstreamCall | null;
  /** Requests the relay routed on `kept`. */
  repeatsOfKept: number;
  /** Decided requests in a row that found the kept route before them unused (see keep). */
  unusedKeeps: number;
  /** No further request is read on it (an answer said Connection: close, or it was handed over). */
  ended: boolean;
  bytesIn: number;
  bytesOut: number;
}

/** Errors that say no connection could be made to an address (another of the name's may work). */
const CONNECT_FAILURES = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL']);

/**
 * A plainly answered request reaches the log and metrics at most this late:
 * the relay gathers such reports into one call per batch (as the access
 * log gathers lines), instead of one call into JavaScript per request.
 */
const ANSWER_REPORT_DELAY_MS = 50;

/** How long the relay may route a decided request's repeats (keepIngress, keepExact). */
const REPEAT_WINDOW_MS = 1000;

/** Kept routes a connection may leave unused in a row before it gets one every KEEP_BACKOFF decided requests only. */
const KEEPS_BEFORE_BACKOFF = 4;
const KEEP_BACKOFF = 32;

const SLASH = 0x2f;

/** Where the signature's fields begin in an upstream head, and its Authorization (upstream-headers.ts adds them in this order). */
const AMZ_DATE_LINE = '\r\nX-Amz-Date: ';
const AUTHORIZATION_LINE = '\r\nAuthorization: ';

/** The upstream as routed, for failure texts: "host:port". */
function routedTo(ex: FrontExchange): string {
  const up = ex.call?.upstream;
  return up === undefined ? '-' : `${up.host}:${up.port}`;
}

/** The client got the upstream's answer head: its status, `upstreamMs` after the request went upstream. */
function answeredWith(ex: FrontExchange, status: number, upstreamMs: number): void {
  ex.entry.status = status;
  ex.entry.upstreamMs = upstreamMs;
  ex.answered = true;
}

/** The address dialled, for failure texts: "ip:port" ("[ip]:port" for IPv6). */
function dialled(ex: FrontExchange): string {
  const port = ex.call?.upstream.port ?? 0;
  return isIP(ex.ip) === 6 ? `[${ex.ip}]:${port}` : `${ex.ip}:${port}`;
}

export class RelayFront implements RelayHandler {
  private readonly relay: HttpRelay;
  private readonly conns = new Map<number, FrontConnection>();
  private readonly addresses = new UpstreamAddresses(UPSTREAM_CONNECT_TIMEOUT_MS);
  private readonly counts = { connections: 0, refused: 0, repeated: 0 };
  private bound: ListenAddress[] = [];
  private closingFlag = false;
  /** Bumped by routesChanged: a request decided before it is not kept. */
  private routesEpoch = 0;
  private closePromise: Promise<void> | null = null;
  private onAllClosed: (() => void) | null = null;

  constructor(
    opts: CheckedIngressServerOptions,
    private readonly host: RelayFrontHost,
  ) {
    this.relay = new HttpRelay(
      {
        maxHeadBytes: opts.maxHeaderBytes,
        // The node:http engine's limit: both engines take the same answers.
        maxResponseHeadBytes: MAX_RESPONSE_HEAD_BYTES,
        proxyProtocol: opts.proxyProtocol,
        headerTimeoutMs: opts.headerTimeoutMs,
        idleTimeoutMs: opts.idleTimeoutMs,
        connectTimeoutMs: UPSTREAM_CONNECT_TIMEOUT_MS,
        poolIdleMs: opts.upstreamIdleMs,
        // No tunnels here; the relay wants a value.
        frontingTimeoutMs: opts.headerTimeoutMs,
        tickMs: deadlineCheckInterval(opts.headerTimeoutMs),
        reportDelayMs: ANSWER_REPORT_DELAY_MS,
      },
      this,
    );
  }

  async listen(addresses: readonly ListenAddress[]): Promise<void> {
    this.bound = await listenOnIps(addresses, (ip, port) => this.relay.listen(ip, port));
  }

  boundAddresses(): ListenAddress[] {
    return this.bound.map((b) => ({ ...b }));
  }

  stats(): RelayFrontStats {
    return { ...this.counts, active: this.conns.size };
  }

  /** Routes were reloaded: upstream names are looked up again, and no request is repeated on an old decision. */
  routesChanged(): void {
    this.routesEpoch++;
    this.addresses.clear();
    this.relay.forgetRoutes();
  }

  // ---- the relay's events

  open(id: number, peer: string, peerPort: number, proxyHeader: Buffer | null): void {
    this.counts.connections++;
    if (this.closingFlag) {
      this.relay.close(id);
      return;
    }
    let client = canonicalAddress(peer);
    let clientPort = peerPort;
    if (proxyHeader !== null) {
      const header = parseProxyHeader(proxyHeader);
      if (header.status !== 'complete') {
        this.counts.refused++;
        this.relay.close(id);
        return;
      }
      // LOCAL (an NLB health check) has no source: the TCP peer is the client.
      if (header.source !== null) {
        client = canonicalAddress(header.source.address);
        clientPort = header.source.port;
      }
    }
    this.conns.set(id, { id, client, clientPort, exchange: null, kept: null, repeatsOfKept: 0, unusedKeeps: 0, ended: false, bytesIn: 0, bytesOut: 0 });
  }

  request(id: number, text: string): void {
    const conn = this.conns.get(id);
    if (conn === undefined) {
      this.relay.close(id);
      return;
    }
    if (conn.ended) return;
    const parsed = parseRequestHead(text);
    const ex = this.newExchange(conn, parsed.ok ? parsed.head : null);
    if (!parsed.ok) {
      this.reply(conn, ex, { error: 'bad-request', reason: `the request could not be parsed as HTTP/1.1 (${parsed.reason})` }, undefined, false);
      return;
    }
    const wire = parsed.head;
    const read = readRequestHead(wire.target, wire.rawHeaders);
    const framing = requestFraming(wire.transferEncoding, wire.contentLength);
    // A body left unread cannot be skipped to reach the next request: answers to such requests close.
    const canContinue = framing.body === 'none';
    if (!read.ok) {
      this.reply(conn, ex, { error: 'bad-request', reason: read.reason }, undefined, canContinue);
      return;
    }
    const head = read.head;
    if (head.expectOrUpgrade) {
      this.handOver(conn, text);
      return;
    }
    const e = ex.entry;
    const resolved = routeRequest(e, head, this.host.routes());
    if (!resolved.ok) {
      this.reply(conn, ex, noRouteReply(resolved), undefined, canContinue);
      return;
    }
    if (resolved.upstream.tls) {
      this.handOver(conn, text);
      return;
    }
    const route = resolved.route;
    const upstream = resolved.upstream;
    const call: UpstreamCall = {
      conn,
      ex,
      text,
      wire,
      head,
      route,
      upstream,
      authority: resolved.signHost,
      path: upstream.pathPrefix === undefined ? head.path : `${upstream.pathPrefix}${head.path}`,
      framing,
      wholePrefix: resolved.wholePrefix,
      routesEpoch: this.routesEpoch,
      signature: null,
    };
    e.route = routeLabel(route);
    e.upstream = resolved.signHost;
    ex.call = call;
    if (!route.sign) {
      this.send(call, null);
      return;
    }
    const signer = this.host.signer;
    if (signer === null) {
      this.reply(conn, ex, NO_REGION_REPLY, undefined, canContinue);
      return;
    }
    e.signed = true;
    const request = { method: e.method, host: call.authority, path: call.path };
    // With credentials and the day's key at hand, signed here and now: no promise per request.
    let signature: SignedHeaders | null;
    try {
      signature = signer.signNow(request);
    } catch (err) {
      this.signFailed(conn, ex, err, canContinue);
      return;
    }
    if (signature !== null) {
      this.send(call, signature);
      return;
    }
    signer.sign(request).then(
      (resolved) => {
        if (conn.exchange === ex) this.send(call, resolved);
      },
      (err: unknown) => {
        if (conn.exchange === ex) this.signFailed(conn, ex, err, canContinue);
      },
    );
  }

  private signFailed(conn: FrontConnection, ex: FrontExchange, err: unknown, canContinue: boolean): void {
    ex.entry.signed = false;
    const { reply, kind } = signingRefusal(err);
    this.reply(conn, ex, reply, kind, canContinue);
  }

  private send(call: UpstreamCall, signature: SignedHeaders | null): void {
    const { conn, ex, wire, framing } = call;
    call.signature = signature;
    const headers = upstreamRequestHeaders(wire.rawHeaders, call.head, {
      authority: call.authority,
      signature,
      stripAuthorization: call.route.stripAuthorization,
      client: conn.client,
      proto: 'http',
      framing: framing.fields,
    });
    let bytes: string;
    try {
      bytes = serializeRequestHead(ex.entry.method, call.path, headers);
    } catch (err) {
      this.reply(conn, ex, { error: 'bad-request', reason: `the request cannot be forwarded: ${(err as Error).message}` }, undefined, false);
      return;
    }
    const address = this.addresses.get(call.upstream.host);
    if (typeof address === 'string') {
      this.forward(call, address, bytes);
      return;
    }
    address.then(
      (ip) => {
        if (conn.exchange === ex) this.forward(call, ip, bytes);
      },
      (err: NodeJS.ErrnoException) => {
        if (conn.exchange !== ex) return;
        if (err.code === 'ETIMEDOUT') this.reply(conn, ex, { error: 'gateway-timeout', reason: `no address for the upstream ${routedTo(ex)} within ${UPSTREAM_CONNECT_TIMEOUT_MS} ms` }, 'upstream', false);
        else this.reply(conn, ex, { error: 'bad-gateway', reason: `the upstream could not be reached: ${routedTo(ex)}: ${err.code ?? err.message}` }, 'upstream', false);
      },
    );
  }

  private forward(call: UpstreamCall, ip: string, bytes: string): void {
    const { conn, ex, wire, framing } = call;
    const bodyLength = framing.body === 'chunked' ? -1 : framing.body === 'length' ? Number(wire.contentLength) : 0;
    ex.sentAt = performance.now();
    ex.ip = ip;
    // A plain answer to an HTTP/1.1 client is rewritten by the relay (what clientAnswer would write), reported by `answered`.
    const answerHere = ex.minor === 1 ? { keepAlive: ex.keepAlive && !this.closingFlag, headRequest: ex.entry.method === 'HEAD' } : null;
    this.relay.forward(conn.id, ip, call.upstream.port, bytes, bodyLength, isIdempotent(ex.entry.method), call.route.timeoutMs, answerHere);
    this.keep(call, ip, bytes);
  }

  /**
   * A plain GET or HEAD on a keep-alive HTTP/1.1 connection: for
   * REPEAT_WINDOW_MS, the relay sends the connection's next requests that
   * repeat it upstream without asking here, as an ingress route
   * (keepIngress) or, when that cannot be kept, an exact one (keepExact).
   * Everything the decision rests on is in the request's head (host, path,
   * the headers forwarded), the client and the route table (routesChanged
   * forgets every kept route); a repeat's signature is made in the second
   * of its X-Amz-Date, an exact repeat's is at most that much older than a
   * fresh one (Lattice accepts an x-amz-date minutes old; a route's
   * addresses are looked up again at most every 10 s).
   */
  private keep(call: UpstreamCall, ip: string, upstreamHead: string): void {
    const { conn, ex } = call;
    const method = ex.entry.method;
    if ((method !== 'GET' && method !== 'HEAD') || call.framing.body !== 'none' || ex.minor !== 1 || !ex.keepAlive || this.closingFlag) return;
    // Routes reloaded while it waited for its signature or address: its decision is not the table's any more.
    if (call.routesEpoch !== this.routesEpoch) return;
    // Keeping copies the request's heads into the relay. A client whose
    // requests each differ in a header field (a request id) never repeats
    // a route: after KEEPS_BEFORE_BACKOFF kept routes go unused in a row,
    // its connection is given one every KEEP_BACKOFF decided requests only.
    conn.unusedKeeps = conn.kept !== null && conn.repeatsOfKept === 0 ? conn.unusedKeeps + 1 : 0;
    if (conn.unusedKeeps >= KEEPS_BEFORE_BACKOFF && conn.unusedKeeps % KEEP_BACKOFF !== 0) return;
    const exact: ExactRoute = { method, request: call.text, upstreamHead, ip, port: call.upstream.port, path: call.head.path, lifetimeMs: REPEAT_WINDOW_MS, idleMs: call.route.timeoutMs };
    conn.kept = this.keepIngress(call, exact) || this.relay.keepExact(conn.id, exact) ? call : null;
    conn.repeatsOfKept = 0;
  }

  /**
   * Requests with this one's Host, User-Agent and Referer to any plain path
   * under its route's prefix (native/src/http_route.h) are routed as it was,
   * their fields rewritten as upstream-headers.ts would. Not for an
   * absolute-form target (its authority, not Host, chose the route), nor
   * for a route a longer prefix of the host may take paths from, nor when
   * the signer gives no parts for the signature (signingParts).
   */
  private keepIngress(call: UpstreamCall, exact: ExactRoute): boolean {
    if (!call.wholePrefix || call.wire.target.charCodeAt(0) !== SLASH) return false;
    const signature = call.signature;
    let signing: IngressRoute['signing'] = null;
    if (signature !== null) {
      const parts = this.host.signer?.signingParts(signature) ?? null;
      // The signature's fields as the decided head carries them: from X-Amz-Date to Authorization.
      const from = exact.upstreamHead.indexOf(AMZ_DATE_LINE);
      const to = exact.upstreamHead.indexOf(`${AUTHORIZATION_LINE}${signature.authorization}\r\n`);
      if (parts === null || from < 0 || to < from) return false;
      signing = { ...parts, amzFields: exact.upstreamHead.slice(from + 2, to + 2) };
    }
    const { conn, head } = call;
    return this.relay.keepIngress(conn.id, {
      ...exact,
      host: head.host,
      userAgent: head.userAgent,
      referer: head.referer,
      matchPrefix: call.route.prefix,
      upstreamPrefix: call.upstream.pathPrefix ?? '',
      authority: call.authority,
      client: conn.client,
      proto: 'http',
      stripAuthorization: call.route.stripAuthorization,
      signing,
    });
  }

  response(id: number, text: string): void {
    const conn = this.conns.get(id);
    const ex = conn?.exchange;
    if (conn === undefined || ex === undefined || ex === null) return;
    // The relay frames the head (CRLF CRLF at its end, at most MAX_RESPONSE_HEAD_BYTES).
    const parsed = readResponseHead(text.slice(0, -4));
    const framing = parsed.kind === 'head' ? responseFraming(parsed.head, ex.entry.method) : null;
    // 101: nothing asked to switch (upgrades go to node:http).
    if (parsed.kind !== 'head' || framing === null || !framing.ok || parsed.head.statusCode === 101) {
      this.badResponse(conn, ex);
      return;
    }
    const head = parsed.head;
    const answer = clientAnswer(head, framing.framing, ex.minor, ex.keepAlive && !this.closingFlag, null);
    if (answer === null) {
      this.badResponse(conn, ex);
      return;
    }
    if (head.statusCode >= 200) answeredWith(ex, head.statusCode, performance.now() - ex.sentAt);
    this.relay.answer(id, answer.text, answer.body, answer.length, answer.keepAlive, framing.reusable);
  }

  done(id: number, outcome: RelayOutcome, error: string | null, bytesIn: number, bytesOut: number): void {
    const conn = this.conns.get(id);
    const ex = conn?.exchange;
    if (conn === undefined || ex === undefined || ex === null) return;
    conn.bytesIn += bytesIn;
    conn.bytesOut += bytesOut;
    switch (outcome) {
      case 'complete':
        this.finish(conn, ex);
        return;
      case 'upstream-failed':
        if (error !== null && CONNECT_FAILURES.has(error)) this.addressFailed(ex);
        // The request body may be half sent: the connection cannot be trusted for another request.
        this.reply(conn, ex, { error: 'bad-gateway', reason: `the upstream could not be reached: ${routedTo(ex)}: ${error ?? 'ECONNRESET'} ${dialled(ex)}` }, 'upstream', false);
        return;
      case 'upstream-timeout': {
        // ETIMEDOUT: the connect deadline; none: the route's inactivity limit.
        if (error === 'ETIMEDOUT') this.addressFailed(ex);
        const reason =
          error === 'ETIMEDOUT' ? `no connection to the upstream ${routedTo(ex)} within ${UPSTREAM_CONNECT_TIMEOUT_MS} ms` : `the upstream ${routedTo(ex)} sent nothing for ${ex.call?.route.timeoutMs ?? 0} ms`;
        this.reply(conn, ex, { error: 'gateway-timeout', reason }, 'upstream', false);
        return;
      }
      case 'bad-upstream-head':
        this.badResponse(conn, ex);
        return;
      default:
        // Cut short after the answer began, or the client left or sent a broken body.
        ex.entry.reason =
          outcome === 'bad-request-body'
            ? 'bad-request: the request body is not valid chunked encoding'
            : outcome === 'client-gone'
              ? 'the response did not complete'
              : `upstream:${routedTo(ex)}: ${error ?? outcome}`;
        if (!ex.answered) ex.entry.status = 0;
        this.finish(conn, ex);
    }
  }

  clientError(id: number, kind: RelayClientError): void {
    if (kind === 'bad-proxy-header' || kind === 'proxy-header-timeout') {
      this.counts.refused++; // the relay has closed it; open() never ran for it
      return;
    }
    const conn = this.conns.get(id);
    if (conn === undefined) return;
    conn.ended = true;
    this.relay.respond(id, rawReply(CLIENT_ERROR_REPLIES[kind]), false);
  }

  closed(id: number, bytesIn: number, bytesOut: number): void {
    const conn = this.conns.get(id);
    if (conn === undefined) return;
    this.conns.delete(id);
    const ex = conn.exchange;
    if (ex !== null) {
      // The connection ended in the middle of its exchange: the client left, or the answer broke off.
      conn.bytesIn += bytesIn;
      conn.bytesOut += bytesOut;
      if (ex.entry.reason === null) ex.entry.reason = 'the response did not complete';
      if (!ex.answered) ex.entry.status = 0;
      this.finish(conn, ex);
    }
    if (this.conns.size === 0) this.onAllClosed?.();
  }

  // Tunnels and kept routes are the forward proxy's; the ingress asks for neither.
  connected(id: number): void {
    this.relay.close(id);
  }

  fronting(id: number): void {
    this.relay.close(id);
  }

  /** A repeat of the connection's kept request went upstream without a `request` call, and now needs TypeScript. */
  routed(id: number, path: string, keepAlive: boolean, startedAt: number): void {
    this.openRepeat(id, path, keepAlive, startedAt);
  }

  answered(id: number, status: number): void {
    const ex = this.conns.get(id)?.exchange;
    if (ex !== undefined && ex !== null) answeredWith(ex, status, performance.now() - ex.sentAt);
  }

  answeredDone(id: number, status: number, _connectMs: number, _contentType: string | null, bytesIn: number, bytesOut: number, tookMs: number, headMs: number): void {
    const conn = this.conns.get(id);
    const ex = conn?.exchange;
    if (conn === undefined || ex === undefined || ex === null) return;
    conn.bytesIn += bytesIn;
    conn.bytesOut += bytesOut;
    answeredWith(ex, status, headMs);
    // The report may come late: the duration is the relay's, from when the request went upstream.
    this.finish(conn, ex, ex.sentAt - ex.startedAt + tookMs);
  }

  /** A repeat of the connection's kept request, answered plainly and complete. */
  routedDone(id: number, path: string, _contentType: string | null, status: number, _connectMs: number, bytesIn: number, bytesOut: number, startedAt: number, tookMs: number, headMs: number): void {
    const ex = this.openRepeat(id, path, true, startedAt);
    const conn = this.conns.get(id);
    if (ex === null || conn === undefined) return;
    conn.bytesIn += bytesIn;
    conn.bytesOut += bytesOut;
    answeredWith(ex, status, headMs);
    this.finish(conn, ex, tookMs);
  }

  /**
   * The exchange of a repeat of `path`: logged as its kept request was (the
   * same host, route, upstream and signing), timed from when it arrived.
   * Null (and the connection closed) when there is no kept request to
   * repeat: the relay keeps routes only between this connection's exchanges.
   */
  private openRepeat(id: number, path: string, keepAlive: boolean, startedAt: number): FrontExchange | null {
    const conn = this.conns.get(id);
    const kept = conn === undefined || conn.exchange !== null || conn.ended ? null : conn.kept;
    if (conn === undefined || kept === null) {
      this.relay.close(id);
      return null;
    }
    this.counts.repeated++;
    conn.repeatsOfKept++;
    const first = kept.ex.entry;
    const entry = newAccessEntry(conn.client, conn.clientPort, first.method, false);
    entry.start = new Date(startedAt);
    entry.protocol = first.protocol;
    entry.host = first.host;
    entry.path = pathWithoutQuery(path);
    entry.userAgent = first.userAgent;
    entry.referer = first.referer;
    entry.route = first.route;
    entry.upstream = first.upstream;
    entry.signed = first.signed;
    const arrived = performance.now() - Math.max(0, Date.now() - startedAt);
    const ex: FrontExchange = { entry, startedAt: arrived, minor: 1, keepAlive: keepAlive && !this.closingFlag, call: kept, ip: kept.ex.ip, sentAt: arrived, answered: false };
    conn.exchange = ex;
    return ex;
  }

  // ----

  private newExchange(conn: FrontConnection, head: WireRequestHead | null): FrontExchange {
    const entry = newAccessEntry(conn.client, conn.clientPort, head === null ? 'NONE' : head.method, false);
    entry.protocol = `HTTP/1.${head === null ? 1 : head.minorVersion}`;
    const ex: FrontExchange = {
      entry,
      startedAt: performance.now(),
      minor: head === null ? 1 : head.minorVersion,
      keepAlive: head !== null && head.keepAlive,
      call: null,
      ip: '',
      sentAt: 0,
      answered: false,
    };
    conn.exchange = ex;
    return ex;
  }

  /** The ingress's own answer; `kind` prefixes the logged reason (routing answers have none). */
  private reply(conn: FrontConnection, ex: FrontExchange, reply: IngressReply, kind: string | undefined, canContinue: boolean): void {
    const e = ex.entry;
    e.error = reply.error;
    e.reason = kind === undefined ? reply.reason : `${kind}: ${reply.reason}`;
    const keep = canContinue && ex.keepAlive && ex.minor === 1 && !this.closingFlag;
    const raw = rawReply(reply, keep);
    const read = this.relay.respond(conn.id, raw, keep);
    if (!keep) conn.ended = true;
    conn.bytesIn += Math.max(0, read);
    conn.bytesOut += read < 0 ? 0 : Buffer.byteLength(raw, 'latin1');
    e.status = read < 0 ? 0 : replyStatus(reply);
    this.finish(conn, ex);
  }

  private badResponse(conn: FrontConnection, ex: FrontExchange): void {
    this.reply(conn, ex, { error: 'bad-gateway', reason: `the upstream could not be reached: ${routedTo(ex)}: it sent a response that cannot be forwarded` }, 'upstream', false);
  }

  /** No connection could be made to the dialled address: the upstream's name moves on to its next one (and no kept request goes on dialling it). */
  private addressFailed(ex: FrontExchange): void {
    if (ex.call === null) return;
    this.addresses.failed(ex.call.upstream.host, ex.ip);
    this.relay.forgetRoutes();
  }

  private finish(conn: FrontConnection, ex: FrontExchange, durationMs = performance.now() - ex.startedAt): void {
    if (conn.exchange !== ex) return;
    conn.exchange = null;
    const e = ex.entry;
    e.durationMs = Math.round(durationMs);
    e.bytesIn = conn.bytesIn;
    e.bytesOut = conn.bytesOut;
    conn.bytesIn = 0;
    conn.bytesOut = 0;
    this.host.finished(e);
  }

  /** The connection goes on in node:http from the request `head` (its bytes as the relay framed them). */
  private handOver(conn: FrontConnection, head: string): void {
    conn.exchange = null;
    conn.ended = true;
    const detached = this.relay.detach(conn.id);
    if (detached === null) {
      this.relay.close(conn.id);
      return;
    }
    this.host.handOver(detached.fd, Buffer.concat([Buffer.from(head, 'latin1'), detached.input]), detached.output, conn.client, conn.clientPort);
  }

  /** Stops accepting, closes idle connections, lets exchanges run until `drainMs`, then closes what is left. */
  close(drainMs: number): Promise<void> {
    if (this.closePromise !== null) return this.closePromise;
    this.closingFlag = true;
    this.relay.stopListening();
    this.relay.closeIdle();
    const drained = new Promise<void>((resolve) => {
      if (this.conns.size === 0) resolve();
      else this.onAllClosed = resolve;
    });
    this.closePromise = drainedOrDeadline(drained, drainMs).then(() => {
      this.relay.destroy();
      // Whatever was still open is gone now: its entries end here.
      for (const id of [...this.conns.keys()]) this.closed(id, 0, 0);
    });
    return this.closePromise;
  }
}

/** One request on its way upstream: what routing decided, carried across the signing and the address lookup. */
interface UpstreamCall {
  readonly conn: FrontConnection;
  readonly ex: FrontExchange;
  /** The request head as the relay framed it. */
  readonly text: string;
  readonly wire: WireRequestHead;
  readonly head: RequestHead;
  readonly route: Route;
  readonly upstream: ResolvedUpstream;
  readonly authority: string;
  /** Path and query as sent upstream. */
  readonly path: string;
  readonly framing: RequestFraming;
  /** The route takes every path under its prefix (RouteResolution). */
  readonly wholePrefix: boolean;
  /** RelayFront.routesEpoch when it was routed. */
  readonly routesEpoch: number;
  /** The signature sent (null before signing, and on unsigned routes). */
  signature: SignedHeaders | null;
}
