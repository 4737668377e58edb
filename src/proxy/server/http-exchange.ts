/**
 * Plain HTTP forwarding: an absolute-form request is decided by the policy,
 * its host resolved and checked, and handed to the relay with the head the
 * upstream gets (hop-by-hop fields removed, Host from the target, Via and
 * X-Forwarded-For, the proxy's own framing field). The upstream's response
 * head comes back here to be read strictly and rewritten for the client;
 * the relay moves both bodies.
 */
import { isIdempotent, readResponseHead, requestFraming, responseFraming, serializeRequestHead, type BodyFraming, type RequestFraming, type RequestHead, type ResponseHead } from '../../http1';
import type { ResolveAndCheckResult } from '../ssrf';
import { RELAY_BODY, type RelayBody, type RelayOutcome } from '../../native/http-relay';
import { finishExchange, replyAndFinish, type ClientConnection, type Exchange, type KeptRouteMemo, type ProxyContext } from './context';
import { decideOrRefuse, refuseUnresolved, resolveDestination, upstreamFailureText } from './destination';
import { clientResponseHeaders, upstreamRequestHeaders } from './headers';
import { parseAbsoluteTarget, type RequestTarget } from './target';
import { upstreamFailure } from './upstream';
import type { ProxyDecision } from './options';

const TARGET_HELP: Record<string, string> = {
  'origin-form': 'this is a forward proxy: send the absolute URL (GET http://host/path)',
  'unsupported-scheme': 'only http:// URLs are forwarded; use CONNECT for https',
  userinfo: 'credentials in the URL are not forwarded',
  'bad-port': 'the URL has an invalid port',
  'missing-port': 'the URL has no port',
  'bad-host': 'the URL has an invalid host',
};

/** The reason logged for an answer that breaks HTTP/1.1 (the code Node's HTTP client gave it, kept for log continuity). */
const BAD_RESPONSE = 'upstream:err_bad_response';

/** Largest upstream response head: Node's own default limit for heads it reads. */
export const UPSTREAM_MAX_HEAD_BYTES = 16 * 1024;

export function startHttpRequest(ctx: ProxyContext, conn: ClientConnection, head: RequestHead): void {
  const ex = conn.exchange as Exchange;
  const rec = ex.rec;
  const target = parseAbsoluteTarget(head.target);
  rec.entry.url = target.ok ? `http://${target.value.authority}${target.value.path}` : head.target;
  if (!target.ok) {
    replyAndFinish(ctx, conn, { status: 400, text: TARGET_HELP[target.reason] ?? 'bad request target' }, 'NONE', `bad-request:${target.reason}`, false);
    return;
  }
  const t = target.value;
  ex.target = t;
  ex.authority = t.authority;
  rec.entry.host = t.host;
  rec.entry.port = t.port;
  // A body left unread cannot be skipped to reach the next request: refusals close such a connection.
  const framing = requestFraming(head.transferEncoding, head.contentLength);
  const canContinue = framing.body === 'none';
  const decision = decideOrRefuse(ctx, conn, { client: conn.client, endpoint: conn.endpoint, host: t.host, port: t.port, method: rec.entry.method }, canContinue);
  if (decision === null) return;

  resolveDestination(ctx, conn, rec, t.destination, decision.allowAddresses, (resolved) => {
    if (!ctx.current(conn, ex)) return; // the client left while we resolved
    sendUpstream(ctx, conn, ex, head, resolved, framing, decision);
  });
}

function sendUpstream(ctx: ProxyContext, conn: ClientConnection, ex: Exchange, head: RequestHead, resolved: ResolveAndCheckResult, framing: RequestFraming, decision: ProxyDecision): void {
  const rec = ex.rec;
  const t = ex.target as RequestTarget;
  const canContinue = framing.body === 'none';
  if (!resolved.ok) {
    refuseUnresolved(ctx, conn, resolved, t.host, 'TCP_MISS', canContinue);
    return;
  }

  rec.entry.squidResult = 'TCP_MISS';
  const upstreamHeaders = upstreamRequestHeaders(head.rawHeaders, {
    authority: t.authority,
    via: ctx.opts.via,
    forwardedFor: ctx.opts.xForwardedFor === 'add' ? conn.client : null,
    framing: framing.fields,
  });
  let wire: string;
  try {
    wire = serializeRequestHead(rec.entry.method, t.path, upstreamHeaders);
  } catch {
    replyAndFinish(ctx, conn, { status: 400, text: 'the request head cannot be forwarded' }, 'NONE', 'bad-request:head', false);
    return;
  }
  ex.upstream = { address: resolved.address, family: resolved.family, port: t.port };
  const bodyLength = framing.body === 'chunked' ? -1 : framing.body === 'length' ? Number(head.contentLength) : 0;
  if (!ctx.relay.forward(conn.id, resolved.address, t.port, wire, bodyLength, isIdempotent(rec.entry.method))) return;
  if (ctx.opts.keptRouteMs > 0 && framing.body === 'none' && head.contentLength === undefined && head.minorVersion === 1) {
    keepRoute(ctx, conn, head, { method: rec.entry.method, target: t, decision, upstream: ex.upstream, resolvedAddresses: rec.entry.resolvedAddresses });
  }
}

