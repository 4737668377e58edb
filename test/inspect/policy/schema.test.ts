import { test } from 'node:test';
import assert from 'node:assert/strict';
import { assertPolicyError, policyFrom } from './helpers';

// Each case: a policy with one mistake, and the exact message (file:line:column: reason).
const CASES: Array<{ name: string; text: string; message: string; lists?: Record<string, string> }> = [
  {
    name: 'bad action',
    text: 'rules:\n  - id: a\n    action: permit\n',
    message: 'policy.yaml:3:13: Expected one of allow, drop, reject, alert for action but received "permit"',
  },
  {
    name: 'bad CIDR (not an address)',
    text: 'rules:\n  - id: a\n    action: drop\n    dst: [192.0.2.0/24, 192.0.2.300/32]\n',
    message:
      'policy.yaml:4:25: Expected an IPv4 or IPv6 address or CIDR (e.g. 192.0.2.0/24, 2001:db8::/32) for dst but received "192.0.2.300/32" (not an address)',
  },
  {
    name: 'CIDR with host bits',
    text: 'rules:\n  - id: a\n    action: drop\n    src: 192.0.2.1/24\n',
    message:
      'policy.yaml:4:10: Expected an IPv4 or IPv6 address or CIDR (e.g. 192.0.2.0/24, 2001:db8::/32) for src but received "192.0.2.1/24" (host bits set (did you mean 192.0.2.0/24?))',
  },
  {
    name: 'IPv6 prefix too long',
    text: 'rules:\n  - id: a\n    action: drop\n    src: 2001:db8::/129\n',
    message:
      'policy.yaml:4:10: Expected an IPv4 or IPv6 address or CIDR (e.g. 192.0.2.0/24, 2001:db8::/32) for src but received "2001:db8::/129" (a prefix length outside 0-128)',
  },
  {
    name: 'unknown rule key',
    text: 'rules:\n  - id: a\n    action: allow\n    tls_snii: example.com\n',
    message:
      'policy.yaml:4:5: Expected one of id, sid, action, message, src, dst, protocol, dst_port, endpoint, tls_sni, http_host, dns_query, domain_list, verify_dns, on_mismatch for a rule key but received "tls_snii"',
  },
  {
    name: 'unknown top-level key',
    text: 'default: deny\nrule:\n  - id: a\n',
    message: 'policy.yaml:2:1: Expected one of version, default, midstream, tls_without_sni, tls_unparsable, rules for a top-level key but received "rule"',
  },
  {
    name: 'duplicate id',
    text: 'rules:\n  - id: web\n    action: allow\n  - id: other\n    action: drop\n  - id: web\n    action: drop\n',
    message: 'policy.yaml:6:9: Expected a unique id for id but received "web" (already used by rule 1 on line 2)',
  },
  {
    name: 'YAML syntax error (unclosed flow list)',
    text: 'rules:\n  - id: a\n    action: allow\n    tls_sni: [a.example, b.example\n',
    message:
      'policy.yaml:5:1: Expected valid YAML but received a syntax error: Flow sequence in block collection must be sufficiently indented and end with a ]',
  },
  {
    name: 'YAML syntax error (tab indentation)',
    text: 'rules:\n\t- id: a\n',
    message: 'policy.yaml:2:1: Expected valid YAML but received a syntax error: Tabs are not allowed as indentation',
  },
  {
    name: 'repeated key in a rule',
    text: 'rules:\n  - id: a\n    action: allow\n    action: drop\n',
    message: 'policy.yaml:4:5: Expected valid YAML but received a syntax error: Map keys must be unique',
  },
  {
    name: 'missing id',
    text: 'rules:\n  - action: allow\n',
    message: 'policy.yaml:2:5: Expected an id key for rule 1 but received a rule without one',
  },
  {
    name: 'missing action',
    text: 'rules:\n  - id: a\n    dst: 192.0.2.0/24\n',
    message: 'policy.yaml:2:5: Expected an action key for rule 1 (a) but received a rule without one',
  },
  {
    name: 'bad default',
    text: 'default: drop\n',
    message: 'policy.yaml:1:10: Expected one of allow, deny for default but received "drop"',
  },
  {
    name: 'bad midstream',
    text: 'midstream: yes\n',
    message: 'policy.yaml:1:12: Expected one of allow, drop, inspect for midstream but received "yes"',
  },
  {
    name: 'setting without a value',
    text: 'default: allow\ntls_without_sni:\n',
    message: 'policy.yaml:2:1: Expected a value for tls_without_sni but received nothing',
  },
  {
    name: 'bad version',
    text: 'version: 2\n',
    message: 'policy.yaml:1:10: Expected 1 for version but received 2',
  },
  {
    name: 'rules not a list',
    text: 'rules:\n  id: a\n',
    message: 'policy.yaml:2:3: Expected a list of rules for rules but received a mapping',
  },
  {
    name: 'empty file',
    text: '# nothing\n',
    message: 'policy.yaml:1:1: Expected a mapping with default and rules for the policy but received an empty file',
  },
  {
    name: 'star inside a name',
    text: 'rules:\n  - id: a\n    action: allow\n    tls_sni: a.*.example.com\n',
    message:
      'policy.yaml:4:14: Expected a host name pattern (example.com, .example.com or *.example.com) for tls_sni but received "a.*.example.com" (a "*" that is not the leading "*." label)',
  },
  {
    name: 'empty label in a name',
    text: 'rules:\n  - id: a\n    action: allow\n    http_host: [ok.example, "a..example"]\n',
    message:
      'policy.yaml:4:29: Expected a host name pattern (example.com, .example.com or *.example.com) for http_host but received "a..example" (an empty label)',
  },
  {
    name: 'port without protocol',
    text: 'rules:\n  - id: a\n    action: allow\n    dst_port: 443\n',
    message: 'policy.yaml:4:15: Expected a rule whose protocol is tcp and/or udp (ports need one) for dst_port but received a rule for any protocol',
  },
  {
    name: 'port with icmp',
    text: 'rules:\n  - id: a\n    action: allow\n    protocol: [tcp, icmp]\n    dst_port: 443\n',
    message: 'policy.yaml:5:15: Expected a rule whose protocol is tcp and/or udp (ports need one) for dst_port but received protocol 1, 6',
  },
  {
    name: 'port range upside down',
    text: 'rules:\n  - id: a\n    action: allow\n    protocol: tcp\n    dst_port: [80, 9000-8000]\n',
    message: 'policy.yaml:5:20: Expected a port 0-65535 or a range "LO-HI" with LO <= HI for dst_port but received "9000-8000"',
  },
  {
    name: 'port too large',
    text: 'rules:\n  - id: a\n    action: allow\n    protocol: udp\n    dst_port: 65536\n',
    message: 'policy.yaml:5:15: Expected a port 0-65535 or a range "LO-HI" with LO <= HI for dst_port but received 65536',
  },
  {
    name: 'protocol out of range',
    text: 'rules:\n  - id: a\n    action: allow\n    protocol: 256\n',
    message: 'policy.yaml:4:15: Expected tcp, udp, icmp, icmpv6, any or a protocol number 0-255 for protocol but received 256',
  },
  {
    name: 'endpoint over 64 bits',
    text: 'rules:\n  - id: a\n    action: allow\n    endpoint: vpce-1ffffffffffffffff\n',
    message:
      'policy.yaml:4:15: Expected a GWLB endpoint id (vpce- or eni- and up to 17 hex digits that fit 64 bits, e.g. vpce-0123456789abcdef0) for endpoint but received "vpce-1ffffffffffffffff"',
  },
  {
    name: 'empty list',
    text: 'rules:\n  - id: a\n    action: allow\n    dst: []\n',
    message: 'policy.yaml:4:10: Expected at least one value for dst but received an empty list',
  },
  {
    name: 'key without a value',
    text: 'rules:\n  - id: a\n    action: allow\n    dst:\n',
    message: 'policy.yaml:4:5: Expected a value for dst but received nothing',
  },
  {
    name: 'action without a value',
    text: 'rules:\n  - id: a\n    action:\n',
    message: 'policy.yaml:3:5: Expected a value for action but received nothing',
  },
  {
    name: 'action given as a list',
    text: 'rules:\n  - id: a\n    action: [allow]\n',
    message: 'policy.yaml:3:13: Expected a single value for action but received a list',
  },
  {
    name: 'nested list',
    text: 'rules:\n  - id: a\n    action: allow\n    dst: [[192.0.2.0/24]]\n',
    message: 'policy.yaml:4:11: Expected a single value in the list for dst but received a list',
  },
  {
    name: 'on_mismatch without verify_dns',
    text: 'rules:\n  - id: a\n    action: allow\n    tls_sni: x.example\n    on_mismatch: alert\n',
    message: 'policy.yaml:5:18: Expected verify_dns: true in the same rule for on_mismatch but received a rule without it',
  },
  {
    name: 'verify_dns without names',
    text: 'rules:\n  - id: a\n    action: allow\n    dst: 192.0.2.0/24\n    verify_dns: true\n',
    message:
      'policy.yaml:5:17: Expected a rule with tls_sni, http_host or domain_list (the name to check) for verify_dns but received a rule without names',
  },
  {
    name: 'verify_dns not a boolean',
    text: 'rules:\n  - id: a\n    action: allow\n    tls_sni: x.example\n    verify_dns: "yes"\n',
    message: 'policy.yaml:5:17: Expected true or false for verify_dns but received "yes"',
  },
  {
    name: 'sid collides with a generated one',
    text: 'rules:\n  - id: a\n    action: allow\n  - id: b\n    action: allow\n    sid: 1000001\n',
    message: 'policy.yaml:6:10: Expected a unique sid for sid but received 1000001 (rules 1 and 2 would share it; unset sids are 1000000 + position)',
  },
  {
    name: 'id with a space',
    text: 'rules:\n  - id: "allow web"\n    action: allow\n',
    message: 'policy.yaml:2:9: Expected an id (up to 128 letters, digits and . _ : / @ -, starting with a letter or digit) for id but received "allow web"',
  },
  {
    name: 'missing domain list file',
    text: 'rules:\n  - id: a\n    action: allow\n    domain_list: lists/none.txt\n',
    message: 'policy.yaml:4:18: Expected a readable domain list file for domain_list but received "lists/none.txt" (ENOENT)',
  },
  {
    name: 'bad line in an imported text list (its own file and line)',
    text: 'rules:\n  - id: a\n    action: allow\n    domain_list: lists/allowed.txt\n',
    lists: { 'lists/allowed.txt': '# allowed\n.example.com\n\n  bad name.example\n' },
    message:
      'lists/allowed.txt:4:3: Expected a domain (example.com, or .example.com for the domain and its subdomains) for a domain list entry but received "bad name.example" (the character " ")',
  },
  {
    name: 'bad target type in an imported JSON list',
    text: 'rules:\n  - id: a\n    domain_list: lists/l.json\n',
    lists: { 'lists/l.json': '{"RulesSourceList": {\n  "Targets": [".example.com"],\n  "TargetTypes": ["TLS_SNI", "QUIC"],\n  "GeneratedRulesType": "ALLOWLIST"}}\n' },
    message: 'lists/l.json:3:30: Expected TLS_SNI or HTTP_HOST for TargetTypes but received "QUIC"',
  },
  {
    name: 'JSON list syntax error',
    text: 'rules:\n  - id: a\n    action: allow\n    domain_list: lists/l.json\n',
    lists: { 'lists/l.json': '{"RulesSourceList": {"Targets": [".example.com"]\n' },
    message: 'lists/l.json:2:1: Expected valid YAML but received a syntax error: Flow map in block collection must be sufficiently indented and end with a }',
  },
  {
    name: 'action disagrees with the list GeneratedRulesType',
    text: 'rules:\n  - id: a\n    action: allow\n    domain_list: lists/l.json\n',
    lists: { 'lists/l.json': '{"RulesSourceList": {"Targets": ["x.example"], "TargetTypes": ["HTTP_HOST"], "GeneratedRulesType": "DENYLIST"}}' },
    message: 'policy.yaml:3:13: Expected action drop (the GeneratedRulesType of lists/l.json) for action but received "allow"',
  },
];

