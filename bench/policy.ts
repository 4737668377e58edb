/**
 * Policy evaluation speed: a 1,000-rule policy (address, port and name
 * rules mixed) whose matching rule is the last one, asked about the same
 * kinds of flows the inspect path asks about. Prints evaluations per second.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/policy.js [--rules N] [--seconds S]
 */
import { parseArgs } from 'node:util';
import { evaluate, parsePolicy, type FlowFacts, type Policy } from '../src/inspect/policy';

const { values } = parseArgs({ options: { rules: { type: 'string', default: '1000' }, seconds: { type: 'string', default: '1' } } });
const RULES = Math.max(4, Math.min(100_000, Number(values.rules)));
const SECONDS = Math.max(0.1, Math.min(10, Number(values.seconds)));
const MAX_ITERATIONS = 50_000_000;

function buildPolicyText(count: number): string {
  const lines = ['default: deny', 'rules:'];
  for (let i = 0; i < count - 1; i++) {
    switch (i % 4) {
      case 0: // a name rule that never matches the flows below
        lines.push(`  - id: name-${i}`, '    action: allow', `    tls_sni: [.site${i}.example, api${i}.example.net]`, `    http_host: .site${i}.example`);
        break;
      case 1: // address rules on other networks
        lines.push(`  - id: cidr-${i}`, '    action: drop', `    src: 10.${(i >> 8) & 255}.${i & 255}.0/24`, `    dst: [198.51.100.${i & 255}/32, 2001:db8:${i.toString(16)}::/48]`);
        break;
      case 2: // port rules on other ports
        lines.push(`  - id: port-${i}`, '    action: reject', '    protocol: tcp', `    dst_port: [${10000 + i}, ${20000 + i}-${20000 + i + 5}]`);
        break;
      default: // DNS rules
        lines.push(`  - id: dns-${i}`, '    action: allow', '    protocol: udp', '    dst_port: 53', `    dns_query: .zone${i}.example`);
    }
  }
  lines.push('  - id: target', '    action: allow', '    protocol: tcp', '    dst_port: 443', '    tls_sni: .target.example');
  return lines.join('\n') + '\n';
}

function measure(policy: Policy, label: string, facts: readonly FlowFacts[]): number {
  // Warm up so the figure is the optimised code, not the interpreter.
  for (let i = 0; i < 20_000; i++) evaluate(policy, facts[i % facts.length]);
  let n = 0;
  let sink = 0;
  const start = process.hrtime.bigint();
  const budget = BigInt(Math.round(SECONDS * 1e9));
  while (n < MAX_ITERATIONS) {
    for (let k = 0; k < 1000; k++, n++) {
      const d = evaluate(policy, facts[n % facts.length]);
      if (d.final) sink++;
    }
    if (process.hrtime.bigint() - start >= budget) break;
  }
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const rate = n / seconds;
  console.log(`${label.padEnd(44)} ${Math.round(rate).toLocaleString('en-US').padStart(12)} evaluations/s  (${sink === n ? 'all final' : `${n - sink} not final`})`);
  return rate;
}

function main(): void {
  const text = buildPolicyText(RULES);
  const t0 = process.hrtime.bigint();
  const policy = parsePolicy(text, '<bench>', () => {
    throw new Error('no lists in the bench');
  });
  const loadMs = Number(process.hrtime.bigint() - t0) / 1e6;
  console.log(`policy: ${policy.rules.length} rules, loaded and compiled in ${loadMs.toFixed(1)} ms`);

  const base = { endpoint: 0x0123456789abcdef0n, protocol: 6, srcPort: 40000, dstPort: 443, midstream: false } as const;
  const tls = (i: number): FlowFacts => ({
    ...base,
    src: `10.200.${i & 255}.${(i * 7) & 255}`,
    dst: `203.0.113.${i & 255}`,
    srcPort: 30000 + i,
    app: { kind: 'tls', sni: `host${i}.target.example` },
  });
  const flows = Array.from({ length: 256 }, (_, i) => tls(i));
  const rates = [
    measure(policy, 'TLS SNI, matching rule last (IPv4)', flows),
    measure(
      policy,
      'TLS SNI, matching rule last (IPv6)',
      flows.map((f, i) => ({ ...f, src: `2001:db8:ffff::${i.toString(16)}`, dst: `2001:db8:eeee::${(i * 3).toString(16)}` })),
    ),
    measure(
      policy,
      'first packet, no payload yet (IPv4)',
      flows.map(({ app: _app, ...f }) => f),
    ),
    measure(
      policy,
      'TLS SNI that no rule names (default deny)',
      flows.map((f, i) => ({ ...f, app: { kind: 'tls' as const, sni: `www${i}.unlisted.example.org` } })),
    ),
  ];
  console.log(`lowest: ${Math.round(Math.min(...rates)).toLocaleString('en-US')} evaluations/s (target >= 200,000)`);
}

main();
