/**
 * CONNECT tunnels: decide, resolve and check, then the relay connects to
 * the checked address, answers 200 and holds the client's bytes until the
 * fronting check (fronting.ts) has judged its ClientHello. Upstream bytes
 * flow to the client from the start (server-first protocols need that, and
 * they cannot change where the tunnel goes); client bytes reach the
 * upstream only after the check.
 */
import { parseDestinationHost } from '../ssrf';
import type { RelayOutcome } from '../../native/http-relay';
import type { RequestHead } from '../../http1';
import { finishExchange, replyAndFinish, type ClientConnection, type Exchange, type ProxyContext } from './context';
import { decideOrRefuse, refuseUnresolved, resolveDestination, upstreamFailureText } from './destination';
import { judgeTunnelStart } from './fronting';
import { parseConnectTarget, type RequestTarget } from './target';
import type { ResolveAndCheckResult } from '../ssrf';
import type { ProxyRequestFacts } from '../types';
import { upstreamFailure } from './upstream';

const ESTABLISHED = 'HTTP/1.1 200 Connection established\r\n\r\n';

export function startTunnel(ctx: ProxyContext, conn: ClientConnection, head: RequestHead): void {
  const ex = conn.exchange as Exchange;
  const rec = ex.rec;
  const target = parseConnectTarget(head.target);
  if (!target.ok) {
    replyAndFinish(ctx, conn, { status: 400, text: `expected host:port after CONNECT (${target.reason})` }, 'NONE', `bad-request:${target.reason}`, false);
    return;
  }
  const t = target.value;
  rec.entry.url = t.authority;
  rec.entry.host = t.host;
  rec.entry.port = t.port;
  ex.authority = t.authority;
  if (ctx.closing) {
    // A tunnel opened now would only be cut at the drain deadline.
    replyAndFinish(ctx, conn, { status: 503, text: 'the proxy is shutting down; retry' }, 'NONE', 'shutting-down', false);
    return;
  }
  const facts = { client: conn.client, endpoint: conn.endpoint, host: t.host, port: t.port, method: 'CONNECT' };
  const decision = decideOrRefuse(ctx, conn, facts, false);
  if (decision === null) return;

  resolveDestination(ctx, conn, rec, t.destination, decision.allowAddresses, (resolved) => {
    if (ctx.current(conn, ex)) openTunnel(ctx, conn, ex, t, resolved, facts);
  });
}

function openTunnel(ctx: ProxyContext, conn: ClientConnection, ex: Exchange, t: RequestTarget, resolved: ResolveAndCheckResult, facts: ProxyRequestFacts): void {
  if (!resolved.ok) {
    refuseUnresolved(ctx, conn, resolved, t.host, 'TCP_TUNNEL', false);
    return;
  }
  ex.upstream = { address: resolved.address, family: resolved.family, port: t.port };
  ex.fronting = {
    host: t.host,
    hostIsIp: t.hostIsIp,
    nonTls: ctx.opts.fronting.nonTls,
    sniAllowed: (sni) => sniAllowedByPolicy(ctx, facts, sni),
  };
  ctx.relay.tunnel(conn.id, resolved.address, t.port, ESTABLISHED);
}

/** The upstream is connected and the 200 is on its way. */
export function onTunnelConnected(ctx: ProxyContext, conn: ClientConnection, connectMs: number): void {
  const ex = conn.exchange;
  if (ex === null || ex.upstream === null) return;
  ex.rec.connected(ex.upstream.address, connectMs);
  ex.answered = true;
  ctx.counters.tunnels++;
  ex.rec.entry.status = 200;
  ex.rec.entry.squidResult = 'TCP_TUNNEL';
}

/** The client's first bytes so far: judged until there is a verdict (or the deadline passed). */
export function onTunnelStart(ctx: ProxyContext, conn: ClientConnection, bytes: Buffer, timedOut: boolean): void {
  const ex = conn.exchange;
  if (ex === null || ex.fronting === null) return;
  const verdict = bytes.length === 0 ? ({ verdict: 'wait' } as const) : judgeTunnelStart(bytes, ex.fronting);
  if (verdict.verdict === 'allow') {
    ex.fronting = null;
    ctx.relay.allowTunnel(conn.id);
    return;
  }
  if (verdict.verdict === 'wait' && !timedOut) return;
  const e = ex.rec.entry;
  if (verdict.verdict === 'deny' || bytes.length > 0) {
    // An unreadable or incomplete hello is one we could not check: refused like a mismatch.
    e.squidResult = 'TCP_DENIED';
    e.decision = 'deny';
    e.reason = 'fronting';
  } else {
    e.decision = 'error';
    e.reason = 'timeout';
  }
  ex.fronting = null;
  ctx.relay.close(conn.id);
}

export function onTunnelDone(ctx: ProxyContext, conn: ClientConnection, outcome: RelayOutcome, error: string | null): void {
  const ex = conn.exchange;
  if (ex === null) return;
  if ((outcome === 'upstream-failed' || outcome === 'upstream-timeout') && !ex.answered) {
    const failure = upstreamFailure({ code: outcome === 'upstream-timeout' ? 'ETIMEDOUT' : (error ?? 'ECONNRESET') });
    replyAndFinish(ctx, conn, { status: failure.status, text: upstreamFailureText(failure, ex.authority) }, 'TCP_TUNNEL', failure.reason, false);
    return;
  }
  finishExchange(conn);
}

/** Whether the policy allows a CONNECT to the SNI's name, on the same port, for the same client. */
function sniAllowedByPolicy(ctx: ProxyContext, facts: { client: string; endpoint: string | null; port: number }, sni: string): boolean {
  const parsed = parseDestinationHost(sni);
  if (parsed.kind === 'invalid') return false;
  const host = parsed.kind === 'ip' ? parsed.address : parsed.name;
  return ctx.decide({ client: facts.client, endpoint: facts.endpoint, host, port: facts.port, method: 'CONNECT' })?.action === 'allow';
}
