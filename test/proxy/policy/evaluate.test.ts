import { test } from 'node:test';
import assert from 'node:assert/strict';
import { evaluateProxyPolicy } from '../../../src/proxy/policy';
import { ENDPOINT_A, ENDPOINT_B, ENDPOINT_C, policyFrom, request, verdict } from './helpers';

test('first match wins, in file order', () => {
  const policy = policyFrom(
    'rules:\n  - {id: deny-api, action: deny, host: api.example.com}\n  - {id: allow-all, action: allow, host: .example.com}\n  - {id: deny-late, action: deny, host: www.example.com}\n',
  );
  assert.equal(verdict(policy, request({ host: 'api.example.com' })), 'deny deny-api rule');
  assert.equal(verdict(policy, request({ host: 'www.example.com' })), 'allow allow-all rule');
  assert.equal(verdict(policy, request({ host: 'example.com' })), 'allow allow-all rule');
});

test('deny by default; default: allow when the policy says so', () => {
  const deny = policyFrom('rules:\n  - {id: web, action: allow, host: example.com}\n');
  assert.equal(verdict(deny, request({ host: 'other.example' })), 'deny - default');
  const d = evaluateProxyPolicy(deny, request({ host: 'other.example' }));
  assert.equal(d.message, 'no rule matched (default deny)');
  assert.deepEqual(d.allowAddresses, []);
  const allow = policyFrom('default: allow\nrules:\n  - {id: block, action: deny, host: .blocked.example}\n');
  assert.equal(verdict(allow, request({ host: 'x.blocked.example' })), 'deny block rule');
  assert.equal(verdict(allow, request({ host: 'other.example' })), 'allow - default');
});

test('name patterns: exact, domain and subdomains, subdomains only', () => {
  const policy = policyFrom(
    'rules:\n  - {id: exact, action: allow, host: exact.example}\n  - {id: domain, action: allow, host: .domain.example}\n  - {id: subs, action: allow, host: "*.subs.example"}\n',
  );
  const cases: Array<[string, string]> = [
    ['exact.example', 'allow exact rule'],
    ['www.exact.example', 'deny - default'],
    ['domain.example', 'allow domain rule'],
    ['a.b.domain.example', 'allow domain rule'],
    ['subs.example', 'deny - default'],
    ['a.subs.example', 'allow subs rule'],
    ['notdomain.example', 'deny - default'],
    // Hosts not yet normalised are normalised on the slower path.
    ['A.Domain.Example.', 'allow domain rule'],
  ];
  assert.deepEqual(
    cases.map(([host]) => [host, verdict(policy, request({ host }))]),
    cases,
  );
});

test('IP destinations match host CIDRs, in any notation, and never name patterns', () => {
  const policy = policyFrom(
    'rules:\n  - {id: doc4, action: allow, host: 192.0.2.0/24}\n  - {id: doc6, action: allow, host: "2001:db8::/32"}\n  - {id: one, action: deny, host: 198.51.100.7}\n',
  );
  assert.equal(verdict(policy, request({ host: '192.0.2.1' })), 'allow doc4 rule');
  assert.equal(verdict(policy, request({ host: '0xc0.0.2.1' })), 'allow doc4 rule');
  assert.equal(verdict(policy, request({ host: '[2001:db8::5]' })), 'allow doc6 rule');
  assert.equal(verdict(policy, request({ host: '2001:db8::5' })), 'allow doc6 rule');
  assert.equal(verdict(policy, request({ host: '198.51.100.7' })), 'deny one rule');
  assert.equal(verdict(policy, request({ host: '198.51.100.8' })), 'deny - default');
  assert.equal(verdict(policy, request({ host: 'x.0.2.1' })), 'deny - default', 'a name ending in a number is not a host');
  // A rule without host matches IP destinations; a host that does not parse matches only such rules.
  const open = policyFrom('rules:\n  - {id: web, action: allow, host: .example.com}\n  - {id: any, action: allow, method: GET}\n');
  assert.equal(verdict(open, request({ host: '203.0.113.9', method: 'GET' })), 'allow any rule');
  assert.equal(verdict(open, request({ host: '1.2.3.4.5', method: 'GET' })), 'allow any rule');
  assert.equal(verdict(open, request({ host: '1.2.3.4.5' })), 'deny - default');
});

