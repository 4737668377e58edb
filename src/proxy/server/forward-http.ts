/**
 * Plain HTTP forwarding: an absolute-form request is decided by the policy,
 * its host resolved and checked, and sent to the checked address over a
 * keep-alive upstream connection. Bodies stream in both directions (pipe,
 * back-pressure, no buffering); hop-by-hop headers stay behind.
 */
import { request as httpRequest, type ClientRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { AccessRecord } from './access';
import { takeBytes, type ClientConnection, type ProxyContext } from './context';
import { denialText, resolveDestination, unresolvedText, upstreamFailureText } from './destination';
import { clientResponseHeaders, upstreamRequestHeaders } from './headers';
import { sendReply } from './responses';
import { parseAbsoluteTarget, type RequestTarget } from './target';
import { refuseLookup, timeoutError, upstreamFailure } from './upstream';

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
  const flow: ForwardFlow = { upstreamReq: null, upstreamComplete: false };

  res.once('close', () => {
    if (flow.upstreamReq !== null && !flow.upstreamComplete) flow.upstreamReq.destroy();
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
  upstreamReq: ClientRequest | null;
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
  const upstreamReq = httpRequest({
    host: address,
    family: resolved.family,
    port: target.port,
    method: rec.entry.method,
    path: target.path,
    headers: upstreamRequestHeaders(req.rawHeaders, {
      authority: target.authority,
      via: ctx.opts.via,
      forwardedFor: ctx.opts.xForwardedFor === 'add' ? conn.client : null,
    }),
    agent: ctx.agent,
    lookup: refuseLookup,
    setHost: false,
  });
  flow.upstreamReq = upstreamReq;
  const connectStart = performance.now();
  let connectTimer: NodeJS.Timeout | undefined;
  upstreamReq.once('socket', (socket) => {
    if (!socket.connecting) {
      rec.connected(address, 0); // a kept-alive upstream connection
      return;
    }
    connectTimer = setTimeout(() => upstreamReq.destroy(timeoutError('connect')), ctx.opts.connectTimeoutMs);
    socket.once('connect', () => {
      clearTimeout(connectTimer);
      rec.connected(address, Math.round(performance.now() - connectStart));
    });
  });
  // No byte from the upstream for this long (before or during the response) ends the exchange.
  upstreamReq.setTimeout(ctx.opts.idleTimeoutMs, () => upstreamReq.destroy(timeoutError('upstream idle')));

  upstreamReq.once('error', (err) => {
    clearTimeout(connectTimer);
    req.unpipe(upstreamReq);
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const failure = upstreamFailure(err);
    // The request body may be half sent: the connection cannot be trusted for another request.
    failRequest(rec, res, failure.status, 'TCP_MISS', failure.reason, upstreamFailureText(failure, target.authority), true);
  });

  upstreamReq.once('response', (upstreamRes) => {
    rec.entry.contentType = typeof upstreamRes.headers['content-type'] === 'string' ? upstreamRes.headers['content-type'] : null;
    upstreamRes.once('end', () => {
      flow.upstreamComplete = true;
    });
    const status = upstreamRes.statusCode ?? 502;
    try {
      res.writeHead(status, upstreamRes.statusMessage, clientResponseHeaders(upstreamRes.rawHeaders, ctx.opts.via));
    } catch {
      // A header Node will not write (it parsed it, so this is rare): refuse rather than forward a mangled response.
      upstreamReq.destroy();
      failRequest(rec, res, 502, 'TCP_MISS', 'upstream:bad-response', 'the upstream sent a response that cannot be forwarded', true);
      return;
    }
    // pipe and two listeners rather than stream.pipeline: pipeline makes an
    // AbortController per call and aborts it at the end (a DOMException per
    // response: measured at ~6 % of the proxy's busy time).
    upstreamRes.pipe(res);
    upstreamRes.once('error', () => res.destroy());
    res.once('close', () => {
      if (!upstreamRes.readableEnded) upstreamRes.destroy();
    });
  });

  // pipe (not pipeline): a failed upstream must not destroy the client's
  // socket before the 502/504 is written; the error handler above unpipes.
  req.pipe(upstreamReq);
  req.once('error', () => upstreamReq.destroy());
}
