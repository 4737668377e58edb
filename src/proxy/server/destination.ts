/**
 * The steps a plain request and a CONNECT tunnel share between the policy's
 * answer and the upstream connection: resolving and checking the
 * destination (timed into the access record), and the one-line texts the
 * client is told when the policy, the check or the upstream says no.
 */
import { performance } from 'node:perf_hooks';
import type { DestinationHost, ResolveAndCheckResult } from '../ssrf';
import type { AccessRecord } from './access';
import type { ProxyContext } from './context';
import type { ProxyDecision } from './options';
import type { UpstreamFailure } from './upstream';

const RESOLVE_FAILED: ResolveAndCheckResult = { ok: false, reason: 'resolve:failed', addresses: [], status: 502 };

/**
 * Resolves `host` and checks every address, then calls `then` with the
 * result: at once when the answer is known (a literal, a cached name),
 * else when the lookup ends. A resolver that throws counts as a failed
 * lookup (502).
 */
export function resolveDestination(ctx: ProxyContext, rec: AccessRecord, host: DestinationHost, allowAddresses: readonly string[], then: (resolved: ResolveAndCheckResult) => void): void {
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
  if (pending instanceof Promise) pending.then(settle, () => settle(RESOLVE_FAILED));
  else settle(pending);
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