test('connect_ports: a CONNECT elsewhere is denied before any rule; other methods are not affected', () => {
  const policy = policyFrom('connect_ports: [443, "8443-8444"]\nrules:\n  - {id: all, action: allow}\n');
  assert.equal(verdict(policy, request({ port: 443 })), 'allow all rule');
  assert.equal(verdict(policy, request({ port: 8444 })), 'allow all rule');
  assert.equal(verdict(policy, request({ port: 22 })), 'deny - port');
  assert.equal(evaluateProxyPolicy(policy, request({ port: 22 })).message, 'CONNECT is allowed only to ports 443 or 8443-8444');
  assert.equal(verdict(policy, request({ port: 22, method: 'GET' })), 'allow all rule');
  const defaults = policyFrom('default: allow\n');
  assert.equal(verdict(defaults, request({ port: 443 })), 'allow - default');
  assert.equal(verdict(defaults, request({ port: 80 })), 'deny - port');
  const none = policyFrom('default: allow\nconnect_ports: []\n');
  assert.equal(verdict(none, request({ port: 443 })), 'deny - port');
  assert.equal(evaluateProxyPolicy(none, request()).message, 'CONNECT is not allowed (connect_ports is empty)');
});

test('per-endpoint rule sets: the PrivateLink endpoint selects the rules', () => {
  const policy = policyFrom(
    [
      'rules:',
      // Team A may reach example.com; team B only api.example.net; others nothing.
      `  - {id: a-web, action: allow, endpoint: &team-a ${ENDPOINT_A}, host: .example.com}`,
      '  - {id: a-rest, action: deny, endpoint: *team-a, message: team A is limited to example.com}',
      `  - {id: b-api, action: allow, endpoint: ${ENDPOINT_B}, host: api.example.net}`,
      `  - {id: shared, action: allow, endpoint: [${ENDPOINT_A}, ${ENDPOINT_B}], host: shared.example}`,
      '  - {id: direct, action: allow, host: direct.example}',
    ].join('\n'),
  );
  const cases: Array<[string | null, string, string]> = [
    [ENDPOINT_A, 'www.example.com', 'allow a-web rule'],
    [ENDPOINT_A, 'api.example.net', 'deny a-rest rule'],
    [ENDPOINT_A, 'shared.example', 'deny a-rest rule'],
    [ENDPOINT_B, 'api.example.net', 'allow b-api rule'],
    [ENDPOINT_B, 'www.example.com', 'deny - default'],
    [ENDPOINT_B, 'shared.example', 'allow shared rule'],
    [ENDPOINT_C, 'www.example.com', 'deny - default'],
    [ENDPOINT_C, 'direct.example', 'allow direct rule'],
    // Without a PROXY header (or without the TLV): only rules without an endpoint key.
    [null, 'www.example.com', 'deny - default'],
    [null, 'direct.example', 'allow direct rule'],
  ];
  assert.deepEqual(
    cases.map(([endpoint, host]) => [endpoint, host, verdict(policy, request({ endpoint, host }))]),
    cases,
  );
  assert.equal(evaluateProxyPolicy(policy, request({ host: 'api.example.net' })).message, 'team A is limited to example.com');
});

test('methods', () => {
  const policy = policyFrom(
    'rules:\n  - {id: read, action: allow, method: [GET, HEAD], host: .example.com}\n  - {id: tunnel, action: allow, method: connect, host: .example.com}\n  - {id: no-write, action: deny, method: [POST, PUT, DELETE]}\n',
  );
  assert.equal(verdict(policy, request({ method: 'GET', port: 80 })), 'allow read rule');
  assert.equal(verdict(policy, request({ method: 'HEAD', port: 80 })), 'allow read rule');
  assert.equal(verdict(policy, request({ method: 'CONNECT' })), 'allow tunnel rule');
  assert.equal(verdict(policy, request({ method: 'POST', port: 80 })), 'deny no-write rule');
  assert.equal(verdict(policy, request({ method: 'PATCH', port: 80 })), 'deny - default');
});

test('client CIDRs, IPv4 and IPv6, and IPv4 clients seen through a dual-stack socket', () => {
  const policy = policyFrom(
    'rules:\n  - {id: v4, action: allow, client: [10.0.0.0/8, 192.0.2.0/25]}\n  - {id: v6, action: allow, client: "2001:db8:1::/48"}\n',
  );
  assert.equal(verdict(policy, request({ client: '10.9.8.7' })), 'allow v4 rule');
  assert.equal(verdict(policy, request({ client: '192.0.2.127' })), 'allow v4 rule');
  assert.equal(verdict(policy, request({ client: '192.0.2.128' })), 'deny - default');
  assert.equal(verdict(policy, request({ client: '::ffff:10.9.8.7' })), 'allow v4 rule');
  assert.equal(verdict(policy, request({ client: '2001:db8:1:2::3' })), 'allow v6 rule');
  assert.equal(verdict(policy, request({ client: '2001:db8:2::3' })), 'deny - default');
  assert.equal(verdict(policy, request({ client: 'garbage' })), 'deny - default');
});

