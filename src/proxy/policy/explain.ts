/**
 * Proxy rules and decisions in plain words: the default rule message, and
 * the lines a future `gatehouse proxy check` prints (one per rule, then
 * notes on rules the SSRF defences would refuse anyway).
 */
import { alternatives, portText } from '../../inspect/policy/explain';
import { parseCidr } from '../../inspect/policy/addresses';
import { describePattern } from '../../inspect/policy/names';
import { deniedAddressReason } from '../ssrf/address-classes';
import type { PortRange, ProxyDecision, ProxyPolicy, ProxyRule, ProxyRuleMatch } from './types';

function portsText(ports: readonly PortRange[]): string {
  const word = ports.length === 1 && ports[0].lo === ports[0].hi ? 'port' : 'ports';
  return `${word} ${alternatives(ports.map(portText))}`;
}

/** "CONNECT is allowed only to port 443" (the message of a 'port' refusal). */
export function explainConnectPorts(ports: readonly PortRange[]): string {
  return ports.length === 0 ? 'CONNECT is not allowed (connect_ports is empty)' : `CONNECT is allowed only to ${portsText(ports)}`;
}

/** "example.com or a subdomain" alone, "example.com (or a subdomain)" in a list. */
function hostText(host: string, inList: boolean): string {
  return host.includes('/') ? host : describePattern(host, inList);
}

/** What a rule matches, without its action: "CONNECT to example.com (or a subdomain) on port 443 from 10.0.0.0/8 via vpce-...". */
export function describeProxyMatch(match: ProxyRuleMatch): string {
  const parts: string[] = [match.method === null ? 'any request' : alternatives(match.method)];
  if (match.host !== null) {
    parts.push(`to ${match.host.length === 1 ? hostText(match.host[0], false) : alternatives(match.host.map((h) => hostText(h, true)))}`);
  }
  if (match.port !== null) parts.push(`${match.host === null ? 'to' : 'on'} ${portsText(match.port)}`);
  if (match.client !== null) parts.push(`from ${alternatives(match.client)}`);
  if (match.endpoint !== null) parts.push(`via ${alternatives(match.endpoint)}`);
  return parts.join(' ');
}

/** A rule in one line, without its id: "allow GET to example.com; may connect to 10.0.0.0/8". */
export function describeProxyRule(rule: Pick<ProxyRule, 'action' | 'match' | 'allowAddresses'>): string {
  const allowance = rule.allowAddresses.length > 0 ? `; may connect to ${alternatives(rule.allowAddresses)}` : '';
  return `${rule.action} ${describeProxyMatch(rule.match)}${allowance}`;
}

/**
 * Allow rules naming IP destinations that the SSRF defences refuse unless
 * allow_addresses covers them: the rule alone would never connect there.
 */
export function ssrfNotes(policy: ProxyPolicy): string[] {
  const notes: string[] = [];
  for (const rule of policy.rules) {
    if (rule.action !== 'allow' || rule.match.host === null) continue;
    for (const host of rule.match.host) {
      const range = host.includes('/') ? parseCidr(host) : null;
      if (range === null || !range.ok) continue;
      const first = range.range.text.split('/')[0];
      const denied = deniedAddressReason(first, { allow: rule.allowAddresses, own: [] });
      if (denied !== null) {
        notes.push(
          `note: rule ${rule.id} (line ${rule.line}) allows ${host}, but the SSRF defences refuse ${denied} addresses; add allow_addresses: [${host}] to the rule to reach them`,
        );
      }
    }
  }
  return notes;
}

/** The lines `gatehouse proxy check` prints for a valid policy. */
export function explainProxyPolicy(policy: ProxyPolicy): string[] {
  const rules = policy.rules;
  const lines = [
    `${policy.source}: ok, ${rules.length} rule${rules.length === 1 ? '' : 's'}, default ${policy.defaultAction}; ${explainConnectPorts(policy.connectPorts)}`,
  ];
  const idWidth = Math.max(0, ...rules.map((r) => r.id.length));
  const posWidth = String(rules.length).length;
  for (const rule of rules) {
    lines.push(`${String(rule.position).padStart(posWidth)} ${rule.id.padEnd(idWidth)}  ${describeProxyRule(rule)}`);
  }
  lines.push(`then: ${policy.defaultAction} everything else; every destination address is checked against the SSRF deny list`);
  return [...lines, ...ssrfNotes(policy)];
}

/** One line for a decision: "allow by rule web (line 5): <message>". */
export function explainProxyDecision(decision: ProxyDecision): string {
  if (decision.rule !== null) return `${decision.action} by rule ${decision.rule.id} (line ${decision.rule.line}): ${decision.message}`;
  if (decision.reason === 'port') return `${decision.action} before any rule: ${decision.message}`;
  return `${decision.action} by the default (no rule matched)`;
}
