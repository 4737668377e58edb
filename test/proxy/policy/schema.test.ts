import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_CONNECT_PORTS } from '../../../src/proxy/policy';
import { ENDPOINT_A, assertPolicyError, policyFrom } from './helpers';

// Each case: a policy with one mistake, and the exact message (file:line:column: reason).
const CASES: Array<{ name: string; text: string; message: string }> = [
  {
    name: 'bad action',
    text: 'rules:\n  - id: a\n    action: permit\n',
    message: 'proxy.yaml:3:13: Expected one of allow, deny for action but received "permit"',
  },
  {
    name: 'unknown rule key',
    text: 'rules:\n  - id: a\n    action: allow\n    hosts: example.com\n',
    message: 'proxy.yaml:4:5: Expected one of id, action, message, client, endpoint, host, port, method, allow_addresses for a rule key but received "hosts"',
  },
  {
    name: 'unknown top-level key',
    text: 'default: deny\nrule:\n  - id: a\n',
    message: 'proxy.yaml:2:1: Expected one of version, default, connect_ports, rules for a top-level key but received "rule"',
  },
  {
    name: 'duplicate id',
    text: 'rules:\n  - id: web\n    action: allow\n  - id: web\n    action: deny\n',
    message: 'proxy.yaml:4:9: Expected a unique id for id but received "web" (already used by rule 1 on line 2)',
  },
  {
    name: 'rule without id',
    text: 'rules:\n  - action: allow\n    host: example.com\n',
    message: 'proxy.yaml:2:5: Expected an id key for rule 1 but received a rule without one',
  },
  {
    name: 'rule without action',
    text: 'rules:\n  - id: a\n    host: example.com\n',
    message: 'proxy.yaml:2:5: Expected an action key for rule 1 (a) but received a rule without one',
  },
  {
    name: 'endpoint id too short',
    text: 'rules:\n  - id: a\n    action: allow\n    endpoint: [vpce-0123456789abcdef0, vpce-123]\n',
    message: 'proxy.yaml:4:40: Expected a VPC endpoint id (vpce- and 17 hex digits, e.g. vpce-0123456789abcdef0) for endpoint but received "vpce-123"',
  },
  {
    name: 'ENI id is not a VPC endpoint',
    text: 'rules:\n  - id: a\n    action: allow\n    endpoint: eni-0123456789abcdef0\n',
    message: 'proxy.yaml:4:15: Expected a VPC endpoint id (vpce- and 17 hex digits, e.g. vpce-0123456789abcdef0) for endpoint but received "eni-0123456789abcdef0"',
  },
  {
    name: 'client CIDR with host bits',
    text: 'rules:\n  - id: a\n    action: allow\n    client: 10.0.0.1/8\n',
    message: 'proxy.yaml:4:13: Expected an IPv4 or IPv6 address or CIDR (e.g. 192.0.2.0/24, 2001:db8::/32) for client but received "10.0.0.1/8" (host bits set (did you mean 10.0.0.0/8?))',
  },
  {
    name: 'IPv4-mapped client range',
    text: 'rules:\n  - id: a\n    action: allow\n    client: ::ffff:10.0.0.0/104\n',
    message: 'proxy.yaml:4:13: Expected an IPv4 range written as IPv4 (IPv4-mapped addresses are matched as the IPv4 they carry) for client but received "::ffff:10.0.0.0/104"',
  },
  {
    name: 'port out of range',
    text: 'rules:\n  - id: a\n    action: allow\n    port: [443, 70000]\n',
    message: 'proxy.yaml:4:17: Expected a port 0-65535 or a range "LO-HI" with LO <= HI for port but received 70000',
  },
  {
    name: 'reversed port range',
    text: 'rules:\n  - id: a\n    action: allow\n    port: 9000-8000\n',
    message: 'proxy.yaml:4:11: Expected a port 0-65535 or a range "LO-HI" with LO <= HI for port but received "9000-8000"',
  },
  {
    name: 'connect_ports not a port',
    text: 'connect_ports: [443, https]\n',
    message: 'proxy.yaml:1:22: Expected a port 0-65535 or a range "LO-HI" with LO <= HI for connect_ports but received "https"',
  },
  {
    name: 'method with a space',
    text: 'rules:\n  - id: a\n    action: allow\n    method: "GE T"\n',
    message: 'proxy.yaml:4:13: Expected an HTTP method (GET, POST, CONNECT ...) for method but received "GE T"',
  },
  {
    name: 'host in short IPv4 notation',
    text: 'rules:\n  - id: a\n    action: allow\n    host: 127.1\n',
    message: 'proxy.yaml:4:11: Expected a host name pattern (example.com, .example.com or *.example.com) or an IP address or CIDR for host but received 127.1 (an IP address in another notation: write it as 127.0.0.1)',
  },
  {
    name: 'host as a decimal number',
    text: 'rules:\n  - id: a\n    action: allow\n    host: 2130706433\n',
    message: 'proxy.yaml:4:11: Expected a host name pattern (example.com, .example.com or *.example.com) or an IP address or CIDR for host but received 2130706433 (an IP address in another notation: write it as 127.0.0.1)',
  },
  {
    name: 'host bracketed',
    text: 'rules:\n  - id: a\n    action: allow\n    host: "[::1]"\n',
    message: 'proxy.yaml:4:11: Expected a host name pattern (example.com, .example.com or *.example.com) or an IP address or CIDR for host but received "[::1]" (an IP address in another notation: write it as ::1)',
  },
  {
    name: 'host name with a space',
    text: 'rules:\n  - id: a\n    action: allow\n    host: [example.com, "exa mple.com"]\n',
    message: 'proxy.yaml:4:25: Expected a host name pattern (example.com, .example.com or *.example.com) or an IP address or CIDR for host but received "exa mple.com" (the character " ")',
  },
  {
    name: 'host pattern ending in a number',
    text: 'rules:\n  - id: a\n    action: allow\n    host: "*.10.0.0.1"\n',
    message: 'proxy.yaml:4:11: Expected a host name pattern (example.com, .example.com or *.example.com) or an IP address or CIDR for host but received "*.10.0.0.1" (a name cannot end in a number; IP destinations take a CIDR)',
  },
  {
    name: 'allow_addresses on a deny rule',
    text: 'rules:\n  - id: a\n    action: deny\n    allow_addresses: 10.0.0.0/8\n',
    message: 'proxy.yaml:4:22: Expected a rule with action allow (allow_addresses widens what an allowed request may reach) for allow_addresses but received a rule with action deny',
  },
  {
    name: 'allow_addresses not an address',
    text: 'rules:\n  - id: a\n    action: allow\n    allow_addresses: [10.0.0.0/8, localhost]\n',
    message: 'proxy.yaml:4:35: Expected an IPv4 or IPv6 address or CIDR (e.g. 192.0.2.0/24, 2001:db8::/32) for allow_addresses but received "localhost" (not an address)',
  },
  {
    name: 'bad default',
    text: 'default: block\n',
    message: 'proxy.yaml:1:10: Expected one of allow, deny for default but received "block"',
  },
  {
    name: 'missing default value',
    text: 'default:\nrules: []\n',
    message: 'proxy.yaml:1:1: Expected a value for default but received nothing',
  },
  {
    name: 'unknown version',
    text: 'version: 2\n',
    message: 'proxy.yaml:1:10: Expected 1 for version but received 2',
  },
  {
    name: 'empty file',
    text: '',
    message: 'proxy.yaml:1:1: Expected a mapping with default and rules for the policy but received an empty file',
  },
  {
    name: 'rules not a list',
    text: 'rules: {id: a}\n',
    message: 'proxy.yaml:1:8: Expected a list of rules for rules but received a mapping',
  },
  {
    name: 'rule not a mapping',
    text: 'rules:\n  - just-a-string\n',
    message: 'proxy.yaml:2:5: Expected a mapping for rule 1 but received "just-a-string"',
  },
  {
    name: 'empty host list',
    text: 'rules:\n  - id: a\n    action: allow\n    host: []\n',
    message: 'proxy.yaml:4:11: Expected at least one value for host but received an empty list',
  },
  {
    name: 'host without a value',
    text: 'rules:\n  - id: a\n    action: allow\n    host:\n',
    message: 'proxy.yaml:4:5: Expected a value for host but received nothing',
  },
  {
    name: 'host as a mapping',
    text: 'rules:\n  - id: a\n    action: allow\n    host: {a: 1}\n',
    message: 'proxy.yaml:4:11: Expected a value or a list of values for host but received a mapping',
  },
  {
    name: 'bad id',
    text: 'rules:\n  - id: "-bad"\n    action: allow\n',
    message: 'proxy.yaml:2:9: Expected an id (up to 128 letters, digits and . _ : / @ -, starting with a letter or digit) for id but received "-bad"',
  },
  {
    name: 'empty message',
    text: 'rules:\n  - id: a\n    action: allow\n    message: ""\n',
    message: 'proxy.yaml:4:14: Expected a non-empty string for message but received ""',
  },
  {
    name: 'YAML syntax error',
    text: 'rules:\n  - id: a\n    action: allow\n    host: [a.example, b.example\n',
    message: 'proxy.yaml:5:1: Expected valid YAML but received a syntax error: Flow sequence in block collection must be sufficiently indented and end with a ]',
  },
  {
    name: 'repeated key',
    text: 'rules:\n  - id: a\n    action: allow\n    action: deny\n',
    message: 'proxy.yaml:4:5: Expected valid YAML but received a syntax error: Map keys must be unique',
  },
];

