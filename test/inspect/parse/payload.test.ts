import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { classifyPayload, type PayloadFacts } from '../../../src/inspect/parse';
import { clientHello, concat, dnsQuery, ext, records, tcpFramed } from './fixtures';

const text = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'latin1'));
const hello = records(clientHello({ extensions: [ext.serverName('www.example.com')] }));
const request = text('GET / HTTP/1.1\r\nHost: www.example.com\r\n\r\n');
const query = dnsQuery(5, 'www.example.com', 1);

/** app plus the status (or statuses) of what it parsed, for compact comparisons. */
function summary(f: PayloadFacts): string {
  switch (f.app) {
    case 'tls':
      return `tls:${f.hello.status}:${f.incomplete}`;
    case 'http':
      return `http:${f.request.status}:${f.incomplete}`;
    case 'dns':
      return `dns/${f.transport}:${f.messages.map((m) => m.status).join(',')}:${f.incomplete}`;
    default:
      return `unknown:${f.incomplete}`;
  }
}

const cases: [string, 'tcp' | 'udp', number, Uint8Array, string][] = [
  ['TLS on 443', 'tcp', 443, hello, 'tls:complete:false'],
  ['TLS on any port (content first)', 'tcp', 53, hello, 'tls:complete:false'],
  ['half a hello', 'tcp', 443, hello.subarray(0, 20), 'tls:incomplete:true'],
  ['a lone 0x16', 'tcp', 443, hello.subarray(0, 1), 'tls:incomplete:true'],
  ['HTTP on 80', 'tcp', 80, request, 'http:complete:false'],
  ['HTTP on 443', 'tcp', 443, request, 'http:complete:false'],
  ['the start of a method', 'tcp', 8080, text('GE'), 'http:incomplete:true'],
  ['malformed HTTP', 'tcp', 80, text('GET / HTTP/1.1\nHost: a\n\n'), 'http:malformed:false'],
  ['DNS over TCP', 'tcp', 53, tcpFramed(query), 'dns/tcp:complete:false'],
  ['half a DNS-over-TCP message', 'tcp', 53, tcpFramed(query).subarray(0, 9), 'dns/tcp::true'],
  ['DNS over UDP', 'udp', 53, query, 'dns/udp:complete:false'],
  ['garbage over UDP 53', 'udp', 53, Uint8Array.of(1, 2, 3), 'dns/udp:malformed:false'],
  ['UDP elsewhere', 'udp', 443, query, 'unknown:false'],
  ['nothing yet over TCP', 'tcp', 443, new Uint8Array(0), 'unknown:true'],
  ['SSH', 'tcp', 22, text('SSH-2.0-OpenSSH_9.2\r\n'), 'unknown:false'],
  ['binary on 443', 'tcp', 443, Uint8Array.of(0, 1, 2, 3), 'unknown:false'],
];

for (const [what, protocol, port, bytes, expected] of cases) {
  test(`classify: ${what}`, () => {
    assert.equal(summary(classifyPayload(protocol, port, bytes)), expected);
  });
}

test('classify passes the parsed facts through', () => {
  const tls = classifyPayload('tcp', 443, hello);
  assert.equal(tls.app === 'tls' && tls.hello.status === 'complete' && tls.hello.sni, 'www.example.com');
  const http = classifyPayload('tcp', 80, request);
  assert.equal(http.app === 'http' && http.request.status === 'complete' && http.request.host, 'www.example.com');
  const dns = classifyPayload('tcp', 53, concat([tcpFramed(query), tcpFramed(dnsQuery(6, 'b.example', 28))]));
  assert.deepEqual(
    dns.app === 'dns' && dns.messages.map((m) => m.status === 'complete' && m.questions[0].name),
    ['www.example.com', 'b.example'],
  );
});

test('property: random bytes on any protocol and port never throw; incomplete only while a parser waits', () => {
  const protocols = fc.constantFrom<'tcp' | 'udp'>('tcp', 'udp');
  const ports = fc.constantFrom(53, 80, 443, 8080);
  fc.assert(
    fc.property(protocols, ports, fc.uint8Array({ maxLength: 200 }), (protocol, port, b) => {
      const f = classifyPayload(protocol, port, b);
      assert.ok(['tls', 'http', 'dns', 'unknown'].includes(f.app));
      if (f.app === 'tls') assert.equal(f.incomplete, f.hello.status === 'incomplete');
      if (f.app === 'http') assert.equal(f.incomplete, f.request.status === 'incomplete');
      if (protocol === 'udp') assert.equal(f.incomplete, false);
    }),
    { numRuns: 3000 },
  );
});
