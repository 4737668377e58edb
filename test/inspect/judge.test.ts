/**
 * FlowJudge at the unit level: engine events carrying payloads from real
 * clients (curl's ClientHello and HTTP request, dig's DNS query, dnsmasq's
 * answers) through a recording VerdictPort; what it decides, injects and
 * logs is checked exactly. The engine itself is exercised in
 * inspect-engine.test.ts.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { Resolver } from 'node:dns/promises';
import { FlowJudge, PAYLOAD_STALL_MS, SETTING_SIGNATURES, type FlowJudgeOptions } from '../../src/inspect/judge';
import { dnsResolver, NameAddressCache, NameVerifier, type NameResolver } from '../../src/inspect/names';
import { parseHttpRequest, parseTlsClientHello } from '../../src/inspect/parse';
import type { Policy } from '../../src/inspect/policy';
import { captureTcp, captureUdp, runClient } from './parse/capture';
import { dnsQuery } from './parse/fixtures';
import { startDnsmasq } from './names/dnsmasq';
import { policyFrom } from './policy/helpers';
import { ACK, CLIENT, Flow, RecordingEve, RecordingPort, SERVER, SYN, tcpFields } from './judge-harness';

const NOW = Date.UTC(2026, 0, 2, 3, 4, 10, 250);

const ALLOWLIST = `
default: deny
midstream: inspect
tls_without_sni: drop
tls_unparsable: drop
rules:
  - {id: dns, action: allow, protocol: udp, dst_port: 53, dns_query: .example.com}
  - {id: dns-watch, action: alert, message: watched name, protocol: udp, dst_port: 53, dns_query: watch.example.org}
  - {id: web, action: allow, protocol: tcp, dst_port: 443, tls_sni: www.example.com}
  - {id: blocked, action: reject, sid: 4242, message: blocked site, protocol: tcp, dst_port: 443, tls_sni: bad.example.com}
  - {id: plain, action: allow, protocol: tcp, dst_port: 80, http_host: .example.com}
`;

const VERIFY = `
default: deny
rules:
  - {id: dns, action: allow, protocol: udp, dst_port: 53, dns_query: .example.com}
  - {id: web, action: allow, protocol: tcp, dst_port: 443, tls_sni: .example.com, verify_dns: true, on_mismatch: reject}
`;

/** No lookups expected: a verify in these tests must be answered from the DNS answers seen. */
const noLookups: NameResolver = () => Promise.reject(new Error('no lookup expected in this test'));

function setup(policy: Policy, over: Partial<FlowJudgeOptions> & { resolver?: NameResolver; now?: () => number } = {}) {
  const port = new RecordingPort();
  const eve = new RecordingEve();
  const cache = new NameAddressCache();
  const verifier = new NameVerifier(cache, { resolver: over.resolver ?? noLookups, timeoutMs: 2000 });
  const judge = new FlowJudge({ policy, port, eve, names: { cache, verifier }, payloadUpcalls: 8, tapPackets: 8, clock: over.now ?? (() => NOW), ...over });
  return { judge, port, eve, cache };
}

/** The ClientHello curl sends for https://<name>/ (recorded on loopback). */
async function curlHello(t: TestContext, name: string): Promise<Uint8Array> {
  const capture = await captureTcp(t, (b) => parseTlsClientHello(b).status !== 'incomplete');
  const [bytes] = await Promise.all([
    capture.firstClient,
    runClient('curl', ['-sk', '--max-time', '5', '--resolve', `${name}:${capture.port}:127.0.0.1`, `https://${name}:${capture.port}/`]),
  ]);
  assert.equal(parseTlsClientHello(bytes).status, 'complete');
  return bytes;
}

async function curlRequest(t: TestContext, name: string): Promise<Uint8Array> {
  const capture = await captureTcp(t, (b) => parseHttpRequest(b).status !== 'incomplete');
  const [bytes] = await Promise.all([
    capture.firstClient,
    runClient('curl', ['-s', '--max-time', '5', '--resolve', `${name}:${capture.port}:127.0.0.1`, `http://${name}:${capture.port}/x`]),
  ]);
  return bytes;
}

