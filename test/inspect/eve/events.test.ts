import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  alertEvent,
  dnsEvent,
  eveFlowId,
  eveTimestamp,
  flowEvent,
  httpEvent,
  tlsEvent,
  wrapAnf,
  type EveFlowTuple,
} from '../../../src/inspect/eve';

const AT = new Date('2026-11-22T02:39:45.123Z');
const TCP: EveFlowTuple = { flowId: 1234567890123n, src: '10.0.1.5', srcPort: 50432, dst: '203.0.113.20', dstPort: 443, protocol: 6 };

test('timestamp: Suricata format, UTC, microseconds', () => {
  assert.equal(eveTimestamp(AT), '2026-11-22T02:39:45.123000+0000');
  assert.equal(eveTimestamp(new Date('2027-01-02T03:04:05.006Z')), '2027-01-02T03:04:05.006000+0000');
  assert.equal(eveTimestamp(new Date(0)), '1970-01-01T00:00:00.000000+0000');
  assert.match(eveTimestamp(new Date()), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+0000$/);
});

test('alert: exact fields, Suricata key order, tls section and app_proto', () => {
  const event = alertEvent(
    TCP,
    { action: 'blocked', signatureId: 1000002, signature: 'egress: api.example.com not allowed', category: 'Policy', severity: 2 },
    { tls: { sni: 'api.example.com' } },
    AT,
  );
  assert.deepEqual(event, {
    timestamp: '2026-11-22T02:39:45.123000+0000',
    flow_id: 1234567890123,
    event_type: 'alert',
    src_ip: '10.0.1.5',
    src_port: 50432,
    dest_ip: '203.0.113.20',
    dest_port: 443,
    proto: 'TCP',
    alert: {
      action: 'blocked',
      gid: 1,
      signature_id: 1000002,
      rev: 1,
      signature: 'egress: api.example.com not allowed',
      category: 'Policy',
      severity: 2,
    },
    app_proto: 'tls',
    tls: { sni: 'api.example.com' },
  });
  // deepEqual ignores key order; the line itself must be in Suricata's order.
  assert.equal(
    JSON.stringify(event),
    '{"timestamp":"2026-11-22T02:39:45.123000+0000","flow_id":1234567890123,"event_type":"alert","src_ip":"10.0.1.5","src_port":50432,' +
      '"dest_ip":"203.0.113.20","dest_port":443,"proto":"TCP","alert":{"action":"blocked","gid":1,"signature_id":1000002,"rev":1,' +
      '"signature":"egress: api.example.com not allowed","category":"Policy","severity":2},"app_proto":"tls","tls":{"sni":"api.example.com"}}',
  );
});

test('alert: defaults, http and dns sections, missing sni, unrecognised payload, no app facts', () => {
  const facts = { action: 'allowed' as const, signatureId: 7, signature: 'allow example' };
  const http = alertEvent({ ...TCP, dstPort: 80 }, facts, { http: { hostname: 'www.example.com' } }, AT);
  assert.deepEqual(http.alert, { action: 'allowed', gid: 1, signature_id: 7, rev: 1, signature: 'allow example', category: '', severity: 3 });
  assert.equal(http.app_proto, 'http');
  assert.deepEqual(http.http, { hostname: 'www.example.com' });

  const dns = alertEvent({ ...TCP, protocol: 17, dstPort: 53 }, facts, { dns: { rrname: 'example.com', rrtype: 'A' } }, AT);
  assert.equal(dns.proto, 'UDP');
  assert.equal(dns.app_proto, 'dns');
  assert.deepEqual(dns.dns, { rrname: 'example.com', rrtype: 'A' });

  const noSni = alertEvent(TCP, facts, { tls: { sni: null, ech: 'outer.example.net' } }, AT);
  assert.equal(noSni.app_proto, 'tls');
  assert.deepEqual(noSni.tls, { ech: 'outer.example.net' });

  const failed = alertEvent(TCP, facts, {}, AT);
  assert.equal(failed.app_proto, 'failed');
  assert.deepEqual(Object.keys(failed).slice(-2), ['alert', 'app_proto']);

  const bare = alertEvent(TCP, facts, undefined, AT);
  assert.equal('app_proto' in bare, false);
  assert.equal('tls' in bare, false);
});

