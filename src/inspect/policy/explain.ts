/**
 * Rules and decisions in plain words, for `gatehouse policy check|test`
 * and as the default rule message (the Suricata EVE signature).
 */
import { describePattern } from './names';
import type { Action, DomainListRef, Policy, PolicyDecision, PortRange, RuleMatch } from './types';
import { PROTOCOL_NUMBERS } from './types';

const SHOWN = 4;

const PROTOCOL_NAMES = new Map<number, string>(Object.entries(PROTOCOL_NUMBERS).map(([name, n]) => [n, name]));

/** "a", "a or b", "a, b or c", "a, b, c and 5 more". */
export function alternatives(items: readonly string[]): string {
  if (items.length > SHOWN) return `${items.slice(0, SHOWN - 1).join(', ')} and ${items.length - (SHOWN - 1)} more`;
  if (items.length === 1) return items[0];
  return `${items.slice(0, -1).join(', ')} or ${items[items.length - 1]}`;
}

export function protocolName(p: number): string {
  return PROTOCOL_NAMES.get(p) ?? `protocol ${p}`;
}

export function portText(r: PortRange): string {
  return r.lo === r.hi ? String(r.lo) : `${r.lo}-${r.hi}`;
}

export function endpointText(id: bigint): string {
  return `vpce-${id.toString(16).padStart(17, '0')}`;
}

function namesText(label: string, patterns: readonly string[], lists: readonly DomainListRef[]): string {
  const from = lists.length > 0 ? ` (from ${lists.map((l) => l.path).join(', ')})` : '';
  if (patterns.length > SHOWN) return `${label} is one of ${patterns.length} names${from}`;
  // "example.com or a subdomain" reads well alone; in a list it needs brackets.
  const words = patterns.length === 1 ? [describePattern(patterns[0])] : patterns.map((p) => describePattern(p, true));
  return `${label} is ${alternatives(words)}${from}`;
}

function sameNames(a: readonly string[] | null, b: readonly string[] | null): boolean {
  return a !== null && b !== null && a.length === b.length && a.every((p, i) => p === b[i]);
}

/** What a rule matches, without its action: "tcp to port 443 when TLS SNI is example.com or a subdomain". */
export function describeMatch(match: RuleMatch, lists: readonly DomainListRef[] = [], verifyDns: { onMismatch: Action } | null = null): string {
  const parts: string[] = [];
  if (match.protocol !== null) parts.push(alternatives(match.protocol.map(protocolName)));
  if (match.src !== null) parts.push(`from ${alternatives(match.src)}`);
  if (match.dst !== null) parts.push(`to ${alternatives(match.dst)}`);
  if (match.dstPort !== null) {
    const word = match.dstPort.length === 1 && match.dstPort[0].lo === match.dstPort[0].hi ? 'port' : 'ports';
    parts.push(`${match.dst === null ? 'to ' : ''}${word} ${alternatives(match.dstPort.map(portText))}`);
  }
  if (match.endpoint !== null) parts.push(`via ${alternatives(match.endpoint.map(endpointText))}`);
  const names: string[] = [];
  if (sameNames(match.tlsSni, match.httpHost)) {
    names.push(namesText('TLS SNI or HTTP Host', match.tlsSni as readonly string[], lists));
  } else {
    if (match.tlsSni !== null) names.push(namesText('TLS SNI', match.tlsSni, lists));
    if (match.httpHost !== null) names.push(namesText('HTTP Host', match.httpHost, lists));
  }
  if (match.dnsQuery !== null) names.push(namesText('DNS query', match.dnsQuery, []));
  if (names.length > 0) parts.push(`when ${names.join(', or ')}`);
  let text = parts.length > 0 ? parts.join(' ') : 'any traffic';
  if (verifyDns !== null) text += `; the name must resolve to the destination address, else ${verifyDns.onMismatch}`;
  return text;
}

/** The lines `gatehouse policy check` prints for a valid policy. */
export function explainPolicy(policy: Policy): string[] {
  const rules = policy.rules;
  const lines = [
    `${policy.source}: ok, ${rules.length} rule${rules.length === 1 ? '' : 's'}, default ${policy.defaultAction === 'drop' ? 'deny' : 'allow'}`,
  ];
  const idWidth = Math.max(0, ...rules.map((r) => r.id.length));
  const posWidth = String(rules.length).length;
  for (const rule of rules) {
    lines.push(
      `${String(rule.position).padStart(posWidth)} ${rule.id.padEnd(idWidth)}  ${rule.action.padEnd(6)} ` +
        describeMatch(rule.match, rule.domainLists, rule.verifyDns),
    );
  }
  lines.push(
    `then: ${policy.defaultAction === 'drop' ? 'deny (drop)' : 'allow'} everything else; ` +
      `midstream flows: ${policy.midstream}; TLS without SNI: ${policy.tlsWithoutSni}; unparsable TLS: ${policy.tlsUnparsable}`,
  );
  return lines;
}

/** One line for a decision: "allow by rule allow-web (line 5): <message>". */
export function explainDecision(decision: PolicyDecision): string {
  if (!decision.final) return 'not final: the flow needs its payload (a name) to be decided';
  const verify = decision.verifyDns ? ` (if the name does not resolve to the destination: ${decision.verifyDns.onMismatch})` : '';
  if (decision.rule !== null) {
    return `${decision.action} by rule ${decision.rule.id} (line ${decision.rule.line}): ${decision.rule.message}${verify}`;
  }
  const why: Record<string, string> = {
    default: 'the default (no rule matched)',
    midstream: 'the midstream setting (the flow arrived mid-stream)',
    'tls-without-sni': 'the tls_without_sni setting (TLS without SNI, no rule matched)',
    'tls-unparsable': 'the tls_unparsable setting (unparsable TLS, no rule matched)',
  };
  return `${decision.action} by ${why[decision.reason] ?? decision.reason}`;
}