async function digQuery(t: TestContext, name: string, type: string): Promise<Uint8Array> {
  const capture = await captureUdp(t, (q) => {
    const r = Uint8Array.from(q);
    r[2] |= 0x80;
    return r;
  });
  const [query] = await Promise.all([capture.firstDatagram, runClient('dig', ['@127.0.0.1', '-p', String(capture.port), name, type, '+tries=1', '+time=2'])]);
  return query;
}

/** dnsmasq's answer to a query (one datagram over loopback). */
async function askDnsmasq(port: number, query: Uint8Array): Promise<Uint8Array> {
  const s = createSocket('udp4');
  try {
    const answer = new Promise<Uint8Array>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('dnsmasq did not answer')), 5000);
      s.once('message', (m) => {
        clearTimeout(timer);
        resolve(new Uint8Array(m));
      });
    });
    s.send(query, port, '127.0.0.1');
    return await answer;
  } finally {
    s.close();
  }
}

test('a policy that needs no payload decides at the first packet: allow, nothing logged but the flow', () => {
  const { judge, port, eve } = setup(policyFrom('default: allow\nrules: []\n'));
  const f = new Flow(6, 443);
  judge.handle([f.syn(1000)]);
  assert.deepEqual(port.of(f.id), ['allow']);
  judge.handle([f.end('allow')]);
  assert.deepEqual(eve.events, [
    {
      timestamp: '2026-01-02T03:04:10.250000+0000',
      flow_id: Number(f.id),
      event_type: 'flow',
      src_ip: CLIENT,
      src_port: 40000,
      dest_ip: SERVER,
      dest_port: 443,
      proto: 'TCP',
      flow: {
        pkts_toserver: 5,
        pkts_toclient: 4,
        bytes_toserver: 900,
        bytes_toclient: 4000,
        start: '2026-01-02T03:04:05.600000+0000',
        end: '2026-01-02T03:04:09.100000+0000',
        age: 4,
        state: 'established',
        reason: 'timeout',
        alerted: false,
        action: 'pass',
      },
    },
  ]);
  assert.deepEqual(judge.verdicts(), [{ action: 'allow', rule: ':default', count: 1 }]);
});

test('default deny at the first packet: drop, an alert "default deny" and a flow event with action drop', () => {
  const { judge, port, eve } = setup(policyFrom('default: deny\nrules: []\n'));
  const f = new Flow(17, 5000);
  judge.handle([f.packet({ first: true, payload: new Uint8Array([1, 2, 3]) })]);
  assert.deepEqual(port.of(f.id), ['drop']);
  const [alert] = eve.ofType('alert');
  assert.deepEqual(alert.alert, { action: 'blocked', gid: 1, signature_id: SETTING_SIGNATURES.default.sid, rev: 1, signature: 'default deny', category: '', severity: 3 });
  assert.equal(alert.app_proto, 'failed');
  judge.handle([f.end('drop', { pktsToClient: 0 })]);
  const [flow] = eve.ofType('flow');
  assert.equal(flow.flow.action, 'drop');
  assert.equal(flow.flow.alerted, true);
  assert.equal(flow.flow.state, 'new');
  assert.deepEqual(judge.verdicts(), [{ action: 'drop', rule: ':default', count: 1 }]);
});