for (const c of CASES) {
  test(`refused with line and column: ${c.name}`, () => assertPolicyError(c.text, c.message, c.lists));
}

test('a valid policy keeps positions, ids, sids and derived messages', () => {
  const policy = policyFrom(
    [
      'version: 1',
      'default: allow',
      'rules:',
      '  - id: 7',
      '    action: reject',
      '    protocol: tcp',
      '    dst_port: [443, "8000-8080"]',
      '  - id: named',
      '    sid: 42',
      '    action: alert',
      '    message: watch this',
      '    tls_sni: .Example.COM.',
      '',
    ].join('\n'),
  );
  assert.equal(policy.defaultAction, 'allow');
  assert.equal(policy.midstream, 'inspect');
  assert.equal(policy.tlsWithoutSni, 'allow', 'defaults to the default action');
  assert.equal(policy.source, 'policy.yaml');
  assert.match(policy.digest, /^[0-9a-f]{64}$/);
  const [first, second] = policy.rules;
  assert.deepEqual(
    { id: first.id, sid: first.sid, line: first.line, column: first.column, message: first.message, ports: first.match.dstPort },
    { id: '7', sid: 1000001, line: 4, column: 5, message: 'reject tcp to ports 443 or 8000-8080', ports: [{ lo: 443, hi: 443 }, { lo: 8000, hi: 8080 }] },
  );
  assert.deepEqual(
    { id: second.id, sid: second.sid, line: second.line, message: second.message, sni: second.match.tlsSni },
    { id: 'named', sid: 42, line: 8, message: 'watch this', sni: ['.example.com'] },
  );
  assert.equal(policy.needsPayload, true);
  assert.equal(policy.usesVerifyDns, false);
});

