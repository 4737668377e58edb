/**
 * The compiled index against a plain rule-by-rule evaluation, on random
 * policies and requests drawn from small pools (so that rules overlap and
 * order matters). The reference matches CIDRs with node:net BlockList and
 * names with string comparisons.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BlockList, isIPv6 } from 'node:net';
import fc from 'fast-check';
import { evaluateProxyPolicy } from '../../../src/proxy/policy';
import type { ProxyRequestFacts } from '../../../src/proxy/types';
import { ENDPOINT_A, ENDPOINT_B, ENDPOINT_C, policyFrom } from './helpers';

interface RuleSpec {
  action: 'allow' | 'deny';
  client?: string[];
  endpoint?: string[];
  host?: string[];
  port?: Array<number | string>;
  method?: string[];
}

const HOSTS = ['a.example', '.example', '*.b.example', 'example', '192.0.2.0/24', '192.0.2.7/32', '2001:db8::/32', '10.0.0.0/8'];
const CLIENTS = ['10.0.0.0/8', '10.1.0.0/16', '192.0.2.0/24', '2001:db8::/32'];
const ENDPOINTS = [ENDPOINT_A, ENDPOINT_B, ENDPOINT_C];
const PORTS: Array<number | string> = [80, 443, '8000-8080'];
const METHODS = ['GET', 'POST', 'CONNECT'];

const listOf = <T>(pool: readonly T[]): fc.Arbitrary<T[] | undefined> => fc.option(fc.subarray([...pool], { minLength: 1 }), { nil: undefined, freq: 2 });

const ruleSpec: fc.Arbitrary<RuleSpec> = fc.record({
  action: fc.constantFrom('allow' as const, 'deny' as const),
  client: listOf(CLIENTS),
  endpoint: listOf(ENDPOINTS),
  host: listOf(HOSTS),
  port: listOf(PORTS),
  method: listOf(METHODS),
});

const requestFacts: fc.Arbitrary<ProxyRequestFacts> = fc.record({
  client: fc.constantFrom('10.1.2.3', '10.2.0.1', '192.0.2.200', '::ffff:10.1.2.3', '2001:db8::9', '203.0.113.1'),
  endpoint: fc.constantFrom(ENDPOINT_A, ENDPOINT_B, ENDPOINT_C, 'vpce-0bbbbbbbbbbbbbbbb', null),
  host: fc.constantFrom('a.example', 'x.a.example', 'example', 'b.example', 'c.b.example', 'other.test', '192.0.2.7', '192.0.2.8', '10.1.2.3', '2001:db8::1', '2001:db9::1'),
  port: fc.constantFrom(80, 443, 8080, 9000),
  method: fc.constantFrom('GET', 'POST', 'CONNECT', 'PUT'),
});

function inCidrs(address: string, cidrs: readonly string[]): boolean {
  const family = isIPv6(address) ? 'ipv6' : 'ipv4';
  return cidrs.some((c) => {
    const [net, bits] = c.split('/');
    if ((isIPv6(net) ? 'ipv6' : 'ipv4') !== family) return false;
    const list = new BlockList();
    list.addSubnet(net, Number(bits), family);
    return list.check(address, family);
  });
}

function nameMatches(host: string, pattern: string): boolean {
  if (pattern.startsWith('*.')) return host.endsWith(`.${pattern.slice(2)}`);
  if (pattern.startsWith('.')) return host === pattern.slice(1) || host.endsWith(pattern);
  return host === pattern;
}

const isAddress = (host: string): boolean => /^[\d.]+$/.test(host) || host.includes(':');

function portMatches(port: number, spec: number | string): boolean {
  if (typeof spec === 'number') return port === spec;
  const [lo, hi] = spec.split('-').map(Number);
  return port >= lo && port <= hi;
}

function reference(rules: RuleSpec[], connectPorts: number[], facts: ProxyRequestFacts): string {
  if (facts.method === 'CONNECT' && !connectPorts.includes(facts.port)) return 'deny - port';
  const client = facts.client.startsWith('::ffff:') ? facts.client.slice(7) : facts.client;
  for (const [i, r] of rules.entries()) {
    if (r.client && !inCidrs(client, r.client)) continue;
    if (r.endpoint && (facts.endpoint === null || !r.endpoint.includes(facts.endpoint))) continue;
    if (r.host) {
      const ok = isAddress(facts.host)
        ? inCidrs(facts.host, r.host.filter((h) => h.includes('/')))
        : r.host.some((h) => !h.includes('/') && nameMatches(facts.host, h));
      if (!ok) continue;
    }
    if (r.port && !r.port.some((p) => portMatches(facts.port, p))) continue;
    if (r.method && !r.method.includes(facts.method)) continue;
    return `${r.action} r${i} rule`;
  }
  return 'deny - default';
}

function policyText(rules: RuleSpec[], connectPorts: number[]): string {
  // JSON is YAML: one rule per line, in flow style.
  const lines = [`connect_ports: ${JSON.stringify(connectPorts)}`, 'rules:'];
  rules.forEach((r, i) => lines.push(`  - ${JSON.stringify({ id: `r${i}`, ...r })}`));
  return lines.join('\n') + '\n';
}

test('the compiled index agrees with a rule-by-rule evaluation', () => {
  fc.assert(
    fc.property(
      fc.array(ruleSpec, { maxLength: 40 }),
      fc.subarray([80, 443, 8080]),
      fc.array(requestFacts, { minLength: 1, maxLength: 20 }),
      (rules, connectPorts, requests) => {
        const policy = policyFrom(policyText(rules, connectPorts));
        for (const facts of requests) {
          const d = evaluateProxyPolicy(policy, facts);
          assert.equal(`${d.action} ${d.rule?.id ?? '-'} ${d.reason}`, reference(rules, connectPorts, facts), JSON.stringify(facts));
        }
      },
    ),
    { numRuns: 300 },
  );
});
