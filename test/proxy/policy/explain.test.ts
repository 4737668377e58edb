import { test } from 'node:test';
import assert from 'node:assert/strict';
import { evaluateProxyPolicy, explainProxyDecision, explainProxyPolicy } from '../../../src/proxy/policy';
import { ENDPOINT_A, ENDPOINT_B, policyFrom, request } from './helpers';

const POLICY = [
  'connect_ports: [443, 8443]',
  'rules:',
  `  - {id: team-a, action: allow, endpoint: ${ENDPOINT_A}, host: [.example.com, api.example.net], method: [GET, CONNECT]}`,
  '  - {id: wiki, action: allow, host: .corp.example, allow_addresses: [10.1.0.0/16]}',
  '  - {id: lab, action: allow, host: [10.2.0.0/16, "198.51.100.0/24"], port: [80, "8000-8080"], client: 192.0.2.0/24}',
  '  - {id: no-post, action: deny, method: POST, message: no uploads}',
].join('\n');

test('explainProxyPolicy: one line per rule, then the default and notes on SSRF-refused destinations', () => {
  assert.deepEqual(explainProxyPolicy(policyFrom(POLICY)), [
    'proxy.yaml: ok, 4 rules, default deny; CONNECT is allowed only to ports 443 or 8443',
    `1 team-a   allow GET or CONNECT to example.com (or a subdomain) or api.example.net via ${ENDPOINT_A}`,
    '2 wiki     allow any request to corp.example or a subdomain; may connect to 10.1.0.0/16',
    '3 lab      allow any request to 10.2.0.0/16 or 198.51.100.0/24 on ports 80 or 8000-8080 from 192.0.2.0/24',
    '4 no-post  deny POST',
    'then: deny everything else; every destination address is checked against the SSRF deny list',
    'note: rule lab (line 5) allows 10.2.0.0/16, but the SSRF defences refuse private addresses; add allow_addresses: [10.2.0.0/16] to the rule to reach them',
  ]);
});

test('explainProxyDecision: by rule, by the default, by connect_ports', () => {
  const policy = policyFrom(POLICY);
  const line = (over: Parameters<typeof request>[0]): string => explainProxyDecision(evaluateProxyPolicy(policy, request(over)));
  assert.equal(line({}), `allow by rule team-a (line 3): allow GET or CONNECT to example.com (or a subdomain) or api.example.net via ${ENDPOINT_A}`);
  assert.equal(line({ method: 'POST', port: 80 }), 'deny by rule no-post (line 6): no uploads');
  assert.equal(line({ endpoint: ENDPOINT_B }), 'deny by the default (no rule matched)');
  assert.equal(line({ port: 22 }), 'deny before any rule: CONNECT is allowed only to ports 443 or 8443');
});
