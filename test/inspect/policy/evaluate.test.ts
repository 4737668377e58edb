import { test } from 'node:test';
import assert from 'node:assert/strict';
import { evaluate, pendingRule } from '../../../src/inspect/policy';
import { flow, policyFrom, verdict } from './helpers';

const tls = (sni: string | null) => ({ kind: 'tls' as const, sni });
const http = (host: string | null) => ({ kind: 'http' as const, host });
const dns = (query: string) => ({ kind: 'dns' as const, query, qtype: 1 });

test('first match wins; no match falls to the default, which is deny unless set', () => {
  const policy = policyFrom(
    'rules:\n' +
      '  - {id: block-one, action: drop, dst: 203.0.113.66}\n' +
      '  - {id: allow-net, action: allow, dst: 203.0.113.0/24}\n' +
      '  - {id: reject-all-tcp, action: reject, protocol: tcp}\n',
  );
  assert.equal(policy.defaultAction, 'drop');
  assert.equal(verdict(policy, flow({ dst: '203.0.113.66' })), 'drop block-one rule');
  assert.equal(verdict(policy, flow({ dst: '203.0.113.67' })), 'allow allow-net rule');
  assert.equal(verdict(policy, flow({ dst: '198.51.100.1' })), 'reject reject-all-tcp rule');
  assert.equal(verdict(policy, flow({ dst: '198.51.100.1', protocol: 17 })), 'drop - default');
  assert.equal(verdict(policyFrom('default: allow\n'), flow()), 'allow - default');
});

test('IPv4 CIDR edges: network, broadcast, one outside on each side, /0 and /32', () => {
  const policy = policyFrom(
    'rules:\n' +
      '  - {id: net, action: allow, src: 192.0.2.64/26}\n' +
      '  - {id: host, action: alert, src: 198.51.100.7}\n' +
      '  - {id: all-v4, action: reject, src: 0.0.0.0/0}\n',
  );
  assert.equal(verdict(policy, flow({ src: '192.0.2.63' })), 'reject all-v4 rule');
  assert.equal(verdict(policy, flow({ src: '192.0.2.64' })), 'allow net rule');
  assert.equal(verdict(policy, flow({ src: '192.0.2.127' })), 'allow net rule');
  assert.equal(verdict(policy, flow({ src: '192.0.2.128' })), 'reject all-v4 rule');
  assert.equal(verdict(policy, flow({ src: '198.51.100.7' })), 'alert host rule');
  assert.equal(verdict(policy, flow({ src: '198.51.100.8' })), 'reject all-v4 rule');
  assert.equal(verdict(policy, flow({ src: '255.255.255.255' })), 'reject all-v4 rule');
  assert.equal(verdict(policy, flow({ src: '0.0.0.0' })), 'reject all-v4 rule');
  assert.equal(verdict(policy, flow({ src: '2001:db8::1' })), 'drop - default', 'an IPv4 rule never matches IPv6');
});

