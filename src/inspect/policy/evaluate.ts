/**
 * The verdict for one flow: pure, allocation-free on the usual paths, and
 * never throws (flow facts are untrusted input; values that do not parse
 * simply match no rule that constrains them).
 *
 * Order of judgement:
 *  1. `midstream: allow|drop` decides flows that arrived mid-stream.
 *  2. Rules, first match wins. Before the payload is known, a rule with
 *     name keys whose other keys accept the flow makes the answer
 *     "not final": the caller must wait for the payload and ask again.
 *  3. No rule matched: a TLS ClientHello without SNI gets `tls_without_sni`,
 *     an unparsable one `tls_unparsable`, anything else the default.
 */
import { hostWithoutPort, normaliseFlowName } from './names';
import type { NameKind } from './policy-index';
import type { FlowFacts, Policy, PolicyDecision, PolicyRule } from './types';

const TCP = 6;

export function evaluate(policy: Policy, facts: FlowFacts): PolicyDecision {
  const index = policy.index;
  const decisions = index.decisions;
  if (facts.midstream === true && decisions.midstream !== null) return decisions.midstream;

  const app = facts.app;
  let kind: NameKind | 'pending' | 'none' = 'none';
  let name: string | null = null;
  if (app === undefined) {
    kind = 'pending';
  } else if (app.kind === 'tls') {
    kind = 'tls';
    name = typeof app.sni === 'string' ? normaliseFlowName(app.sni) : null;
  } else if (app.kind === 'http') {
    kind = 'http';
    name = typeof app.host === 'string' ? normaliseFlowName(hostWithoutPort(app.host)) : null;
  } else if (app.kind === 'dns') {
    kind = 'dns';
    name = typeof app.query === 'string' ? normaliseFlowName(app.query) : null;
  }

  const rule = index.firstMatch(facts.endpoint, facts.src, facts.dst, facts.protocol, facts.dstPort, kind, name);
  if (rule >= 0) {
    if (kind === 'pending' && index.hasNames[rule] === 1) return decisions.pending;
    return decisions.byRule[rule];
  }
  if (app === undefined) {
    // No rule will match whatever the payload; only the TLS settings can still differ.
    return facts.protocol === TCP && decisions.endDependsOnTls ? decisions.pending : decisions.byDefault;
  }
  if (app.kind === 'tls' && name === null) return decisions.tlsWithoutSni;
  if (app.kind === 'tls-unparsable') return decisions.tlsUnparsable;
  return decisions.byDefault;
}

/**
 * For a flow whose decision is not final yet: the rule that waits for a
 * name, or null when only the TLS settings wait for the payload. For
 * explanations (`gatehouse policy test`), not the packet path.
 */
export function pendingRule(policy: Policy, facts: FlowFacts): PolicyRule | null {
  const rule = policy.index.firstMatch(facts.endpoint, facts.src, facts.dst, facts.protocol, facts.dstPort, 'pending', null);
  return rule >= 0 && policy.index.hasNames[rule] === 1 ? policy.rules[rule] : null;
}
