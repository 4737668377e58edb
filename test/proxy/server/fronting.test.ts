import { test } from 'node:test';
import assert from 'node:assert/strict';
import { judgeTunnelStart, type FrontingContext } from '../../../src/proxy/server/fronting';
import { captureClientHello } from './helpers';

function ctx(over: Partial<FrontingContext> = {}): FrontingContext {
  return { host: 'allowed.test', hostIsIp: false, nonTls: 'deny', sniAllowed: (sni) => sni === 'other-allowed.test', ...over };
}

test('fronting verdicts on real ClientHellos', async () => {
  const matching = await captureClientHello('Allowed.Test');
  const other = await captureClientHello('other-allowed.test');
  const denied = await captureClientHello('denied.test');
  const none = await captureClientHello(null);

  assert.deepEqual(judgeTunnelStart(matching, ctx()), { verdict: 'allow', why: 'sni-matches', sni: 'allowed.test' });
  assert.deepEqual(judgeTunnelStart(other, ctx()), { verdict: 'allow', why: 'sni-allowed', sni: 'other-allowed.test' });
  assert.deepEqual(judgeTunnelStart(denied, ctx()), { verdict: 'deny', why: 'sni-mismatch', sni: 'denied.test' });
  assert.deepEqual(judgeTunnelStart(none, ctx()), { verdict: 'deny', why: 'no-sni', sni: null });
  assert.deepEqual(judgeTunnelStart(none, ctx({ host: '192.0.2.1', hostIsIp: true })), { verdict: 'allow', why: 'ip-without-sni', sni: null });
  // An IP CONNECT with a name in the hello: the name must pass the policy.
  assert.deepEqual(judgeTunnelStart(denied, ctx({ host: '192.0.2.1', hostIsIp: true })), { verdict: 'deny', why: 'sni-mismatch', sni: 'denied.test' });

  // Every cut of a hello is 'wait' until the last byte.
  for (let cut = 1; cut < denied.length; cut += 7) assert.deepEqual(judgeTunnelStart(denied.subarray(0, cut), ctx()), { verdict: 'wait' }, `cut ${cut}`);
});

test('non-TLS first bytes follow fronting.nonTls; broken TLS is refused', () => {
  const get = Buffer.from('GET / HTTP/1.1\r\nHost: denied.test\r\n\r\n');
  assert.deepEqual(judgeTunnelStart(get, ctx()), { verdict: 'deny', why: 'not-tls', sni: null });
  assert.deepEqual(judgeTunnelStart(get, ctx({ nonTls: 'allow' })), { verdict: 'allow', why: 'not-tls', sni: null });
  // A handshake record that holds something other than a ClientHello.
  const notHello = Buffer.from([0x16, 0x03, 0x01, 0x00, 0x04, 0x02, 0x00, 0x00, 0x00]);
  assert.deepEqual(judgeTunnelStart(notHello, ctx({ nonTls: 'allow' })), { verdict: 'deny', why: 'malformed-tls', sni: null });
});