test('ICMP and ICMPv6: no ports, Suricata protocol names', () => {
  const icmp = alertEvent(
    { flowId: 9n, src: '10.0.1.5', srcPort: 0, dst: '198.51.100.7', dstPort: 0, protocol: 1 },
    { action: 'blocked', signatureId: 1, signature: 'no icmp' },
    undefined,
    AT,
  );
  assert.deepEqual(Object.keys(icmp), ['timestamp', 'flow_id', 'event_type', 'src_ip', 'dest_ip', 'proto', 'alert']);
  assert.equal(icmp.proto, 'ICMP');
  const icmp6 = flowEvent(
    { flowId: 10n, src: '2001:db8::5', srcPort: 0, dst: '2001:db8:1::7', dstPort: 0, protocol: 58 },
    { pktsToServer: 1, pktsToClient: 1, bytesToServer: 64, bytesToClient: 64, start: AT, end: AT, verdict: 'allow', reason: 'timeout', alerted: false },
    AT,
  );
  assert.equal(icmp6.proto, 'IPv6-ICMP');
  assert.equal('src_port' in icmp6 || 'dest_port' in icmp6, false);
  assert.equal(alertEvent({ ...TCP, protocol: 132 }, { action: 'allowed', signatureId: 1, signature: 's' }, undefined, AT).proto, 'SCTP');
  assert.equal(alertEvent({ ...TCP, protocol: 253 }, { action: 'allowed', signatureId: 1, signature: 's' }, undefined, AT).dest_port, undefined);
  assert.equal(alertEvent({ ...TCP, protocol: 253 }, { action: 'allowed', signatureId: 1, signature: 's' }, undefined, AT).proto, '253');
});

test('flow: exact fields, age in whole seconds, state and action from the verdict', () => {
  const start = new Date('2026-11-22T02:30:00.900Z');
  const end = new Date('2026-11-22T02:33:20.100Z');
  const event = flowEvent(
    TCP,
    {
      pktsToServer: 12,
      pktsToClient: 10,
      bytesToServer: 2048,
      bytesToClient: 65536,
      start,
      end,
      verdict: 'drop',
      reason: 'timeout',
      alerted: true,
      appProto: 'tls',
    },
    AT,
  );
  assert.deepEqual(event, {
    timestamp: '2026-11-22T02:39:45.123000+0000',
    flow_id: 1234567890123,
    event_type: 'flow',
    src_ip: '10.0.1.5',
    src_port: 50432,
    dest_ip: '203.0.113.20',
    dest_port: 443,
    proto: 'TCP',
    app_proto: 'tls',
    flow: {
      pkts_toserver: 12,
      pkts_toclient: 10,
      bytes_toserver: 2048,
      bytes_toclient: 65536,
      start: '2026-11-22T02:30:00.900000+0000',
      end: '2026-11-22T02:33:20.100000+0000',
      age: 200, // 02:33:20 - 02:30:00, as Suricata subtracts seconds
      state: 'established',
      reason: 'timeout',
      alerted: true,
      action: 'drop',
    },
  });
  const base = { pktsToServer: 1, pktsToClient: 0, bytesToServer: 60, bytesToClient: 0, start, end: start, reason: 'shutdown' as const, alerted: false };
  const allowed = flowEvent(TCP, { ...base, verdict: 'allow' }, AT);
  assert.equal(allowed.flow.state, 'new');
  assert.equal(allowed.flow.action, 'pass');
  assert.equal(allowed.flow.age, 0);
  assert.equal('app_proto' in allowed, false);
  assert.equal(flowEvent(TCP, { ...base, verdict: 'reject' }, AT).flow.action, 'drop');
  assert.equal('action' in flowEvent(TCP, { ...base, verdict: 'alert' }, AT).flow, false);
  assert.equal(flowEvent(TCP, { ...base, verdict: 'allow', state: 'closed' }, AT).flow.state, 'closed');
});