/**
 * Lets the relay repeat this request's route (see keptRouteMs): only a GET
 * or HEAD spelled in capitals, whose target has a path after its authority.
 */
function keepRoute(ctx: ProxyContext, conn: ClientConnection, head: RequestHead, memo: KeptRouteMemo): void {
  if (head.method !== 'GET' && head.method !== 'HEAD') return;
  const target = head.target;
  // "http://" in any case (parseAbsoluteTarget accepted it), then the authority up to its path.
  const pathStart = target.indexOf('/', 7);
  if (pathStart < 0 || /[?#]/.test(target.slice(7, pathStart))) return;
  const route = {
    method: head.method,
    prefix: target.slice(0, pathStart),
    host: memo.target.authority,
    ip: memo.upstream.address,
    port: memo.upstream.port,
    via: ctx.opts.via,
    forwardedFor: ctx.opts.xForwardedFor === 'add' ? conn.client : null,
    lifetimeMs: ctx.opts.keptRouteMs,
  } as const;
  if (ctx.relay.keepRoute(conn.id, route)) conn.route = memo;
}

/** A request the relay sent on the connection's kept route: its record, as if decided here. */
export function onRoutedRequest(conn: ClientConnection, route: KeptRouteMemo): void {
  const ex = conn.exchange as Exchange;
  const e = ex.rec.entry;
  ex.target = route.target;
  ex.authority = route.target.authority;
  ex.upstream = route.upstream;
  e.host = route.target.host;
  e.port = route.target.port;
  ex.rec.decided(route.decision);
  e.resolveMs = 0;
  e.resolvedAddresses = [...route.resolvedAddresses];
  e.squidResult = 'TCP_MISS';
}

/** The relay answered a kept route's request with the upstream's head rewritten: recorded as onUpstreamResponse would. */
export function onRoutedAnswer(conn: ClientConnection, status: number, connectMs: number, contentType: string | null): void {
  const ex = conn.exchange;
  if (ex === null || ex.upstream === null) return;
  if (ex.rec.entry.upstreamAddress === null) ex.rec.connected(ex.upstream.address, connectMs);
  ex.rec.entry.contentType = contentType;
  ex.rec.entry.status = status;
  ex.answered = true;
}

/** The relay's framing for the client, from the upstream's framing and what the client speaks. */
function clientBody(framing: BodyFraming, clientMinor: 0 | 1): { body: RelayBody; length: number; chunked: boolean; ends: boolean } {
  switch (framing.kind) {
    case 'none':
      return { body: RELAY_BODY.none, length: 0, chunked: false, ends: false };
    case 'length':
      return { body: RELAY_BODY.length, length: framing.length, chunked: false, ends: false };
    case 'chunked':
      return clientMinor === 1 ? { body: RELAY_BODY.chunked, length: 0, chunked: true, ends: false } : { body: RELAY_BODY.dechunk, length: 0, chunked: false, ends: true };
    case 'close':
      // An HTTP/1.1 client gets chunks, so its connection outlives the upstream's.
      return clientMinor === 1 ? { body: RELAY_BODY.closeToChunked, length: 0, chunked: true, ends: false } : { body: RELAY_BODY.close, length: 0, chunked: false, ends: true };
  }
}

function headerValue(raw: readonly string[], lowerName: string): string | null {
  for (let i = 0; i + 1 < raw.length; i += 2) if (raw[i].toLowerCase() === lowerName) return raw[i + 1];
  return null;
}

function responseHeadText(head: ResponseHead, raw: readonly string[]): string {
  let text = `HTTP/1.1 ${head.statusCode} ${head.statusMessage}\r\n`;
  for (let i = 0; i + 1 < raw.length; i += 2) text += `${raw[i]}: ${raw[i + 1]}\r\n`;
  return `${text}\r\n`;
}

/** Refuses an upstream answer that cannot be forwarded as it is. */
function badResponse(ctx: ProxyContext, conn: ClientConnection, ex: Exchange): void {
  replyAndFinish(ctx, conn, { status: 502, text: `the upstream ${ex.authority} sent a response that cannot be forwarded` }, 'TCP_MISS', BAD_RESPONSE, false);
}

export function onUpstreamResponse(ctx: ProxyContext, conn: ClientConnection, upstreamHead: string, connectMs: number): void {
  const ex = conn.exchange;
  if (ex === null || ex.upstream === null) return;
  if (ex.rec.entry.upstreamAddress === null) ex.rec.connected(ex.upstream.address, connectMs);
  // The relay frames the head (CRLF CRLF at its end, at most UPSTREAM_MAX_HEAD_BYTES).
  const parsed = readResponseHead(upstreamHead.slice(0, -4));
  if (parsed.kind !== 'head') {
    badResponse(ctx, conn, ex);
    return;
  }
  const head = parsed.head;
  const framing = responseFraming(head, ex.rec.entry.method);
  // 101: nothing asked to switch (Upgrade is hop-by-hop and never sent on).
  if (!framing.ok || head.statusCode === 101) {
    badResponse(ctx, conn, ex);
    return;
  }
  const answer = clientAnswer(head, framing.framing, ex.clientMinor, ex.clientKeepAlive && !ctx.closing, ctx.opts.via);
  if (answer === null) {
    badResponse(ctx, conn, ex);
    return;
  }
  if (head.statusCode >= 200) {
    const e = ex.rec.entry;
    e.contentType = headerValue(head.rawHeaders, 'content-type');
    e.status = head.statusCode;
    ex.answered = true;
  }
  ctx.relay.answer(conn.id, answer.text, answer.body, answer.length, answer.keepAlive, framing.reusable);
}

/** What the relay is told to send the client for an upstream response head (relay.answer's arguments). */
export interface ClientAnswer {
  text: string;
  body: RelayBody;
  length: number;
  keepAlive: boolean;
}

/**
 * The client's copy of an upstream response head (a 1xx too: relayed to an
 * HTTP/1.1 client, dropped for 1.0), framed for what the client speaks;
 * null when a field cannot be written back. `keepAlive`: the client's wish,
 * false once draining.
 */
export function clientAnswer(head: ResponseHead, framing: BodyFraming, clientMinor: 0 | 1, keepAlive: boolean, via: string | null): ClientAnswer | null {
  try {
    if (head.statusCode < 200) {
      // An HTTP/1.0 client gets no 1xx.
      const text = clientMinor === 1 ? responseHeadText(head, clientResponseHeaders(head.rawHeaders, via)) : '';
      return { text, body: RELAY_BODY.informational, length: 0, keepAlive: false };
    }
    const out = clientBody(framing, clientMinor);
    const keep = keepAlive && !out.ends;
    const headers = clientResponseHeaders(head.rawHeaders, via, framing.kind === 'chunked' || framing.kind === 'close');
    if (out.chunked) headers.push('Transfer-Encoding', 'chunked');
    if (!keep) headers.push('Connection', 'close');
    else if (clientMinor === 0) headers.push('Connection', 'keep-alive');
    return { text: responseHeadText(head, headers), body: out.body, length: out.length, keepAlive: keep };
  } catch {
    return null;
  }
}

/** The relay ended the exchange (or needs the proxy's answer to a failure). */
export function onHttpDone(ctx: ProxyContext, conn: ClientConnection, outcome: RelayOutcome, error: string | null): void {
  const ex = conn.exchange;
  if (ex === null) return;
  const e = ex.rec.entry;
  switch (outcome) {
    case 'complete':
      finishExchange(conn);
      return;
    case 'upstream-failed':
    case 'upstream-timeout': {
      const failure = upstreamFailure({ code: outcome === 'upstream-timeout' ? 'ETIMEDOUT' : (error ?? 'ECONNRESET') });
      replyAndFinish(ctx, conn, { status: failure.status, text: upstreamFailureText(failure, ex.authority) }, 'TCP_MISS', failure.reason, false);
      return;
    }
    case 'bad-upstream-head':
      badResponse(ctx, conn, ex);
      return;
    default: {
      // Cut short after the answer began (or the client left, or sent a broken body).
      if (outcome === 'aborted') {
        e.decision = 'error';
        e.reason = upstreamFailure({ code: error ?? 'ECONNRESET' }).reason;
      } else if (outcome === 'bad-upstream-body') {
        e.decision = 'error';
        e.reason = BAD_RESPONSE;
      } else if (outcome === 'bad-request-body') {
        e.decision = 'error';
        e.reason = 'bad-request:body';
      }
      if (e.squidResult !== 'NONE' && !e.squidResult.endsWith('_ABORTED')) e.squidResult = `${e.squidResult}_ABORTED`;
      finishExchange(conn);
    }
  }
}