test('ports and ranges', () => {
  const policy = policyFrom('rules:\n  - {id: web, action: allow, port: [80, "8000-8080"], method: GET}\n');
  assert.equal(verdict(policy, request({ method: 'GET', port: 80 })), 'allow web rule');
  assert.equal(verdict(policy, request({ method: 'GET', port: 8080 })), 'allow web rule');
  assert.equal(verdict(policy, request({ method: 'GET', port: 8081 })), 'deny - default');
  assert.equal(verdict(policy, request({ method: 'GET', port: -1 })), 'deny - default');
  assert.equal(verdict(policy, request({ method: 'GET', port: Number.NaN })), 'deny - default');
});

test('every key of a rule must match', () => {
  const policy = policyFrom(
    `rules:\n  - {id: all-keys, action: allow, client: 10.0.0.0/8, endpoint: ${ENDPOINT_A}, host: .example.com, port: 443, method: CONNECT}\n`,
  );
  const base = request({ client: '10.1.1.1' });
  assert.equal(verdict(policy, base), 'allow all-keys rule');
  assert.equal(verdict(policy, { ...base, client: '11.1.1.1' }), 'deny - default');
  assert.equal(verdict(policy, { ...base, endpoint: ENDPOINT_B }), 'deny - default');
  assert.equal(verdict(policy, { ...base, host: 'example.org' }), 'deny - default');
  assert.equal(verdict(policy, { ...base, port: 444, method: 'GET' }), 'deny - default');
  assert.equal(verdict(policy, { ...base, method: 'GET' }), 'deny - default');
});

test('the decision carries the deciding rule, its message and its allow_addresses; decisions are reused', () => {
  const policy = policyFrom('rules:\n  - {id: internal, action: allow, host: .corp.example, allow_addresses: [10.1.0.0/16], message: internal services}\n');
  const d = evaluateProxyPolicy(policy, request({ host: 'wiki.corp.example' }));
  assert.deepEqual(
    { action: d.action, rule: d.rule?.id, reason: d.reason, message: d.message, allowAddresses: d.allowAddresses },
    { action: 'allow', rule: 'internal', reason: 'rule', message: 'internal services', allowAddresses: ['10.1.0.0/16'] },
  );
  assert.equal(evaluateProxyPolicy(policy, request({ host: 'git.corp.example' })), d, 'one frozen decision per rule');
  assert.ok(Object.isFrozen(d));
});

test('more than 32 rules (several bitset words): the first match is still the first', () => {
  const lines = ['rules:'];
  for (let i = 0; i < 100; i++) lines.push(`  - {id: r${i}, action: ${i % 2 === 0 ? 'allow' : 'deny'}, host: h${i}.example}`);
  lines.push('  - {id: late, action: allow, host: .example}');
  const policy = policyFrom(lines.join('\n'));
  assert.equal(verdict(policy, request({ host: 'h0.example' })), 'allow r0 rule');
  assert.equal(verdict(policy, request({ host: 'h33.example' })), 'deny r33 rule');
  assert.equal(verdict(policy, request({ host: 'h99.example' })), 'deny r99 rule');
  assert.equal(verdict(policy, request({ host: 'h100.example' })), 'allow late rule');
});

test('facts that do not parse match only the rules that do not constrain them, and never throw', () => {
  const policy = policyFrom(
    `rules:\n  - {id: keyed, action: allow, client: 10.0.0.0/8, endpoint: ${ENDPOINT_A}, host: .example.com, port: 443, method: CONNECT}\n  - {id: open, action: deny}\n`,
  );
  const odd = [
    request({ client: '' }),
    request({ client: '10.0.0.1%eth0' }),
    request({ host: '' }),
    request({ host: '[::1' }),
    request({ host: 'a'.repeat(5000) }),
    request({ endpoint: 'vpce-nope' }),
    request({ port: 70000 }),
    request({ method: '' }),
  ];
  for (const facts of odd) assert.equal(verdict(policy, facts), facts.port === 70000 ? 'deny - port' : 'deny open rule', JSON.stringify(facts).slice(0, 80));
  // An endpoint id in capitals (not what AWS sends) still selects its rules.
  assert.equal(verdict(policy, request({ client: '10.1.1.1', endpoint: ENDPOINT_A.toUpperCase() })), 'allow keyed rule');
});
