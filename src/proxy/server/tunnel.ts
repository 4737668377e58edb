/**
 * CONNECT tunnels: decide, resolve and check, connect to the checked
 * address, answer 200, then hold the client's bytes until the fronting
 * check (fronting.ts) has judged its ClientHello. Upstream bytes flow to the
 * client from the start (server-first protocols need that, and they cannot
 * change where the tunnel goes); client bytes reach the upstream only after
 * the check.
 */
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { parseDestinationHost } from '../ssrf';
import type { AccessRecord } from './access';
import { endWithReply, takeBytes, type ClientConnection, type ProxyContext } from './context';
import { denialText, resolveDestination, unresolvedText, upstreamFailureText } from './destination';
import { awaitTunnelStart } from './fronting';
import { rawReply, type ProxyReply } from './responses';
import { parseConnectTarget, type RequestTarget } from './target';
import { connectTcp } from './upstream';

const ESTABLISHED = 'HTTP/1.1 200 Connection established\r\n\r\n';

export async function handleConnect(ctx: ProxyContext, req: IncomingMessage, socket: Socket, head: Buffer): Promise<void> {
  const conn = ctx.connectionOf(socket);
  if (conn === undefined) {
    socket.destroy();
    return;
  }
  ctx.counters.requests++;
  conn.busy++;
  const target = parseConnectTarget(req.url ?? '');
  const rec = ctx.record(conn, 'CONNECT', target.ok ? target.value.authority : (req.url ?? ''));
  socket.once('close', () => {
    rec.finish(takeBytes(conn));
    ctx.requestDone(conn);
  });
  if (!target.ok) {
    refuse(ctx, socket, rec, { status: 400, text: `expected host:port after CONNECT (${target.reason})` }, 'NONE', `bad-request:${target.reason}`);
    return;
  }
  if (ctx.closing) {
    // A tunnel opened now would only be cut at the drain deadline.
    refuse(ctx, socket, rec, { status: 503, text: 'the proxy is shutting down; retry' }, 'NONE', 'shutting-down');
    return;
  }
  await tunnel(ctx, conn, socket, head, rec, target.value);
}

function refuse(ctx: ProxyContext, socket: Socket, rec: AccessRecord, reply: ProxyReply, squidResult: string, reason: string): void {
  rec.entry.status = reply.status;
  rec.entry.squidResult = squidResult;
  rec.entry.reason = reason;
  rec.entry.decision = squidResult === 'TCP_DENIED' ? 'deny' : 'error';
  endWithReply(socket, rawReply(reply), ctx.opts.headerTimeoutMs);
}

async function tunnel(ctx: ProxyContext, conn: ClientConnection, socket: Socket, head: Buffer, rec: AccessRecord, target: RequestTarget): Promise<void> {
  rec.entry.host = target.host;
  rec.entry.port = target.port;
  const facts = { client: conn.client, endpoint: conn.endpoint, host: target.host, port: target.port, method: 'CONNECT' };
  const decision = ctx.decide(facts);
  if (decision === null) {
    refuse(ctx, socket, rec, { status: 500, text: 'the policy could not be evaluated' }, 'NONE', 'policy-error');
    return;
  }
  rec.decided(decision);
  if (decision.action === 'deny') {
    refuse(ctx, socket, rec, { status: 403, text: denialText(decision), rule: decision.rule?.id ?? null }, 'TCP_DENIED', decision.reason);
    return;
  }

  const resolved = await resolveDestination(ctx, rec, target.destination, decision.allowAddresses);
  if (socket.destroyed) return;
  if (!resolved.ok) {
    const denied = resolved.status === 403;
    refuse(ctx, socket, rec, { status: resolved.status, text: unresolvedText(resolved, target.host) }, denied ? 'TCP_DENIED' : 'TCP_TUNNEL', resolved.reason);
    return;
  }

  const connected = await connectTcp(resolved.address, resolved.family, target.port, ctx.opts.connectTimeoutMs);
  if (!connected.ok) {
    refuse(ctx, socket, rec, { status: connected.status, text: upstreamFailureText(connected, target.authority) }, 'TCP_TUNNEL', connected.reason);
    return;
  }
  const upstream = connected.socket;
  upstream.on('error', () => upstream.destroy());
  rec.connected(resolved.address, connected.connectMs);
  if (socket.destroyed) {
    upstream.destroy();
    return;
  }
  // Either side closing for good ends the tunnel; half-closes pass through the pipes.
  socket.once('close', () => upstream.destroy());
  upstream.once('close', () => {
    if (!socket.writableEnded) socket.destroy();
  });
  for (const s of [socket, upstream]) {
    s.setTimeout(ctx.opts.idleTimeoutMs, () => {
      socket.destroy();
      upstream.destroy();
    });
  }

  socket.write(ESTABLISHED);
  ctx.counters.tunnels++;
  rec.entry.status = 200;
  rec.entry.squidResult = 'TCP_TUNNEL';
  // pipe, not stream.pipeline: pipeline makes an AbortController per call and
  // a DOMException per close (a visible share of each tunnel's CPU). Errors
  // and closes are handled above: either side closing destroys the other;
  // an end (half-close) is passed on by pipe.
  upstream.pipe(socket);

  const start = await awaitTunnelStart(
    socket,
    head,
    {
      host: target.host,
      hostIsIp: target.hostIsIp,
      nonTls: ctx.opts.fronting.nonTls,
      sniAllowed: (sni) => sniAllowedByPolicy(ctx, facts, sni),
    },
    ctx.opts.frontingTimeoutMs,
  );
  if (start.outcome !== 'allow') {
    if (start.outcome === 'deny' || (start.outcome === 'timeout' && start.bytes.length > 0)) {
      // An unreadable or incomplete hello is one we could not check: refused like a mismatch.
      rec.entry.squidResult = 'TCP_DENIED';
      rec.entry.decision = 'deny';
      rec.entry.reason = 'fronting';
    } else if (start.outcome === 'timeout') {
      rec.entry.decision = 'error';
      rec.entry.reason = 'timeout';
    }
    socket.destroy();
    upstream.destroy();
    return;
  }
  if (start.bytes.length > 0) upstream.write(start.bytes);
  socket.pipe(upstream); // resumes the socket awaitTunnelStart left paused
}

/** Whether the policy allows a CONNECT to the SNI's name, on the same port, for the same client. */
function sniAllowedByPolicy(ctx: ProxyContext, facts: { client: string; endpoint: string | null; port: number }, sni: string): boolean {
  const parsed = parseDestinationHost(sni);
  if (parsed.kind === 'invalid') return false;
  const host = parsed.kind === 'ip' ? parsed.address : parsed.name;
  return ctx.decide({ client: facts.client, endpoint: facts.endpoint, host, port: facts.port, method: 'CONNECT' })?.action === 'allow';
}
