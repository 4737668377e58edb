/**
 * ClientHellos from real TLS clients (curl, openssl s_client) sent to a
 * loopback server that records them and hangs up.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { parseTlsClientHello, type TlsHelloResult } from '../../../src/inspect/parse';
import { captureTcp, runClient } from './capture';

/** Records the hello a client sends, stopping once the parser no longer wants more. */
async function helloFrom(
  t: TestContext,
  client: (port: number) => [string, string[]],
): Promise<{ hello: TlsHelloResult; bytes: Uint8Array }> {
  const capture = await captureTcp(t, (b) => parseTlsClientHello(b).status !== 'incomplete');
  const [cmd, args] = client(capture.port);
  const [bytes] = await Promise.all([capture.firstClient, runClient(cmd, args)]);
  return { hello: parseTlsClientHello(bytes), bytes };
}

function complete(r: TlsHelloResult): Extract<TlsHelloResult, { status: 'complete' }> {
  assert.equal(r.status, 'complete', JSON.stringify(r));
  return r as Extract<TlsHelloResult, { status: 'complete' }>;
}

test('curl: SNI from --resolve, ALPN offers h2 or http/1.1, TLS 1.3 offered', async (t) => {
  const { hello, bytes } = await helloFrom(t, (port) => [
    'curl',
    ['-sk', '--max-time', '5', '--resolve', `www.example.com:${port}:127.0.0.1`, `https://www.example.com:${port}/`],
  ]);
  const h = complete(hello);
  assert.equal(h.sni, 'www.example.com');
  assert.equal(h.ech, 'none');
  assert.ok(h.alpn.includes('h2') || h.alpn.includes('http/1.1'), JSON.stringify(h.alpn));
  assert.equal(h.tlsVersion, 0x0303);
  assert.ok(h.supportedVersions.includes(0x0304), JSON.stringify(h.supportedVersions));
  // However TCP cuts it, a prefix of the real hello is incomplete.
  for (let cut = 0; cut < bytes.length; cut++) assert.equal(parseTlsClientHello(bytes.subarray(0, cut)).status, 'incomplete');
});

test('openssl s_client -servername: that SNI', async (t) => {
  const { hello } = await helloFrom(t, (port) => [
    'timeout',
    ['5', 'openssl', 's_client', '-connect', `127.0.0.1:${port}`, '-servername', 'api.allowed.test'],
  ]);
  assert.equal(complete(hello).sni, 'api.allowed.test');
});

test('openssl s_client to an IP address: no SNI', async (t) => {
  const { hello } = await helloFrom(t, (port) => ['timeout', ['5', 'openssl', 's_client', '-connect', `127.0.0.1:${port}`]]);
  const h = complete(hello);
  assert.equal(h.sni, null);
  assert.equal(h.ech, 'none');
});

test('openssl s_client with 64-byte records: a real fragmented hello gives the same SNI and ALPN', async (t) => {
  const { hello, bytes } = await helloFrom(t, (port) => [
    'timeout',
    [
      ...['5', 'openssl', 's_client', '-connect', `127.0.0.1:${port}`, '-servername', 'frag.allowed.test'],
      ...['-alpn', 'h2,http/1.1', '-max_send_frag', '512', '-split_send_frag', '64'],
    ],
  ]);
  const h = complete(hello);
  assert.equal(h.sni, 'frag.allowed.test');
  assert.deepEqual(h.alpn, ['h2', 'http/1.1']);
  // Count the records to know the client really fragmented.
  let records = 0;
  for (let p = 0; p + 5 <= bytes.length; p += 5 + ((bytes[p + 3] << 8) | bytes[p + 4])) records++;
  assert.ok(records >= 2, `hello carried in ${records} record(s)`);
});