test('TLS by SNI: inspect at the SYN; the hello in two segments, out of order and retransmitted, then allow', async (t) => {
  const hello = await curlHello(t, 'www.example.com');
  const { judge, port, eve } = setup(policyFrom(ALLOWLIST));
  const f = new Flow(6, 443);
  const isn = 0xfffffff0; // the stream crosses the sequence wrap
  judge.handle([f.syn(isn)]);
  assert.deepEqual(port.of(f.id), ['inspect']);
  const cut = 100;
  const second = f.packet({ seq: (isn + 1 + cut) >>> 0, ack: 5000, payload: hello.subarray(cut) });
  const first = f.packet({ seq: (isn + 1) >>> 0, ack: 5000, payload: hello.subarray(0, cut) });
  judge.handle([second]);
  judge.handle([second]); // a retransmission of the gap's far side
  assert.deepEqual(port.of(f.id), ['inspect'], 'no decision on a stream with a gap at its start');
  judge.handle([first]);
  assert.deepEqual(port.of(f.id), ['inspect', 'allow']);
  assert.equal(eve.ofType('alert').length, 0);
  // A later event of the decided flow (the engine sent it before the verdict landed) changes nothing.
  judge.handle([first]);
  assert.deepEqual(port.of(f.id), ['inspect', 'allow']);
  assert.equal(judge.stats().stray, 1);
  judge.handle([f.end('allow')]);
  assert.equal(eve.ofType('flow')[0].app_proto, 'tls');
  assert.deepEqual(judge.verdicts(), [{ action: 'allow', rule: 'web', count: 1 }]);
});

test('reject: resets at the sequence numbers each side expects, a drop, and an alert with the SNI', async (t) => {
  const hello = await curlHello(t, 'bad.example.com');
  const { judge, port, eve } = setup(policyFrom(ALLOWLIST));
  const f = new Flow(6, 443);
  judge.handle([f.syn(7000)]);
  const cut = 60;
  judge.handle([f.packet({ seq: 7001, ack: 90001, payload: hello.subarray(0, cut) })]);
  assert.deepEqual(port.of(f.id), ['inspect']);
  judge.handle([f.packet({ seq: 7001 + cut, ack: 90001, payload: hello.subarray(cut) })]);
  assert.deepEqual(port.of(f.id), ['inspect', 'drop']);
  assert.equal(port.injected.length, 1);
  const [toClient, toServer] = port.injected[0].packets.map(tcpFields);
  const RST_ACK = 0x14;
  assert.deepEqual(toClient, [SERVER, CLIENT, 90001, 7001 + hello.length, RST_ACK]);
  // Both segments were held: the server expects the first byte after the SYN.
  assert.deepEqual(toServer, [CLIENT, SERVER, 7001, 90001, RST_ACK]);
  const [alert] = eve.ofType('alert');
  assert.deepEqual(alert.alert, { action: 'blocked', gid: 1, signature_id: 4242, rev: 1, signature: 'blocked site', category: '', severity: 3 });
  assert.deepEqual(alert.tls, { sni: 'bad.example.com' });
  judge.handle([f.end('drop')]);
  const [flow] = eve.ofType('flow');
  assert.equal(flow.flow.action, 'drop');
  assert.equal(flow.app_proto, 'tls');
});

test('HTTP by Host from a real curl request; an unknown name is dropped with http.hostname in the alert', async (t) => {
  const allowed = await curlRequest(t, 'api.example.com');
  const other = await curlRequest(t, 'www.example.net');
  const { judge, port, eve } = setup(policyFrom(ALLOWLIST));
  const a = new Flow(6, 80);
  const b = new Flow(6, 80, { clientPort: 40001 });
  judge.handle([a.syn(1), b.syn(1)]);
  assert.deepEqual(port.calls, [2], 'one engine call per batch');
  judge.handle([a.packet({ seq: 2, ack: 1, payload: allowed }), b.packet({ seq: 2, ack: 1, payload: other })]);
  assert.deepEqual(port.of(a.id), ['inspect', 'allow']);
  assert.deepEqual(port.of(b.id), ['inspect', 'drop']);
  const [alert] = eve.ofType('alert');
  assert.equal(alert.src_port, 40001);
  assert.deepEqual(alert.http, { hostname: 'www.example.net' });
  assert.equal(alert.alert.signature, 'default deny');
});

