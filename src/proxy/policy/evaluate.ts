/**
 * The decision for one proxy request: pure, allocation-free on the usual
 * paths, and never throws (request facts are untrusted input; values that
 * do not parse match only the rules that do not constrain them).
 *
 * Order of judgement:
 *  1. A CONNECT to a port outside connect_ports is denied (reason 'port').
 *  2. Rules, first match wins.
 *  3. No rule matched: the default (deny unless the policy says allow).
 *
 * An allow is not yet a connection: the caller resolves the host and checks
 * every address (resolveAndCheck in ../ssrf) with the decision's allowAddresses.
 */
import type { ProxyRequestFacts } from '../types';
import type { ProxyDecision, ProxyPolicy } from './types';

export function evaluateProxyPolicy(policy: ProxyPolicy, facts: ProxyRequestFacts): ProxyDecision {
  const index = policy.index;
  if (facts.method === 'CONNECT' && !index.connectAllowed(facts.port)) return index.connectPortDenied;
  const rule = index.firstMatch(facts.client, facts.endpoint, facts.host, facts.port, facts.method);
  return rule >= 0 ? index.byRule[rule] : index.byDefault;
}
