/**
 * Plain HTTP forwarding: an absolute-form request is decided by the policy,
 * its host resolved and checked, and sent to the checked address over a
 * keep-alive upstream connection (src/http1/upstream-pool.ts). Bodies stream in both
 * directions (back-pressure, no buffering); hop-by-hop headers stay behind.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { requestFraming, serializeRequestHead, UpstreamRelay, type BodyFraming, type RequestBodyFraming, type ResponseHead } from '../../http1';
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
  res.once('close', () => {
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
  await forward(ctx, conn, req, res, rec, target.value);
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

  const resolved = await resolveDestination(ctx, rec, target.destination, decision.allowAddresses);
  if (res.destroyed) return; // the client left while we resolved
  if (!resolved.ok) {
    const denied = resolved.status === 403;
    failRequest(rec, res, resolved.status, denied ? 'TCP_DENIED' : 'TCP_MISS', resolved.reason, unresolvedText(resolved, target.host));
    return;
  }

  const address = resolved.address;
  rec.entry.squidResult = 'TCP_MISS';
  const framing = requestFraming(req.headers['transfer-encoding'], req.headers['content-length']);
  const upstreamHeaders = upstreamRequestHeaders(req.rawHeaders, {
    authority: target.authority,
    via: ctx.opts.via,
    forwardedFor: ctx.opts.xForwardedFor === 'add' ? conn.client : null,
    framing: framing.fields,
  });
  let head: string;
  try {
    head = serializeRequestHead(rec.entry.method, target.path, upstreamHeaders);
  } catch {
    failRequest(rec, res, 400, 'NONE', 'bad-request:head', 'the request head cannot be forwarded', true);
    return;
  }
  const upstream = { address, family: resolved.family, port: target.port };
  new ForwardExchange(ctx, req, res, rec, upstream, head, framing.body, target.authority).start();
}

/** One request's trip upstream and its answer's trip back (src/http1/upstream-relay.ts), as the access record sees it. */
class ForwardExchange extends UpstreamRelay<UpstreamTarget> {
  constructor(
    private readonly ctx: ProxyContext,
    req: IncomingMessage,
    res: ServerResponse,
    private readonly rec: AccessRecord,
    private readonly upstream: UpstreamTarget,
    head: string,
    body: RequestBodyFraming,
    private readonly authority: string,
  ) {
    super(ctx.upstreams, upstream, req, res, rec.entry.method, head, body);
  }

  protected override connected(connectMs: number): void {
    this.rec.connected(this.upstream.address, connectMs);
  }

  protected answer(head: ResponseHead, framing: BodyFraming): void {
    const { res, rec } = this;
    rec.entry.contentType = headerValue(head.rawHeaders, 'content-type');
    try {
      // Node frames the body again for the client: the upstream's Content-Length stays only when it is the framing.
      res.writeHead(head.statusCode, head.statusMessage, clientResponseHeaders(head.rawHeaders, this.ctx.opts.via, framing.kind === 'chunked' || framing.kind === 'close'));
    } catch {
      // A header Node will not write: refuse rather than forward a mangled response.
      this.abort();
      failRequest(rec, res, 502, 'TCP_MISS', 'upstream:bad-response', 'the upstream sent a response that cannot be forwarded', true);
    }
  }

  protected failed(err: NodeJS.ErrnoException, headersSent: boolean): void {
    const failure = upstreamFailure(err);
    if (headersSent) {
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