test('ids written as numbers keep their text; "any" protocol means no constraint', () => {
  const policy = policyFrom('rules:\n  - id: 007\n    action: drop\n    protocol: [tcp, any]\n');
  assert.equal(policy.rules[0].id, '007');
  assert.equal(policy.rules[0].match.protocol, null);
});

test('endpoint ids: vpce-, eni- and bare hex all name the same 64-bit id', () => {
  const policy = policyFrom(
    'rules:\n  - id: a\n    action: drop\n    endpoint: [vpce-0123456789abcdef0, eni-0123456789ABCDEF0, "0123456789abcdef0", vpce-ffffffffffffffff]\n',
  );
  assert.deepEqual(policy.rules[0].match.endpoint, [0x123456789abcdef0n, 0xffffffffffffffffn]);
});

test('aliases are followed', () => {
  const policy = policyFrom('rules:\n  - id: a\n    action: allow\n    tls_sni: &names [a.example, .b.example]\n  - id: b\n    action: alert\n    http_host: *names\n');
  assert.deepEqual(policy.rules[1].match.httpHost, ['a.example', '.b.example']);
});

test('an empty rules key is a policy of defaults only', () => {
  const policy = policyFrom('default: allow\nrules:\n');
  assert.equal(policy.rules.length, 0);
  assert.equal(policy.needsPayload, false);
});
