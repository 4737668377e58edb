/**
 * evaluate() against a plain rule-by-rule reference written here (Node's
 * BlockList judges addresses, string suffixes judge names) on random
 * policies and flows; and evaluate() never throws on random facts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BlockList, isIPv4, isIPv6 } from 'node:net';
import fc from 'fast-check';
import { evaluate, type Action, type AppFacts, type FlowFacts, type Policy, type PolicyRule } from '../../../src/inspect/policy';
import { policyFrom } from './helpers';

const ACTIONS: Action[] = ['allow', 'drop', 'reject', 'alert'];
const V4_CIDRS = ['192.0.2.0/24', '192.0.2.0/25', '192.0.2.128/25', '192.0.2.7/32', '198.51.100.0/24', '198.51.100.64/26', '0.0.0.0/0'];
const V6_CIDRS = ['2001:db8::/32', '2001:db8::/120', '2001:db8::80/121', '2001:db8::5/128', '2001:db8:1::/48', '::/0'];
const V4_ADDRS = ['192.0.2.0', '192.0.2.7', '192.0.2.127', '192.0.2.128', '192.0.2.255', '198.51.100.63', '198.51.100.64', '198.51.100.127', '203.0.113.1'];
const V6_ADDRS = ['2001:db8::', '2001:db8::5', '2001:db8::7f', '2001:db8::80', '2001:db8::ff', '2001:db8::100', '2001:db8:1::1', '2001:db9::1'];
const PROTOCOLS = [1, 6, 17, 47, 58];
const PORT_SPECS = ['53', '80', '443', '8000-8080', '0-1023', '65535'];
const NAMES = ['x.test', 'a.x.test', 'b.a.x.test', 'y.test', 'a.y.test', 'x.test.y.test'];
const PATTERNS = ['x.test', '.x.test', '*.x.test', 'a.x.test', '.y.test', '*.a.x.test', '.test'];

const ruleArb = fc.record(
  {
    action: fc.constantFrom(...ACTIONS),
    src: fc.subarray([...V4_CIDRS, ...V6_CIDRS], { minLength: 1, maxLength: 3 }),
    dst: fc.subarray([...V4_CIDRS, ...V6_CIDRS], { minLength: 1, maxLength: 3 }),
    protocol: fc.subarray(PROTOCOLS, { minLength: 1, maxLength: 3 }),
    ports: fc.subarray(PORT_SPECS, { minLength: 1, maxLength: 3 }),
    endpoint: fc.subarray(['1', '2'], { minLength: 1 }),
    tls: fc.subarray(PATTERNS, { minLength: 1, maxLength: 2 }),
    http: fc.subarray(PATTERNS, { minLength: 1, maxLength: 2 }),
    dns: fc.subarray(PATTERNS, { minLength: 1, maxLength: 2 }),
  },
  { requiredKeys: ['action'] },
);

const settingsArb = fc.record({
  default: fc.constantFrom('allow', 'deny'),
  midstream: fc.constantFrom('allow', 'drop', 'inspect'),
  tls_without_sni: fc.option(fc.constantFrom(...ACTIONS)),
  tls_unparsable: fc.option(fc.constantFrom(...ACTIONS)),
});

type RuleSpec = { action: Action; src?: string[]; dst?: string[]; protocol?: number[]; ports?: string[]; endpoint?: string[]; tls?: string[]; http?: string[]; dns?: string[] };

function policyText(settings: fc.Arbitrary<unknown> extends never ? never : Record<string, string | null>, rules: RuleSpec[]): string {
  const lines = Object.entries(settings).filter(([, v]) => v !== null).map(([k, v]) => `${k}: ${v}`);
  lines.push('rules:');
  rules.forEach((r, i) => {
    lines.push(`  - id: r${i}`, `    action: ${r.action}`);
    const list = (key: string, values?: readonly (string | number)[]): void => {
      if (values) lines.push(`    ${key}: [${values.map((v) => JSON.stringify(String(v))).join(', ')}]`);
    };
    list('src', r.src);
    list('dst', r.dst);
    // Ports need tcp/udp only.
    const protocols = r.ports ? (r.protocol ?? [6]).filter((p) => p === 6 || p === 17) : r.protocol;
    list('protocol', r.ports && protocols?.length === 0 ? [6] : protocols);
    list('dst_port', r.ports);
    list('endpoint', r.endpoint);
    list('tls_sni', r.tls);
    list('http_host', r.http);
    list('dns_query', r.dns);
  });
  return lines.join('\n') + '\n';
}

const appArb: fc.Arbitrary<AppFacts | undefined> = fc.oneof(
  fc.constant(undefined),
  fc.record({ kind: fc.constant('tls' as const), sni: fc.option(fc.constantFrom(...NAMES, 'A.X.TEST.')) }),
  fc.constant({ kind: 'tls-unparsable' as const }),
  fc.record({ kind: fc.constant('http' as const), host: fc.option(fc.constantFrom(...NAMES, 'a.x.test:8080')) }),
  fc.record({ kind: fc.constant('dns' as const), query: fc.constantFrom(...NAMES), qtype: fc.constant(1) }),
  fc.constant({ kind: 'other' as const }),
);

const factsArb: fc.Arbitrary<FlowFacts> = fc
  .record({
    v6: fc.boolean(),
    srcI: fc.nat(),
    dstI: fc.nat(),
    protocol: fc.constantFrom(...PROTOCOLS),
    dstPort: fc.constantFrom(0, 53, 80, 443, 1023, 1024, 8000, 8080, 8081, 65535),
    endpoint: fc.constantFrom(0n, 1n, 2n, 3n),
    midstream: fc.boolean(),
    app: appArb,
  })
  .map(({ v6, srcI, dstI, app, ...rest }) => {
    const pool = v6 ? V6_ADDRS : V4_ADDRS;
    return { ...rest, src: pool[srcI % pool.length], dst: pool[dstI % pool.length], srcPort: 40000, ...(app === undefined ? {} : { app }) };
  });

// ---- the reference: one rule at a time, nothing precomputed ----

function inCidrs(addr: string, cidrs: readonly string[] | null): boolean {
  if (cidrs === null) return true;
  const family = isIPv4(addr) ? 'ipv4' : isIPv6(addr) ? 'ipv6' : null;
  if (family === null) return false;
  // Same family only: BlockList lets IPv6 subnets match IPv4 addresses (as mapped addresses); a policy does not.
  const list = new BlockList();
  for (const c of cidrs) {
    const [net, len] = c.split('/');
    if ((isIPv4(net) ? 'ipv4' : 'ipv6') === family) list.addSubnet(net, Number(len), family);
  }
  return list.check(addr, family);
}

function nameMatches(name: string | null, patterns: readonly string[] | null): boolean {
  if (name === null || patterns === null) return false;
  const n = name.toLowerCase().replace(/:\d+$/, '').replace(/\.$/, '');
  return patterns.some((p) => (p.startsWith('*.') ? n.endsWith(p.slice(1)) : p.startsWith('.') ? n === p.slice(1) || n.endsWith(p) : n === p));
}

type Ref = { final: false } | { final: true; action: Action; rule: string | null; reason: string };

function reference(policy: Policy, f: FlowFacts): Ref {
  if (f.midstream && policy.midstream !== 'inspect') return { final: true, action: policy.midstream, rule: null, reason: 'midstream' };
  for (const rule of policy.rules as PolicyRule[]) {
    const m = rule.match;
    const l34 =
      inCidrs(f.src, m.src) &&
      inCidrs(f.dst, m.dst) &&
      (m.protocol === null || m.protocol.includes(f.protocol)) &&
      (m.dstPort === null || m.dstPort.some((r) => f.dstPort >= r.lo && f.dstPort <= r.hi)) &&
      (m.endpoint === null || m.endpoint.includes(f.endpoint));
    if (!l34) continue;
    const hasNames = m.tlsSni !== null || m.httpHost !== null || m.dnsQuery !== null;
    const decide: Ref = { final: true, action: rule.action, rule: rule.id, reason: 'rule' };
    if (!hasNames) return decide;
    const app = f.app;
    if (app === undefined) {
      if (f.protocol === 6 || f.protocol === 17) return { final: false };
      continue;
    }
    if (app.kind === 'tls' && nameMatches(app.sni, m.tlsSni)) return decide;
    if (app.kind === 'http' && nameMatches(app.host, m.httpHost)) return decide;
    if (app.kind === 'dns' && nameMatches(app.query, m.dnsQuery)) return decide;
  }
  const d = policy.defaultAction;
  if (f.app === undefined) {
    return f.protocol === 6 && (policy.tlsWithoutSni !== d || policy.tlsUnparsable !== d) ? { final: false } : { final: true, action: d, rule: null, reason: 'default' };
  }
  if (f.app.kind === 'tls' && f.app.sni === null) return { final: true, action: policy.tlsWithoutSni, rule: null, reason: 'tls-without-sni' };
  if (f.app.kind === 'tls-unparsable') return { final: true, action: policy.tlsUnparsable, rule: null, reason: 'tls-unparsable' };
  return { final: true, action: d, rule: null, reason: 'default' };
}

test('evaluate agrees with a rule-by-rule reference on random policies and flows', () => {
  fc.assert(
    fc.property(settingsArb, fc.array(ruleArb, { maxLength: 40 }), fc.array(factsArb, { minLength: 1, maxLength: 30 }), (settings, rules, flows) => {
      const policy = policyFrom(policyText(settings, rules as RuleSpec[]));
      for (const f of flows) {
        const got = evaluate(policy, f);
        const simple: Ref = got.final ? { final: true, action: got.action, rule: got.rule?.id ?? null, reason: got.reason } : { final: false };
        assert.deepEqual(simple, reference(policy, f), JSON.stringify(f, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v)));
      }
    }),
    { numRuns: 300 },
  );
});

test('evaluate never throws on random facts', () => {
  const policy = policyFrom(
    'tls_without_sni: alert\nrules:\n' +
      '  - {id: a, action: allow, src: [10.0.0.0/8, "2001:db8::/32"], protocol: tcp, dst_port: [443, "8000-9000"], tls_sni: .example.com}\n' +
      '  - {id: b, action: drop, endpoint: vpce-0123456789abcdef0, http_host: "*.example.org", dns_query: example.net}\n' +
      '  - {id: c, action: reject, dst: 192.0.2.0/24}\n',
  );
  const anyApp = fc.oneof(
    fc.constant(undefined),
    fc.record({ kind: fc.constant('tls' as const), sni: fc.option(fc.string({ unit: 'binary' })) }),
    fc.record({ kind: fc.constant('http' as const), host: fc.option(fc.string({ unit: 'binary' })) }),
    fc.record({ kind: fc.constant('dns' as const), query: fc.string({ unit: 'binary' }), qtype: fc.integer() }),
    fc.constant({ kind: 'tls-unparsable' as const }),
    fc.constant({ kind: 'other' as const }),
  );
  const text = fc.oneof(fc.string(), fc.ipV4(), fc.ipV6(), fc.ipV4Extended(), fc.string({ unit: 'binary' }));
  const number = fc.oneof(fc.integer(), fc.double(), fc.constantFrom(6, 17, 1, 58, 443, -1, 65536, NaN));
  fc.assert(
    fc.property(
      fc.record({ endpoint: fc.bigInt(), src: text, dst: text, protocol: number, srcPort: number, dstPort: number, midstream: fc.boolean(), app: anyApp }),
      ({ app, ...f }) => {
        const d = evaluate(policy, app === undefined ? f : { ...f, app });
        assert.equal(typeof d.final, 'boolean');
        if (d.final) assert.ok(ACTIONS.includes(d.action));
      },
    ),
    { numRuns: 3000 },
  );
});