test('UDP DNS from dig: decided at the first packet; an alert rule lets it through and logs dns{rrname, rrtype}', async (t) => {
  const watched = await digQuery(t, 'Watch.Example.org', 'AAAA');
  const fine = await digQuery(t, 'www.example.com', 'A');
  const { judge, port, eve } = setup(policyFrom(ALLOWLIST));
  const a = new Flow(17, 53);
  const b = new Flow(17, 53, { clientPort: 40002 });
  judge.handle([a.packet({ first: true, payload: watched }), b.packet({ first: true, payload: fine })]);
  assert.deepEqual(port.of(a.id), ['allow']);
  assert.deepEqual(port.of(b.id), ['allow'], 'no tap: the policy has no verify_dns');
  const alerts = eve.ofType('alert');
  assert.equal(alerts.length, 1);
  assert.deepEqual(alerts[0].alert.action, 'allowed');
  assert.equal(alerts[0].alert.signature, 'watched name');
  assert.deepEqual(alerts[0].dns, { rrname: 'watch.example.org', rrtype: 'AAAA' });
  assert.equal(alerts[0].app_proto, 'dns');
  judge.handle([a.end('allow')]);
  const [flow] = eve.ofType('flow');
  assert.equal(flow.flow.alerted, true);
  assert.equal(flow.flow.action, undefined, 'an alert verdict is no pass or drop of the whole flow');
  assert.deepEqual(
    judge.verdicts().sort((x, y) => x.rule.localeCompare(y.rule)),
    [
      { action: 'allow', rule: 'dns', count: 1 },
      { action: 'alert', rule: 'dns-watch', count: 1 },
    ],
  );
});

test('the server speaking first decides at once on what the client showed (nothing): the default', () => {
  const { judge, port } = setup(policyFrom(ALLOWLIST));
  const f = new Flow(6, 443);
  judge.handle([f.syn(10)]);
  judge.handle([f.packet({ fromClient: false, seq: 500, ack: 11, payload: Buffer.from('SSH-2.0-OpenSSH_9.2\r\n') })]);
  assert.deepEqual(port.of(f.id), ['inspect', 'drop']);
});

test('an incomplete hello when the engine will send no more: tls_unparsable decides', async (t) => {
  const hello = await curlHello(t, 'www.example.com');
  const { judge, port, eve } = setup(policyFrom(ALLOWLIST), { payloadUpcalls: 3 });
  const f = new Flow(6, 443);
  judge.handle([f.syn(0)]);
  for (let i = 0; i < 2; i++) judge.handle([f.packet({ seq: 1, ack: 1, payload: hello.subarray(0, 50) })]);
  assert.deepEqual(port.of(f.id), ['inspect']);
  judge.handle([f.packet({ seq: 1, ack: 1, payload: hello.subarray(0, 50) })]);
  assert.deepEqual(port.of(f.id), ['inspect', 'drop']);
  const [alert] = eve.ofType('alert');
  assert.equal(alert.alert.signature_id, SETTING_SIGNATURES['tls-unparsable'].sid);
  assert.deepEqual(judge.verdicts(), [{ action: 'drop', rule: ':tls-unparsable', count: 1 }]);
});

test('a stalled partial payload is decided by sweep(); a flow that showed nothing yet keeps waiting', async (t) => {
  const hello = await curlHello(t, 'www.example.com');
  let now = NOW;
  const { judge, port } = setup(policyFrom(ALLOWLIST), { now: () => now });
  const partial = new Flow(6, 443);
  const quiet = new Flow(6, 443, { clientPort: 40003 });
  judge.handle([partial.syn(0), quiet.syn(0)]);
  judge.handle([partial.packet({ seq: 1, ack: 1, payload: hello.subarray(0, 20) })]);
  judge.sweep();
  assert.deepEqual(port.of(partial.id), ['inspect']);
  now += PAYLOAD_STALL_MS;
  judge.sweep();
  assert.deepEqual(port.of(partial.id), ['inspect', 'drop']);
  assert.deepEqual(port.of(quiet.id), ['inspect']);
  assert.equal(judge.stats().stalled, 1);
  assert.equal(judge.stats().inspecting, 1);
});

