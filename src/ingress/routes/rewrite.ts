/**
 * Upstream host rewrites, pure and total: each returns the new host or the
 * reason there is none. Inputs are normalised host names (lowercase, no
 * trailing dot, no port); the result is checked to still be a host name,
 * because a request's host is untrusted and the result is signed and dialled.
 */
import { parseNamePattern } from '../../inspect/policy/names';
import type { RewriteRule } from './types';

export type RewriteResult = { ok: true; host: string } | { ok: false; reason: string };

const SERVICE_INFIX = '-service';

/** Why `host` is not a plain host name (no wildcard, no leading dot), or null. */
export function hostNameProblem(host: string): string | null {
  if (host.startsWith('*') || host.startsWith('.')) return 'a name that starts with "*" or "."';
  const parsed = parseNamePattern(host);
  if (!parsed.ok) return parsed.problem;
  if (parsed.pattern.name !== host) return 'a name that is not lowercase ASCII without a trailing dot';
  return null;
}

function checked(host: string, from: string): RewriteResult {
  const problem = hostNameProblem(host);
  return problem === null ? { ok: true, host } : { ok: false, reason: `rewriting ${JSON.stringify(from)} gives ${JSON.stringify(host)}, not a host name (${problem})` };
}

/** The seed's rule: replace the first dot with `-service.` (billing.apps.example.com -> billing-service.apps.example.com). */
export function firstDotToService(host: string): RewriteResult {
  const dot = host.indexOf('.');
  if (dot <= 0) return { ok: false, reason: `${JSON.stringify(host)} has no dot after its first label to rewrite` };
  return checked(`${host.slice(0, dot)}${SERVICE_INFIX}${host.slice(dot)}`, host);
}

/** Replaces `suffix` (which starts with a dot) at the end of `host` with `to`. */
export function swapSuffix(host: string, suffix: string, to: string): RewriteResult {
  if (!host.endsWith(suffix) || host.length === suffix.length) {
    return { ok: false, reason: `${JSON.stringify(host)} does not end in ${JSON.stringify(suffix)} after a label` };
  }
  return checked(`${host.slice(0, host.length - suffix.length)}${to}`, host);
}

export function applyRewrite(rule: RewriteRule, host: string): RewriteResult {
  return rule.kind === 'first-dot-to-service' ? firstDotToService(host) : swapSuffix(host, rule.suffix, rule.to);
}
