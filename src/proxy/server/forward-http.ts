/**
 * Plain HTTP forwarding: an absolute-form request is decided by the policy,
 * its host resolved and checked, and sent to the checked address over a
 * keep-alive upstream connection (src/http1/upstream-pool.ts). Bodies stream in both
 * directions (back-pressure, no buffering); hop-by-hop headers stay behind.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { serializeRequestHead, type BodyFraming, type ExchangeHandler, type RequestBodyFraming, type ResponseHead, type UpstreamConnection } from '../../http1';
import type { AccessRecord } from './access';
import { takeBytes, type ClientConnection, type ProxyContext } from './context';
import { denialText, resolveDestination, unresolvedText, upstreamFailureText } from './destination';
import { clientResponseHeaders, upstreamRequestHeaders } from './headers';
import { sendReply } from './responses';
import { parseAbsoluteTarget, type RequestTarget } from './target';
import { upstreamFailure, type UpstreamTarget } from './upstream';

const TARGET_HELP: Record<string, string> = {
  'origin-form': 'this is a forward proxy: send the absolute URL (GET http://host/path)',
  'unsupported-scheme': 'only http:// URLs are forwarded; use CONNECT for https',
  userinfo: 'credentials in the URL are not forwarded',
  'bad-port': 'the URL has an invalid port',
  'missing-port': 'the URL has no port',
  'bad-host': 'the URL has an invalid host',
};

export async function handleHttpRequest(ctx: ProxyContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const conn = ctx.connectionOf(req.socket);
  if (conn === undefined) {
    res.destroy();
    return;
  }
  ctx.counters.requests++;
  conn.busy++;
  if (ctx.closing) res.shouldKeepAlive = false;
  const method = (req.method ?? 'GET').toUpperCase();
  const target = parseAbsoluteTarget(req.url ?? '');
  const rec = ctx.record(conn, method, target.ok ? `http://${target.value.authority}${target.value.path}` : (req.url ?? ''));
  const flow: ForwardFlow = { upstream: null, upstreamComplete: false };

  res.once('close', () => {
    if (flow.upstream !== null && !flow.upstreamComplete) flow.upstream.abort();
    const e = rec.entry;
    const fields = { ...takeBytes(conn), status: res.headersSent ? res.statusCode : 0 };
    // Squid marks a transaction the client (or a failure) cut short with _ABORTED.
    const squidResult = !res.writableFinished && !e.squidResult.endsWith('_ABORTED') && e.squidResult !== 'NONE' ? `${e.squidResult}_ABORTED` : e.squidResult;
    rec.finish({ ...fields, squidResult });
    ctx.requestDone(conn);
  });

  if (!target.ok) {
    failRequest(rec, res, 400, 'NONE', `bad-request:${target.reason}`, TARGET_HELP[target.reason] ?? 'bad request target', true);
    return;
  }
  await forward(ctx, conn, req, res, rec, target.value, flow);
}

interface ForwardFlow {
  upstream: UpstreamConnection | null;
  upstreamComplete: boolean;
}

/** Answers with the proxy's own response and fills the record's outcome. */
function failRequest(rec: AccessRecord, res: ServerResponse, status: number, squidResult: string, reason: string, text: string, close = false, rule: string | null = null): void {
  rec.entry.squidResult = squidResult;
  rec.entry.reason = reason;
  rec.entry.decision = squidResult === 'TCP_DENIED' ? 'deny' : 'error';
  if (res.writableEnded || res.destroyed) return;
  sendReply(res, { status, text, rule }, close);
}

async function forward(
  ctx: ProxyContext,
  conn: ClientConnection,
  req: IncomingMessage,
  res: ServerResponse,
  rec: AccessRecord,
  target: RequestTarget,
  flow: ForwardFlow,
): Promise<void> {
  rec.entry.host = target.host;
  rec.entry.port = target.port;
  const facts = { client: conn.client, endpoint: conn.endpoint, host: target.host, port: target.port, method: rec.entry.method };
  const decision = ctx.decide(facts);
  if (decision === null) {
    failRequest(rec, res, 500, 'NONE', 'policy-error', 'the policy could not be evaluated');
    return;
  }
  rec.decided(decision);
  if (decision.action === 'deny') {
    failRequest(rec, res, 403, 'TCP_DENIED', decision.reason, denialText(decision), false, decision.rule?.id ?? null);
    return;
  }

  const resolved = await resolveDestination(ctx, rec, target.host, decision.allowAddresses);
  if (res.destroyed) return; // the client left while we resolved
  if (!resolved.ok) {
    const denied = resolved.status === 403;
    failRequest(rec, res, resolved.status, denied ? 'TCP_DENIED' : 'TCP_MISS', resolved.reason, unresolvedText(resolved, target.host));
    return;
  }

  const address = resolved.address;
  rec.entry.squidResult = 'TCP_MISS';
  const upstreamHeaders = upstreamRequestHeaders(req.rawHeaders, {
    authority: target.authority,
    via: ctx.opts.via,
    forwardedFor: ctx.opts.xForwardedFor === 'add' ? conn.client : null,
  });
  let head: string;
  try {
    head = serializeRequestHead(rec.entry.method, target.path, upstreamHeaders);
  } catch {
    failRequest(rec, res, 400, 'NONE', 'bad-request:head', 'the request head cannot be forwarded', true);
    return;
  }
  const exchange = new ForwardExchange(ctx, req, res, rec, flow, { address, family: resolved.family, port: target.port }, head, target.authority);
  exchange.start(false);
}