test('midstream: drop decides at the first packet; inspect judges what the flow shows', () => {
  const drop = setup(policyFrom('default: allow\nmidstream: drop\nrules: []\n'));
  const f = new Flow(6, 443, { midstream: true });
  drop.judge.handle([f.packet({ first: true, flags: ACK, seq: 5, ack: 6 })]);
  assert.deepEqual(drop.port.of(f.id), ['drop']);
  assert.equal(drop.eve.ofType('alert')[0].alert.signature_id, SETTING_SIGNATURES.midstream.sid);

  const inspect = setup(policyFrom(ALLOWLIST));
  const g = new Flow(6, 443, { midstream: true });
  // TLS application data, not a hello: the flow shows no name.
  const appData = Uint8Array.from([0x17, 0x03, 0x03, 0x00, 0x04, 1, 2, 3, 4]);
  inspect.judge.handle([g.packet({ first: true, seq: 99, ack: 77, payload: appData })]);
  assert.deepEqual(inspect.port.of(g.id), ['drop']);
  assert.deepEqual(inspect.judge.verdicts(), [{ action: 'drop', rule: ':default', count: 1 }]);
});

test('verify_dns: answers tapped off an allowed DNS flow let the name through to its address; elsewhere is a mismatch', async (t) => {
  const dnsmasq = await startDnsmasq({ 'www.example.com': '203.0.113.10' }, 300);
  t.after(() => dnsmasq.stop());
  const resolver = new Resolver({ timeout: 1000, tries: 1 });
  resolver.setServers([`127.0.0.1:${dnsmasq.port}`]);
  const query = dnsQuery(0x4242, 'www.example.com', 1);
  const answer = await askDnsmasq(dnsmasq.port, query);
  const hello = await curlHello(t, 'www.example.com');

  const { judge, port, eve } = setup(policyFrom(VERIFY), { resolver: dnsResolver(resolver) });
  const dns = new Flow(17, 53);
  judge.handle([dns.packet({ first: true, payload: query })]);
  assert.deepEqual(port.of(dns.id), ['allow+tap']);
  judge.handle([dns.packet({ tap: true, fromClient: false, payload: answer })]);
  assert.equal(judge.stats().dnsRecordsLearned, 1);

  const good = new Flow(6, 443);
  const bad = new Flow(6, 443, { server: '203.0.113.99' });
  judge.handle([good.syn(0), bad.syn(0)]);
  judge.handle([good.packet({ seq: 1, ack: 1, payload: hello }), bad.packet({ seq: 1, ack: 1, payload: hello })]);
  // Both wait for their verification; the engine keeps holding them.
  assert.deepEqual(port.of(good.id), ['inspect']);
  await judge.settled();
  assert.deepEqual(port.of(good.id), ['inspect', 'allow']);
  assert.deepEqual(port.of(bad.id), ['inspect', 'drop']);
  assert.equal(port.injected.length, 1, 'on_mismatch: reject');
  assert.equal(port.injected[0].flow, bad.id);
  const [alert] = eve.ofType('alert');
  assert.equal(alert.dest_ip, '203.0.113.99');
  assert.equal(alert.alert.signature, 'name/address mismatch: www.example.com does not resolve to 203.0.113.99');
  assert.equal(alert.alert.action, 'blocked');
  assert.deepEqual(judge.stats().mismatches, 1);
  assert.deepEqual(
    judge.verdicts().sort((x, y) => x.action.localeCompare(y.action)),
    [
      { action: 'allow', rule: 'dns', count: 1 },
      { action: 'allow', rule: 'web', count: 1 },
      { action: 'reject', rule: 'web', count: 1 },
    ],
  );
});