test('dns: query and answer in Suricata version 2 layout', () => {
  const udp = { ...TCP, protocol: 17, srcPort: 40000, dstPort: 53 };
  assert.deepEqual(dnsEvent(udp, { type: 'query', id: 4321, rrname: 'api.example.com', rrtype: 'A' }, AT), {
    timestamp: '2026-11-22T02:39:45.123000+0000',
    flow_id: 1234567890123,
    event_type: 'dns',
    src_ip: '10.0.1.5',
    src_port: 40000,
    dest_ip: '203.0.113.20',
    dest_port: 53,
    proto: 'UDP',
    dns: { type: 'query', id: 4321, rrname: 'api.example.com', rrtype: 'A' },
  });
  const answer = dnsEvent(
    udp,
    {
      type: 'answer',
      id: 4321,
      rrname: 'api.example.com',
      rrtype: 'A',
      answers: [
        { rrname: 'api.example.com', rrtype: 'CNAME', ttl: 300, rdata: 'edge.example.net' },
        { rrname: 'edge.example.net', rrtype: 'A', ttl: 60, rdata: '203.0.113.20' },
      ],
    },
    AT,
  );
  assert.deepEqual(answer.dns, {
    version: 2,
    type: 'answer',
    id: 4321,
    rrname: 'api.example.com',
    rrtype: 'A',
    rcode: 'NOERROR',
    answers: [
      { rrname: 'api.example.com', rrtype: 'CNAME', ttl: 300, rdata: 'edge.example.net' },
      { rrname: 'edge.example.net', rrtype: 'A', ttl: 60, rdata: '203.0.113.20' },
    ],
  });
  const nx = dnsEvent(udp, { type: 'answer', rrname: 'nope.example.com', rrtype: 'AAAA', rcode: 'NXDOMAIN', answers: [] }, AT);
  assert.deepEqual(nx.dns, { version: 2, type: 'answer', rrname: 'nope.example.com', rrtype: 'AAAA', rcode: 'NXDOMAIN' });
});

test('tls and http events', () => {
  assert.deepEqual(tlsEvent(TCP, { sni: 'api.example.com', version: 'TLS 1.3' }, AT).tls, { sni: 'api.example.com', version: 'TLS 1.3' });
  assert.deepEqual(tlsEvent(TCP, { sni: null }, AT).tls, {});
  const http = httpEvent(
    { ...TCP, dstPort: 80 },
    { hostname: 'www.example.com', url: '/index.html', method: 'GET', protocol: 'HTTP/1.1', status: 200, userAgent: 'curl/8.5.0', length: 1256 },
    AT,
  );
  assert.equal(http.event_type, 'http');
  assert.equal(
    JSON.stringify(http.http),
    '{"hostname":"www.example.com","url":"/index.html","http_user_agent":"curl/8.5.0","http_method":"GET","protocol":"HTTP/1.1","status":200,"length":1256}',
  );
  assert.deepEqual(httpEvent(TCP, { hostname: null }, AT).http, {});
});

test('AWS Network Firewall wrapping: event_timestamp is epoch seconds as a string', () => {
  const event = alertEvent(TCP, { action: 'allowed', signatureId: 2, signature: '' }, undefined, AT);
  const wrapped = wrapAnf(event, { firewallName: 'egress-fw', availabilityZone: 'us-east-1a' }, new Date('2026-11-22T02:39:45.999Z'));
  assert.deepEqual(wrapped, { firewall_name: 'egress-fw', availability_zone: 'us-east-1a', event_timestamp: '1795315185', event });
  assert.deepEqual(Object.keys(wrapped), ['firewall_name', 'availability_zone', 'event_timestamp', 'event']);
  assert.equal(Number(wrapped.event_timestamp), Math.floor(Date.parse('2026-11-22T02:39:45Z') / 1000));
});

test('flow_id: positive safe integer, stable, folds the top bits in', () => {
  assert.equal(eveFlowId(1n), 1);
  assert.equal(eveFlowId(0n), 2 ** 51);
  assert.equal(eveFlowId(2n ** 51n - 1n), 2 ** 51 - 1);
  // Masking alone would map these two to the same id.
  assert.notEqual(eveFlowId(5n), eveFlowId(5n + (1n << 60n)));
  assert.equal(eveFlowId(5n + (1n << 60n)), 5 ^ (1 << 9));
  assert.equal(eveFlowId(-1n), eveFlowId(2n ** 64n - 1n));
  fc.assert(
    fc.property(fc.bigInt(-(2n ** 63n), 2n ** 64n - 1n), (id) => {
      const out = eveFlowId(id);
      return Number.isSafeInteger(out) && out > 0 && out <= 2 ** 51 && out === eveFlowId(id);
    }),
  );
});