for (const c of CASES) {
  test(`schema: ${c.name}`, () => assertPolicyError(c.text, c.message));
}

test('defaults: deny, CONNECT to 443 only, no rules', () => {
  const policy = policyFrom('{}\n');
  assert.equal(policy.defaultAction, 'deny');
  assert.deepEqual(policy.connectPorts, DEFAULT_CONNECT_PORTS);
  assert.deepEqual(policy.connectPorts, [{ lo: 443, hi: 443 }]);
  assert.deepEqual(policy.rules, []);
  assert.deepEqual(policyFrom('connect_ports: []\n').connectPorts, []);
  assert.deepEqual(policyFrom('connect_ports: [443, "8443-8445"]\n').connectPorts, [{ lo: 443, hi: 443 }, { lo: 8443, hi: 8445 }]);
});

test('values are normalised: names, addresses, endpoints, methods', () => {
  const policy = policyFrom(
    [
      'version: 1',
      'rules:',
      '  - id: a',
      '    action: allow',
      `    endpoint: ${ENDPOINT_A.toUpperCase().replace('VPCE', 'vpce')}`,
      '    host: [Example.COM., .Bücher.example, "*.api.example", 192.0.2.1, "::ffff:192.0.2.2", 2001:DB8::/32, example.com]',
      '    client: [10.0.0.0/8, 2001:db8:0:0::/64]',
      '    method: [get, CONNECT]',
      '    port: [443, "8000-8080"]',
      '    allow_addresses: [10.1.0.0/16, "fd00::/8"]',
    ].join('\n'),
  );
  const [rule] = policy.rules;
  assert.deepEqual(rule.match, {
    client: ['10.0.0.0/8', '2001:db8::/64'],
    endpoint: [ENDPOINT_A],
    host: ['example.com', '.xn--bcher-kva.example', '*.api.example', '192.0.2.1/32', '192.0.2.2/32', '2001:db8::/32'],
    port: [
      { lo: 443, hi: 443 },
      { lo: 8000, hi: 8080 },
    ],
    method: ['GET', 'CONNECT'],
  });
  assert.deepEqual(rule.allowAddresses, ['10.1.0.0/16', 'fd00::/8']);
  assert.ok(Object.isFrozen(rule.allowAddresses), 'allowAddresses is frozen (resolveAndCheck caches its compiled form)');
  assert.equal(rule.line, 3);
  assert.equal(rule.column, 5);
});

test('a rule without a message is explained in words', () => {
  const policy = policyFrom(
    `rules:\n  - id: a\n    action: allow\n    method: CONNECT\n    host: .example.com\n    port: 443\n    client: 10.0.0.0/8\n    endpoint: ${ENDPOINT_A}\n  - {id: b, action: deny, message: No uploads, method: [POST, PUT]}\n  - {id: c, action: allow, host: 10.1.0.0/16, allow_addresses: 10.1.0.0/16}\n`,
  );
  assert.deepEqual(
    policy.rules.map((r) => r.message),
    [
      `allow CONNECT to example.com or a subdomain on port 443 from 10.0.0.0/8 via ${ENDPOINT_A}`,
      'No uploads',
      'allow any request to 10.1.0.0/16; may connect to 10.1.0.0/16',
    ],
  );
});