test('verify_dns: a name that resolves nowhere is unresolved and gets on_mismatch; a flow ended meanwhile gets nothing', async (t) => {
  const dnsmasq = await startDnsmasq({ 'www.example.com': '203.0.113.10' }, 300);
  t.after(() => dnsmasq.stop());
  const resolver = new Resolver({ timeout: 1000, tries: 1 });
  resolver.setServers([`127.0.0.1:${dnsmasq.port}`]);
  const hello = await curlHello(t, 'nowhere.example.com');
  const { judge, port, eve } = setup(policyFrom(VERIFY), { resolver: dnsResolver(resolver) });
  const f = new Flow(6, 443);
  const gone = new Flow(6, 443, { clientPort: 40009 });
  judge.handle([f.syn(0), gone.syn(0)]);
  judge.handle([f.packet({ seq: 1, ack: 1, payload: hello }), gone.packet({ seq: 1, ack: 1, payload: hello })]);
  assert.equal(judge.stats().verifying, 2);
  judge.handle([gone.end('inspect')]);
  await judge.settled();
  assert.deepEqual(port.of(f.id), ['inspect', 'drop']);
  assert.deepEqual(port.of(gone.id), ['inspect']);
  assert.equal(judge.stats().unresolved, 1);
  assert.equal(eve.ofType('alert').length, 1);
  assert.equal(eve.ofType('alert')[0].alert.signature, `name/address mismatch: nowhere.example.com does not resolve to ${SERVER}`);
  const [flow] = eve.ofType('flow');
  assert.equal(flow.flow.action, undefined, 'a flow that ended before its verdict has none');
});

test('reload: new decisions use the new policy; flows already decided get no new verdict', async (t) => {
  const hello = await curlHello(t, 'www.example.com');
  const { judge, port } = setup(policyFrom(ALLOWLIST));
  const decided = new Flow(17, 53);
  judge.handle([decided.packet({ first: true, payload: dnsQuery(1, 'www.example.com', 1) })]);
  const waiting = new Flow(6, 443);
  judge.handle([waiting.syn(0)]);
  judge.setPolicy(policyFrom('default: deny\nrules: []\n'));
  judge.handle([waiting.packet({ seq: 1, ack: 1, payload: hello })]);
  assert.deepEqual(port.of(waiting.id), ['inspect', 'drop']);
  assert.deepEqual(port.of(decided.id), ['allow']);
  judge.handle([decided.packet({ payload: dnsQuery(2, 'evil.example.net', 1) })]);
  assert.deepEqual(port.of(decided.id), ['allow']);
});

test('fail closed: an event the judge cannot finish drops its flow, and only that flow', () => {
  const port = new RecordingPort();
  const cache = new NameAddressCache();
  let throwOnAlert = true;
  const judge = new FlowJudge({
    policy: policyFrom('default: deny\nrules:\n  - {id: ok, action: allow, protocol: udp}\n'),
    port,
    eve: {
      write: (e) => {
        if (throwOnAlert && e.event_type === 'alert') throw new Error('disk on fire');
      },
    },
    names: { cache, verifier: new NameVerifier(cache, { resolver: noLookups }) },
    payloadUpcalls: 8,
    tapPackets: 8,
  });
  const ok = new Flow(17, 9);
  const bad = new Flow(6, 9);
  judge.handle([ok.packet({ first: true, payload: new Uint8Array(4) }), bad.syn(1)]);
  assert.deepEqual(port.of(ok.id), ['allow']);
  assert.deepEqual(port.of(bad.id), ['drop']);
  assert.equal(judge.stats().errors, 1);
  throwOnAlert = false;
});

test('flow-end forgets the flow: later events for it are strays, and undecided flows log no action', () => {
  const { judge, port, eve } = setup(policyFrom(ALLOWLIST));
  const f = new Flow(6, 443);
  judge.handle([f.syn(SYN), f.end('inspect', { pktsToServer: 1, pktsToClient: 1, reason: 'shutdown' })]);
  judge.handle([f.packet({ seq: 1, ack: 1, payload: new Uint8Array([0x16]) })]);
  assert.deepEqual(port.of(f.id), ['inspect']);
  assert.equal(judge.stats().stray, 1);
  assert.equal(judge.stats().inspecting, 0);
  const [flow] = eve.ofType('flow');
  assert.equal(flow.flow.reason, 'shutdown');
  assert.equal(flow.flow.action, undefined);
  assert.equal(flow.flow.alerted, false);
});
