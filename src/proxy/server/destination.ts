/**
 * The steps a plain request and a CONNECT tunnel share between the policy's
 * answer and the upstream connection: resolving and checking the
 * destination (timed into the access record), and the one-line texts the
 * client is told when the policy, the check or the upstream says no.
 */
import { performance } from 'node:perf_hooks';
import type { DestinationHost, ResolveAndCheckResult } from '../ssrf';
import type { AccessRecord } from './access';
import { replyAndFinish, type ClientConnection, type ProxyContext } from './context';
import type { ProxyRequestFacts } from '../types';
import type { ProxyDecision } from './options';
import type { UpstreamFailure } from './upstream';

const RESOLVE_FAILED: ResolveAndCheckResult = { ok: false, reason: 'resolve:failed', addresses: [], status: 502 };

/**
 * Resolves `host` and checks every address, then calls `then` with the
 * result: at once when the answer is known (a literal, a cached name),
 * else when the lookup ends. A resolver that throws counts as a failed
 * lookup (502). A `then` that throws after a lookup (outside the relay's
 * event handler, which would catch it) costs the connection only.
 */
export function resolveDestination(
  ctx: ProxyContext,
  conn: ClientConnection,
  rec: AccessRecord,
  host: DestinationHost,
  allowAddresses: readonly string[],
  then: (resolved: ResolveAndCheckResult) => void,
): void {
  const resolveStart = performance.now();
  const settle = (resolved: ResolveAndCheckResult): void => {
    rec.entry.resolveMs = Math.round(performance.now() - resolveStart);
    rec.entry.resolvedAddresses = [...resolved.addresses];
    then(resolved);
  };
  let pending: Promise<ResolveAndCheckResult> | ResolveAndCheckResult;
  try {
    pending = ctx.opts.resolve(host, allowAddresses);
  } catch {
    pending = RESOLVE_FAILED;
  }
  if (pending instanceof Promise) {
    pending.then(settle, () => settle(RESOLVE_FAILED)).catch(() => ctx.relay.close(conn.id));
    return;
  }
  settle(pending);
}

/**
 * The policy's answer for the exchange's request, recorded. A denial (403
 * naming the rule) or a policy that fails (500) is answered here, and then
 * the result is null.
 */
export function decideOrRefuse(ctx: ProxyContext, conn: ClientConnection, facts: ProxyRequestFacts, keepAlive: boolean): ProxyDecision | null {
  const decision = ctx.decide(facts);
  if (decision === null) {
    replyAndFinish(ctx, conn, { status: 500, text: 'the policy could not be evaluated' }, 'NONE', 'policy-error', keepAlive);
    return null;
  }
  conn.exchange?.rec.decided(decision);
  if (decision.action === 'deny') {
    replyAndFinish(ctx, conn, { status: 403, text: denialText(decision), rule: decision.rule?.id ?? null }, 'TCP_DENIED', decision.reason, keepAlive);
    return null;
  }
  return decision;
}

/** Answers a destination that did not resolve (502, 504) or was refused by the SSRF check (403). */
export function refuseUnresolved(ctx: ProxyContext, conn: ClientConnection, resolved: { reason: string; status: number }, host: string, squidResult: string, keepAlive: boolean): void {
  const denied = resolved.status === 403;
  replyAndFinish(ctx, conn, { status: resolved.status, text: unresolvedText(resolved, host) }, denied ? 'TCP_DENIED' : squidResult, resolved.reason, keepAlive);
}

/** Why a denied request was denied, for the 403 body. */
export function denialText(decision: ProxyDecision): string {
  const rule = decision.rule?.id ?? null;
  return `denied by ${rule === null ? 'the default policy' : `rule ${rule}`}: ${decision.message}`;
}

/** Why a destination was not resolved or not allowed (403 when the check refused an address). */
export function unresolvedText(resolved: { reason: string; status: number }, host: string): string {
  return resolved.status === 403 ? `the destination address is not allowed (${resolved.reason})` : `could not resolve ${host} (${resolved.reason})`;
}

/** Why the upstream could not be reached or did not answer. */
export function upstreamFailureText(failure: UpstreamFailure, authority: string): string {
  return failure.status === 504 ? `the upstream ${authority} did not answer in time` : `could not reach the upstream ${authority} (${failure.reason})`;
}
