/**
 * One proxied request: route it by host and path, sign it (after the host
 * rewrite, with the rewritten host) when the route says so, build the
 * upstream's headers, hand it to the transport (forward.ts), and record how
 * it ended. Answers of its own are JSON (replies.ts).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import { GatehouseError } from '../../errors';
import type { SignedHeaders } from '../sigv4/lattice-signer';
import { resolveRoute, type ResolvedUpstream, type Route, type RouteResolution, type RouteTable } from '../routes';
import { newAccessEntry, pathWithoutQuery, type IngressAccessEntry } from './access';
import { takeBytes, type ClientConnection, type IngressContext } from './context';
import { requestFraming } from '../../http1';
import { forward, type ForwardEvents, type ForwardFailure } from './forward';
import { readRequestHead, type RequestHead } from './request-head';
import { sendReply, type IngressReply } from './replies';
import { upstreamRequestHeaders } from './upstream-headers';

/** The label a route has in logs and metrics: its host pattern and prefix ("*.example.com/api/"). */
export function routeLabel(route: Route): string {
  return `${route.host}${route.prefix}`;
}

/** Records what the request asks for in its entry, and routes it (both engines). */
export function routeRequest(entry: IngressAccessEntry, head: RequestHead, table: RouteTable): RouteResolution {
  entry.host = head.host;
  entry.path = pathWithoutQuery(head.path);
  entry.userAgent = head.userAgent;
  entry.referer = head.referer;
  return resolveRoute(table, head.host, head.path);
}

/** A signed route without a region to sign for. */
export const NO_REGION_REPLY: IngressReply = { error: 'signing-unavailable', reason: 'this route is signed but no AWS region is configured (--region or AWS_REGION)' };

/** The answer to a request the signer refused (`kind` prefixes the logged reason): a bad request, or no credentials. */
export function signingRefusal(err: unknown): { reply: IngressReply; kind: string | undefined } {
  const reason = err instanceof Error ? err.message : String(err);
  if (err instanceof GatehouseError && err.code === 'ERR_INVALID_ARG') return { reply: { error: 'bad-request', reason: `the request cannot be signed: ${reason}` }, kind: undefined };
  return { reply: { error: 'signing-unavailable', reason: `the request could not be signed: ${reason}` }, kind: 'signing' };
}

/** The answer to a request no route takes: 421 for the host, 404 for the path. */
export function noRouteReply(resolved: { status: 421 | 404; reason: string }): IngressReply {
  return { error: resolved.status === 421 ? 'misdirected-request' : 'not-found', reason: resolved.reason };
}

class RequestExchange implements ForwardEvents {
  readonly entry: IngressAccessEntry;
  private readonly startedAt = performance.now();
  private head: RequestHead | null = null;
  private route: Route | null = null;
  private upstream: ResolvedUpstream | null = null;
  private authority = '';
  private upstreamPath = '';

  constructor(
    private readonly ctx: IngressContext,
    private readonly conn: ClientConnection,
    private readonly req: IncomingMessage,
    private readonly res: ServerResponse,
  ) {
    this.entry = newAccessEntry(conn.client, conn.clientPort, req.method ?? 'GET', ctx.tls);
    this.entry.protocol = `HTTP/${req.httpVersion}`;
  }

  start(): void {
    this.res.once('close', this.onClose);
    if (this.ctx.closing) this.res.shouldKeepAlive = false;
    const read = readRequestHead(this.req.url ?? '', this.req.rawHeaders);
    if (!read.ok) {
      this.answer({ error: 'bad-request', reason: read.reason });
      return;
    }
    const head = read.head;
    this.head = head;
    const e = this.entry;
    const resolved = routeRequest(e, head, this.ctx.routes());
    if (!resolved.ok) {
      this.answer(noRouteReply(resolved));
      return;
    }
    this.route = resolved.route;
    this.upstream = resolved.upstream;
    this.authority = resolved.signHost;
    this.upstreamPath = resolved.upstream.pathPrefix === undefined ? head.path : `${resolved.upstream.pathPrefix}${head.path}`;
    e.route = routeLabel(resolved.route);
    e.upstream = resolved.signHost;
    if (!resolved.route.sign) {
      this.send(null);
      return;
    }
    const signer = this.ctx.signer;
    if (signer === null) {
      this.answer(NO_REGION_REPLY);
      return;
    }
    e.signed = true;
    signer.sign({ method: e.method, host: this.authority, path: this.upstreamPath }).then(this.onSigned, this.onSignFailed);
  }

  private readonly onSigned = (signature: SignedHeaders): void => {
    if (this.res.destroyed) return; // the client left while credentials loaded
    this.send(signature);
  };

  private readonly onSignFailed = (err: unknown): void => {
    this.entry.signed = false;
    const { reply, kind } = signingRefusal(err);
    this.answer(reply, kind);
  };

  private send(signature: SignedHeaders | null): void {
    const route = this.route as Route;
    const upstream = this.upstream as ResolvedUpstream;
    const head = this.head as RequestHead;
    const framing = requestFraming(head.chunked ? 'chunked' : undefined, head.contentLength === '' ? undefined : head.contentLength);
    const headers = upstreamRequestHeaders(this.req.rawHeaders, head, {
      authority: this.authority,
      signature,
      stripAuthorization: route.stripAuthorization,
      client: this.conn.client,
      proto: this.ctx.tls ? 'https' : 'http',
      framing: framing.fields,
    });
    forward(
      this.ctx.upstreams,
      { host: upstream.host, port: upstream.port, tls: route.tls, method: this.entry.method, path: this.upstreamPath, headers, timeoutMs: route.timeoutMs, bodyFraming: framing.body },
      this.req,
      this.res,
      this,
    );
  }

  responded(_status: number, upstreamMs: number): void {
    this.entry.upstreamMs = upstreamMs;
  }

  failed(failure: ForwardFailure, headersSent: boolean): void {
    if (headersSent) {
      this.entry.reason = `upstream:${failure.reason}`;
      this.res.destroy();
      return;
    }
    if (failure.kind === 'bad-request') {
      this.answer({ error: 'bad-request', reason: `the request cannot be forwarded: ${failure.reason}` }, undefined, true);
      return;
    }
    // The request body may be half sent: this connection cannot be trusted for another request.
    const error = failure.kind === 'timeout' ? 'gateway-timeout' : 'bad-gateway';
    this.answer({ error, reason: failure.kind === 'timeout' ? failure.reason : `the upstream could not be reached: ${failure.reason}` }, 'upstream', true);
  }

  /** The ingress's own answer; `kind` prefixes the logged reason (routing answers have none). */
  private answer(reply: IngressReply, kind?: string, close = false): void {
    this.entry.error = reply.error;
    this.entry.reason = kind === undefined ? reply.reason : `${kind}: ${reply.reason}`;
    sendReply(this.res, reply, close);
  }

  private readonly onClose = (): void => {
    const e = this.entry;
    e.status = this.res.headersSent ? this.res.statusCode : 0;
    // Cut short: the client left, or the upstream's body broke off.
    if (!this.res.writableFinished && e.reason === null) e.reason = 'the response did not complete';
    e.durationMs = Math.round(performance.now() - this.startedAt);
    takeBytes(this.conn, e);
    this.ctx.finished(this.conn, e);
  };
}

export function handleRequest(ctx: IngressContext, req: IncomingMessage, res: ServerResponse): void {
  const conn = ctx.connectionOf(req.socket);
  if (conn === undefined) {
    res.destroy();
    return;
  }
  conn.busy++;
  new RequestExchange(ctx, conn, req, res).start();
}