test('IPv6 CIDR edges, compressed forms and ::/0', () => {
  const policy = policyFrom(
    'rules:\n' +
      '  - {id: doc48, action: allow, dst: "2001:db8:1::/48"}\n' +
      '  - {id: one, action: alert, dst: "2001:db8::ff"}\n' +
      '  - {id: top, action: reject, dst: "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fff0/124"}\n' +
      '  - {id: all-v6, action: drop, dst: "::/0"}\n',
  );
  assert.equal(verdict(policy, flow({ dst: '2001:db8:1::' })), 'allow doc48 rule');
  assert.equal(verdict(policy, flow({ dst: '2001:db8:1:ffff:ffff:ffff:ffff:ffff' })), 'allow doc48 rule');
  assert.equal(verdict(policy, flow({ dst: '2001:db8:2::' })), 'drop all-v6 rule');
  assert.equal(verdict(policy, flow({ dst: '2001:db8:0:ffff:ffff:ffff:ffff:ffff' })), 'drop all-v6 rule');
  assert.equal(verdict(policy, flow({ dst: '2001:0DB8:0000:0000:0000:0000:0000:00FF' })), 'alert one rule');
  assert.equal(verdict(policy, flow({ dst: '2001:db8::fe' })), 'drop all-v6 rule');
  assert.equal(verdict(policy, flow({ dst: 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff' })), 'reject top rule');
  assert.equal(verdict(policy, flow({ dst: 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffef' })), 'drop all-v6 rule');
  assert.equal(verdict(policy, flow({ dst: '::ffff:192.0.2.1' })), 'drop all-v6 rule');
  assert.equal(verdict(policy, flow({ dst: '192.0.2.1' })), 'drop - default', 'an IPv6 rule never matches IPv4');
});

test('a rule with v4 and v6 sources matches both families', () => {
  const policy = policyFrom('rules:\n  - {id: both, action: allow, src: [10.0.0.0/8, "fd00::/8"]}\n');
  assert.equal(verdict(policy, flow({ src: '10.1.2.3' })), 'allow both rule');
  assert.equal(verdict(policy, flow({ src: 'fd12::1' })), 'allow both rule');
  assert.equal(verdict(policy, flow({ src: 'fe80::1' })), 'drop - default');
});

test('destination ports and ranges, per protocol', () => {
  const policy = policyFrom(
    'rules:\n' +
      '  - {id: web, action: allow, protocol: tcp, dst_port: [80, 443, "8000-8080"]}\n' +
      '  - {id: dns, action: allow, protocol: [udp, tcp], dst_port: 53}\n' +
      '  - {id: high, action: alert, protocol: udp, dst_port: "60000-65535"}\n',
  );
  const cases: Array<[number, number, string]> = [
    [6, 80, 'allow web rule'],
    [6, 81, 'drop - default'],
    [6, 7999, 'drop - default'],
    [6, 8000, 'allow web rule'],
    [6, 8080, 'allow web rule'],
    [6, 8081, 'drop - default'],
    [17, 443, 'drop - default'],
    [17, 53, 'allow dns rule'],
    [6, 53, 'allow dns rule'],
    [17, 59999, 'drop - default'],
    [17, 65535, 'alert high rule'],
    [6, 65535, 'drop - default'],
    [1, 80, 'drop - default'],
  ];
  for (const [protocol, dstPort, expected] of cases) {
    assert.equal(verdict(policy, flow({ protocol, dstPort, app: { kind: 'other' } })), expected, `${protocol}/${dstPort}`);
  }
});

test('protocol by name and number', () => {
  const policy = policyFrom(
    'rules:\n' +
      '  - {id: ping, action: allow, protocol: [icmp, icmpv6]}\n' +
      '  - {id: gre, action: drop, protocol: 47}\n' +
      '  - {id: rest, action: reject, protocol: any}\n',
  );
  assert.equal(verdict(policy, flow({ protocol: 1 })), 'allow ping rule');
  assert.equal(verdict(policy, flow({ protocol: 58, src: '2001:db8::1', dst: '2001:db8::2' })), 'allow ping rule');
  assert.equal(verdict(policy, flow({ protocol: 47 })), 'drop gre rule');
  assert.equal(verdict(policy, flow({ protocol: 6 })), 'reject rest rule');
});

test('endpoint: a rule for one GWLB endpoint leaves the others alone', () => {
  const policy = policyFrom('default: allow\nrules:\n  - {id: prod, action: drop, endpoint: vpce-0123456789abcdef0}\n');
  assert.equal(verdict(policy, flow({ endpoint: 0x0123456789abcdef0n })), 'drop prod rule');
  assert.equal(verdict(policy, flow({ endpoint: 0x0123456789abcdef1n })), 'allow - default');
  assert.equal(verdict(policy, flow({ endpoint: -1n })), 'allow - default');
});

test('name conventions: exact, .domain, *.subdomains; case, trailing dot, IDN', () => {
  const policy = policyFrom(
    'rules:\n' +
      '  - {id: exact, action: allow, tls_sni: api.example.net}\n' +
      '  - {id: domain, action: alert, tls_sni: .example.com}\n' +
      '  - {id: subs, action: reject, tls_sni: "*.example.org"}\n' +
      '  - {id: idn, action: allow, tls_sni: .bücher.example}\n',
  );
  const cases: Array<[string | null, string]> = [
    ['api.example.net', 'allow exact rule'],
    ['API.Example.NET.', 'allow exact rule'],
    ['www.api.example.net', 'drop - default'],
    ['example.net', 'drop - default'],
    ['example.com', 'alert domain rule'],
    ['a.b.example.com', 'alert domain rule'],
    ['badexample.com', 'drop - default'],
    ['example.com.evil.test', 'drop - default'],
    ['example.org', 'drop - default'],
    ['www.example.org', 'reject subs rule'],
    ['a.b.example.org', 'reject subs rule'],
    ['xn--bcher-kva.example', 'allow idn rule'],
    ['shop.bücher.example', 'allow idn rule'],
    ['SHOP.XN--BCHER-KVA.EXAMPLE.', 'allow idn rule'],
    ['', 'drop - tls-without-sni'],
    [null, 'drop - tls-without-sni'],
  ];
  for (const [sni, expected] of cases) assert.equal(verdict(policy, flow({ app: tls(sni) })), expected, String(sni));
  assert.deepEqual(policy.rules[3].match.tlsSni, ['.xn--bcher-kva.example']);
});

test('name keys are alternatives: SNI for TLS, Host for HTTP (port stripped), the question for DNS', () => {
  const policy = policyFrom(
    'rules:\n' +
      '  - id: web\n    action: allow\n    tls_sni: .tls.example\n    http_host: .http.example\n' +
      '  - id: dns\n    action: allow\n    dns_query: .dns.example\n',
  );
  assert.equal(verdict(policy, flow({ app: tls('a.tls.example') })), 'allow web rule');
  assert.equal(verdict(policy, flow({ app: tls('a.http.example') })), 'drop - default', 'SNI is not compared with http_host');
  assert.equal(verdict(policy, flow({ dstPort: 80, app: http('a.http.example:8080') })), 'allow web rule');
  assert.equal(verdict(policy, flow({ dstPort: 80, app: http('A.HTTP.example.') })), 'allow web rule');
  assert.equal(verdict(policy, flow({ dstPort: 80, app: http('a.tls.example') })), 'drop - default');
  assert.equal(verdict(policy, flow({ dstPort: 80, app: http(null) })), 'drop - default');
  assert.equal(verdict(policy, flow({ protocol: 17, dstPort: 53, app: dns('x.dns.example.') })), 'allow dns rule');
  assert.equal(verdict(policy, flow({ protocol: 17, dstPort: 53, app: dns('x.tls.example') })), 'drop - default');
  assert.equal(verdict(policy, flow({ app: { kind: 'other' } })), 'drop - default');
});

test('not final before the payload when a name rule could still match', () => {
  const policy = policyFrom(
    'rules:\n' +
      '  - {id: admin-net, action: allow, src: 10.9.0.0/16}\n' +
      '  - {id: web, action: allow, protocol: tcp, dst_port: 443, tls_sni: .example.com}\n' +
      '  - {id: blocked, action: drop, dst: 198.51.100.0/24}\n',
  );
  // A decisive rule before any name rule: final at the first packet.
  assert.equal(verdict(policy, flow({ src: '10.9.1.1' })), 'allow admin-net rule');
  // The name rule could match: wait for the payload.
  assert.equal(evaluate(policy, flow()).final, false);
  assert.equal(pendingRule(policy, flow())?.id, 'web');
  assert.equal(verdict(policy, flow({ dst: '198.51.100.1' })), 'pending', 'web comes first and could match');
  // The name rule cannot match (port, protocol): decided now.
  assert.equal(verdict(policy, flow({ dstPort: 80 })), 'drop - default');
  assert.equal(verdict(policy, flow({ dstPort: 80, dst: '198.51.100.1' })), 'drop blocked rule');
  assert.equal(verdict(policy, flow({ protocol: 1, dstPort: 0 })), 'drop - default');
  // With the payload: the name decides, or the walk goes on.
  assert.equal(verdict(policy, flow({ dst: '198.51.100.1', app: tls('www.example.com') })), 'allow web rule');
  assert.equal(verdict(policy, flow({ dst: '198.51.100.1', app: tls('other.test') })), 'drop blocked rule');
  assert.equal(pendingRule(policy, flow({ dstPort: 80 })), null);
});

test('an allow-all policy decides every flow at its first packet', () => {
  const policy = policyFrom('default: allow\nrules: []\n');
  assert.equal(policy.needsPayload, false);
  for (const f of [flow(), flow({ protocol: 17, dstPort: 53 }), flow({ protocol: 1 }), flow({ src: '2001:db8::1', dst: '2001:db8::2' })]) {
    assert.equal(verdict(policy, f), 'allow - default');
  }
});

test('midstream: allow and drop decide at once; inspect judges what the flow shows', () => {
  const rules = 'rules:\n  - {id: web, action: allow, tls_sni: .example.com}\n  - {id: http, action: allow, http_host: .example.com}\n';
  const mid = flow({ midstream: true });
  assert.equal(verdict(policyFrom(`midstream: allow\n${rules}`), mid), 'allow - midstream');
  assert.equal(verdict(policyFrom(`midstream: drop\ndefault: allow\n${rules}`), mid), 'drop - midstream');
  const inspect = policyFrom(rules);
  assert.equal(inspect.midstream, 'inspect');
  assert.equal(verdict(inspect, mid), 'pending');
  assert.equal(verdict(inspect, { ...mid, app: http('www.example.com') }), 'allow http rule');
  assert.equal(verdict(inspect, { ...mid, app: { kind: 'other' } }), 'drop - default');
});

test('TLS without SNI and unparsable TLS: their settings when no rule decides', () => {
  const rules = 'rules:\n  - {id: web, action: allow, tls_sni: .example.com}\n';
  const set = policyFrom(`default: deny\ntls_without_sni: alert\ntls_unparsable: reject\n${rules}`);
  assert.equal(verdict(set, flow({ app: tls(null) })), 'alert - tls-without-sni');
  assert.equal(verdict(set, flow({ app: { kind: 'tls-unparsable' } })), 'reject - tls-unparsable');
  assert.equal(verdict(set, flow({ app: tls('x.example.com') })), 'allow web rule');
  // Unset, they follow the default.
  const unset = policyFrom(`default: allow\n${rules}`);
  assert.equal(verdict(unset, flow({ app: tls(null) })), 'allow - tls-without-sni');
  assert.equal(verdict(unset, flow({ app: { kind: 'tls-unparsable' } })), 'allow - tls-unparsable');
  // A rule that decides on addresses still wins over the setting.
  const ruled = policyFrom(`tls_without_sni: allow\nrules:\n  - {id: no, action: drop, dst: 203.0.113.0/24}\n`);
  assert.equal(verdict(ruled, flow({ app: tls(null) })), 'drop no rule');
});

test('a TLS setting that differs from the default makes TCP flows wait for the payload', () => {
  const policy = policyFrom('default: allow\ntls_without_sni: drop\n');
  assert.equal(policy.needsPayload, true);
  assert.equal(verdict(policy, flow()), 'pending');
  assert.equal(pendingRule(policy, flow()), null);
  assert.equal(verdict(policy, flow({ protocol: 17, dstPort: 53 })), 'allow - default');
  assert.equal(verdict(policy, flow({ app: tls(null) })), 'drop - tls-without-sni');
  assert.equal(verdict(policy, flow({ app: http('a.test') })), 'allow - default');
});

test('verify_dns is carried in the decision with its on_mismatch action', () => {
  const policy = policyFrom(
    'rules:\n' +
      '  - {id: checked, action: allow, tls_sni: .example.com, verify_dns: true, on_mismatch: reject}\n' +
      '  - {id: default-mismatch, action: alert, http_host: .example.com, verify_dns: true}\n' +
      '  - {id: plain, action: allow, tls_sni: .example.org}\n',
  );
  assert.equal(policy.usesVerifyDns, true);
  const a = evaluate(policy, flow({ app: tls('a.example.com') }));
  assert.ok(a.final);
  assert.deepEqual(a.verifyDns, { onMismatch: 'reject' });
  const b = evaluate(policy, flow({ dstPort: 80, app: http('a.example.com') }));
  assert.ok(b.final);
  assert.deepEqual(b.verifyDns, { onMismatch: 'drop' });
  const c = evaluate(policy, flow({ app: tls('a.example.org') }));
  assert.ok(c.final);
  assert.equal(c.verifyDns, undefined);
});

test('facts that do not parse match only rules that do not constrain them', () => {
  const policy = policyFrom(
    'rules:\n  - {id: net, action: allow, src: 10.0.0.0/8}\n  - {id: web, action: alert, protocol: tcp, dst_port: 443}\n  - {id: any, action: reject}\n',
  );
  assert.equal(verdict(policy, flow({ src: '10.0.0.256' })), 'alert web rule');
  assert.equal(verdict(policy, flow({ src: 'fe80::1%eth0' })), 'alert web rule');
  assert.equal(verdict(policy, flow({ src: '' })), 'alert web rule');
  assert.equal(verdict(policy, flow({ src: 'x', dstPort: 70000 })), 'reject any rule');
  assert.equal(verdict(policy, flow({ src: 'x', protocol: 6.5 })), 'reject any rule');
});

test('decisions are shared objects: evaluating allocates none on the decided paths', () => {
  const policy = policyFrom('rules:\n  - {id: a, action: allow, dst: 203.0.113.0/24}\n');
  assert.equal(evaluate(policy, flow()), evaluate(policy, flow()));
  assert.equal(evaluate(policy, flow({ dst: '192.0.2.1' })), evaluate(policy, flow({ dst: '192.0.2.2' })));
});
