/**
 * DNS messages from real programs: queries from dig (UDP and TCP) recorded by
 * loopback servers, and answers from a real dnsmasq on loopback.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { parseDnsMessage, parseDnsTcpStream, type DnsMessageResult } from '../../../src/inspect/parse';
import { captureTcp, captureUdp, runClient } from './capture';
import { dnsQuery, tcpFramed } from './fixtures';
import { startDnsmasq } from '../names/dnsmasq';

/** The query sent back with QR set: a valid empty answer, so dig returns at once. */
function echoAsResponse(query: Uint8Array): Uint8Array {
  const reply = Uint8Array.from(query);
  if (reply.length >= 3) reply[2] |= 0x80;
  return reply;
}

function complete(r: DnsMessageResult | undefined): Extract<DnsMessageResult, { status: 'complete' }> {
  assert.ok(r && r.status === 'complete', JSON.stringify(r));
  return r;
}

test('dig over UDP: the question name and type', async (t) => {
  const capture = await captureUdp(t, echoAsResponse);
  const [query, run] = await Promise.all([
    capture.firstDatagram,
    runClient('dig', ['@127.0.0.1', '-p', String(capture.port), 'WWW.Example.com', 'AAAA', '+tries=1', '+time=2']),
  ]);
  assert.equal(run.code, 0, run.stderr);
  const m = complete(parseDnsMessage(query));
  assert.equal(m.response, false);
  assert.deepEqual(m.questions, [{ name: 'www.example.com', type: 28 }]);
});

test('dig +tcp: the length-prefixed query', async (t) => {
  const capture = await captureTcp(
    t,
    (b) => parseDnsTcpStream(b).messages.length > 0,
    (b) => tcpFramed(echoAsResponse(b.subarray(2))),
  );
  const [stream] = await Promise.all([
    capture.firstClient,
    runClient('dig', ['+tcp', '@127.0.0.1', '-p', String(capture.port), 'tcp.example.org', 'TXT', '+tries=1', '+time=2']),
  ]);
  const r = parseDnsTcpStream(stream);
  assert.equal(r.incomplete, false);
  assert.equal(r.messages.length, 1);
  assert.deepEqual(complete(r.messages[0]).questions, [{ name: 'tcp.example.org', type: 16 }]);
});

/** Sends one query to 127.0.0.1:port and resolves with the reply, or null after timeoutMs. */
function ask(port: number, query: Uint8Array, timeoutMs: number): Promise<Uint8Array | null> {
  return new Promise((resolve) => {
    const s = createSocket('udp4');
    const done = (reply: Uint8Array | null): void => {
      clearTimeout(timer);
      s.close();
      resolve(reply);
    };
    const timer = setTimeout(() => done(null), timeoutMs);
    s.on('message', (msg) => done(new Uint8Array(msg)));
    s.on('error', () => done(null));
    s.send(query, port, '127.0.0.1');
  });
}

/** dnsmasq on a loopback port with local answers only (test/inspect/names/dnsmasq.ts); stopped in t.after. */
async function startLocalDnsmasq(t: TestContext): Promise<number> {
  const dnsmasq = await startDnsmasq({ 'www.example.com': '203.0.113.10' }, 0, [
    // dnsmasq only follows a CNAME to a name it holds as a record, not to an --address rule.
    '--host-record=target.example.com,203.0.113.20,2001:db8::20',
    '--cname=alias.example.com,target.example.com',
  ]);
  t.after(() => dnsmasq.stop());
  return dnsmasq.port;
}

test('dnsmasq answers: A record, and a CNAME chain with A and AAAA', async (t) => {
  const port = await startLocalDnsmasq(t);

  const a = complete(parseDnsMessage((await ask(port, dnsQuery(0x1234, 'www.example.com', 1), 2000)) ?? new Uint8Array(0)));
  assert.deepEqual([a.id, a.response, a.rcode], [0x1234, true, 0]);
  assert.deepEqual(a.questions, [{ name: 'www.example.com', type: 1 }]);
  assert.deepEqual(
    a.answers.map(({ name, type, address }) => ({ name, type, address })),
    [{ name: 'www.example.com', type: 1, address: '203.0.113.10' }],
  );

  const chain = complete(parseDnsMessage((await ask(port, dnsQuery(0x4321, 'alias.example.com', 1), 2000)) ?? new Uint8Array(0)));
  assert.deepEqual(
    chain.answers.map(({ name, type, address, target }) => ({ name, type, address, target })),
    [
      { name: 'alias.example.com', type: 5, address: undefined, target: 'target.example.com' },
      { name: 'target.example.com', type: 1, address: '203.0.113.20', target: undefined },
    ],
  );

  const v6 = complete(parseDnsMessage((await ask(port, dnsQuery(0x5555, 'ALIAS.Example.com', 28), 2000)) ?? new Uint8Array(0)));
  assert.deepEqual(
    v6.answers.map((r) => r.address ?? r.target),
    ['target.example.com', '2001:db8::20'],
  );
});
