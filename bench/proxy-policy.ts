/**
 * Proxy policy evaluation speed: a 1,000-rule policy (per-endpoint name
 * rules, client and IP-destination rules, port and method rules mixed)
 * whose matching rule is the last one, asked about requests like the
 * proxy's. Prints evaluations per second (target >= 100,000).
 *
 *   npx tsc -p tsconfig.json && node dist/bench/proxy-policy.js [--rules N] [--seconds S]
 */
import { parseArgs } from 'node:util';
import { evaluateProxyPolicy, parseProxyPolicy, type ProxyPolicy } from '../src/proxy/policy';
import type { ProxyRequestFacts } from '../src/proxy/types';

const { values } = parseArgs({ options: { rules: { type: 'string', default: '1000' }, seconds: { type: 'string', default: '1' } } });
const RULES = Math.max(4, Math.min(100_000, Number(values.rules)));
const SECONDS = Math.max(0.1, Math.min(10, Number(values.seconds)));
const MAX_ITERATIONS = 50_000_000;

const endpointId = (i: number): string => `vpce-${i.toString(16).padStart(17, '0')}`;

function buildPolicyText(count: number): string {
  const lines = ['default: deny', 'connect_ports: [443, 8443]', 'rules:'];
  for (let i = 0; i < count - 1; i++) {
    switch (i % 4) {
      case 0: // a per-endpoint name rule for another endpoint
        lines.push(`  - id: name-${i}`, '    action: allow', `    endpoint: ${endpointId(i + 1)}`, `    host: [.site${i}.example, api${i}.example.net]`);
        break;
      case 1: // client and IP-destination rules on other networks
        lines.push(`  - id: cidr-${i}`, '    action: deny', `    client: 10.${(i >> 8) & 255}.${i & 255}.0/24`, `    host: [198.51.100.${i & 255}/32, 2001:db8:${i.toString(16)}::/48]`);
        break;
      case 2: // port rules on other ports
        lines.push(`  - id: port-${i}`, '    action: deny', `    port: [${10000 + i}, ${20000 + i}-${20000 + i + 5}]`);
        break;
      default: // method rules for names nobody asks for
        lines.push(`  - id: method-${i}`, '    action: allow', '    method: [GET, HEAD]', `    host: '*.zone${i}.example'`);
    }
  }
  lines.push('  - id: target', '    action: allow', '    method: CONNECT', '    port: 443', '    host: .target.example');
  return lines.join('\n') + '\n';
}

function measure(policy: ProxyPolicy, label: string, requests: readonly ProxyRequestFacts[]): number {
  // Warm up so the figure is the optimised code, not the interpreter.
  for (let i = 0; i < 20_000; i++) evaluateProxyPolicy(policy, requests[i % requests.length]);
  let n = 0;
  let allowed = 0;
  const start = process.hrtime.bigint();
  const budget = BigInt(Math.round(SECONDS * 1e9));
  while (n < MAX_ITERATIONS) {
    for (let k = 0; k < 1000; k++, n++) {
      if (evaluateProxyPolicy(policy, requests[n % requests.length]).action === 'allow') allowed++;
    }
    if (process.hrtime.bigint() - start >= budget) break;
  }
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const rate = n / seconds;
  console.log(`${label.padEnd(44)} ${Math.round(rate).toLocaleString('en-US').padStart(12)} evaluations/s  (${allowed === n ? 'all allowed' : allowed === 0 ? 'all denied' : `${allowed} of ${n} allowed`})`);
  return rate;
}

function main(): void {
  const text = buildPolicyText(RULES);
  const t0 = process.hrtime.bigint();
  const policy = parseProxyPolicy(text, '<bench>');
  const loadMs = Number(process.hrtime.bigint() - t0) / 1e6;
  console.log(`policy: ${policy.rules.length} rules, loaded and compiled in ${loadMs.toFixed(1)} ms`);

  const connect = (i: number): ProxyRequestFacts => ({
    client: `10.200.${i & 255}.${(i * 7) & 255}`,
    endpoint: endpointId(0xabcdef),
    host: `host${i}.target.example`,
    port: 443,
    method: 'CONNECT',
  });
  const requests = Array.from({ length: 256 }, (_, i) => connect(i));
  const rates = [
    measure(policy, 'CONNECT by name, matching rule last (IPv4)', requests),
    measure(
      policy,
      'CONNECT by name, matching rule last (IPv6)',
      requests.map((r, i) => ({ ...r, client: `2001:db8:ffff::${i.toString(16)}` })),
    ),
    measure(
      policy,
      'GET to an IP destination (default deny)',
      requests.map((r, i) => ({ ...r, host: `203.0.113.${i & 255}`, port: 80, method: 'GET' })),
    ),
    measure(
      policy,
      'name no rule names (default deny)',
      requests.map((r, i) => ({ ...r, host: `www${i}.unlisted.example.org` })),
    ),
  ];
  console.log(`lowest: ${Math.round(Math.min(...rates)).toLocaleString('en-US')} evaluations/s (target >= 100,000)`);
}

main();