/** How a request's body is framed for the upstream (Node's parser has already refused a request with both headers). */
function requestBodyFraming(req: IncomingMessage): RequestBodyFraming {
  if (req.headers['transfer-encoding'] !== undefined) return 'chunked';
  const length = req.headers['content-length'];
  return length !== undefined && length !== '0' ? 'length' : 'none';
}

/** Methods a request may be sent again for, when a kept-alive connection turns out to be closed (RFC 9110 9.2.2). */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

/** One request's trip upstream and its response's trip back to the client. */
class ForwardExchange implements ExchangeHandler {
  private conn: UpstreamConnection | null = null;
  private readonly bodyFraming: RequestBodyFraming;
  private readonly resume = (): void => this.conn?.resume();

  constructor(
    private readonly ctx: ProxyContext,
    private readonly req: IncomingMessage,
    private readonly res: ServerResponse,
    private readonly rec: AccessRecord,
    private readonly flow: ForwardFlow,
    private readonly upstream: UpstreamTarget,
    private readonly head: string,
    private readonly authority: string,
  ) {
    this.bodyFraming = requestBodyFraming(req);
  }

  start(fresh: boolean): void {
    const conn = this.ctx.upstreams.acquire(this.upstream, fresh);
    this.conn = conn;
    this.flow.upstream = conn;
    if (conn.uses > 0) this.rec.connected(this.upstream.address, 0); // a kept-alive upstream connection
    conn.exchange(this, this.rec.entry.method, this.head, this.bodyFraming);
    if (this.bodyFraming === 'none') return;
    // Streamed with back-pressure both ways; never buffered whole.
    const req = this.req;
    req.on('data', (data: Buffer) => {
      if (this.conn !== conn) return;
      if (!conn.writeBody(data)) {
        req.pause();
        conn.onceDrain(() => req.resume());
      }
    });
    req.once('end', () => {
      if (this.conn === conn) conn.endBody();
    });
    req.once('error', () => conn.abort());
  }

  onConnected(connectMs: number): void {
    this.rec.connected(this.upstream.address, connectMs);
  }

  onResponse(head: ResponseHead, framing: BodyFraming): void {
    const { res, rec } = this;
    const contentType = headerValue(head.rawHeaders, 'content-type');
    rec.entry.contentType = contentType;
    try {
      // Node frames the body again for the client: the upstream's Content-Length stays only when it is the framing.
      res.writeHead(head.statusCode, head.statusMessage, clientResponseHeaders(head.rawHeaders, this.ctx.opts.via, framing.kind === 'chunked' || framing.kind === 'close'));
    } catch {
      // A header Node will not write: refuse rather than forward a mangled response.
      this.conn?.abort();
      failRequest(rec, res, 502, 'TCP_MISS', 'upstream:bad-response', 'the upstream sent a response that cannot be forwarded', true);
    }
  }

  onData(data: Buffer): void {
    if (!this.res.write(data)) {
      this.conn?.pause();
      this.res.once('drain', this.resume);
    }
  }

  onEnd(): void {
    this.flow.upstreamComplete = true;
    this.res.end();
  }

  onError(err: NodeJS.ErrnoException, beforeResponse: boolean): void {
    const stale = beforeResponse && this.conn !== null && this.conn.uses > 0;
    if (stale && this.bodyFraming === 'none' && IDEMPOTENT.has(this.rec.entry.method) && !this.res.destroyed) {
      // The kept-alive connection was closed by the upstream as we reused it: once more on a new one.
      this.start(true);
      return;
    }
    this.conn = null;
    const failure = upstreamFailure(err);
    if (this.res.headersSent) {
      // Too late for a 502: the client sees its response cut short, the log says why.
      this.rec.entry.decision = 'error';
      this.rec.entry.reason = failure.reason;
      this.res.destroy();
      return;
    }
    // The request body may be half sent: the client connection cannot be trusted for another request.
    failRequest(this.rec, this.res, failure.status, 'TCP_MISS', failure.reason, upstreamFailureText(failure, this.authority), true);
  }
}

function headerValue(raw: readonly string[], lowerName: string): string | null {
  for (let i = 0; i + 1 < raw.length; i += 2) if (raw[i].toLowerCase() === lowerName) return raw[i + 1];
  return null;
}
