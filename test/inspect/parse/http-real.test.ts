/**
 * Request heads from real curl runs, recorded by a loopback server that
 * answers with a minimal response.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { parseHttpRequest, type HttpRequestResult } from '../../../src/inspect/parse';
import { captureTcp, runClient } from './capture';

const OK_RESPONSE = new Uint8Array(Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok'));

async function requestFrom(t: TestContext, curlArgs: (port: number) => string[]): Promise<HttpRequestResult> {
  const capture = await captureTcp(t, (b) => parseHttpRequest(b).status !== 'incomplete', () => OK_RESPONSE);
  const curl = runClient('curl', ['-s', '--max-time', '5', ...curlArgs(capture.port)]);
  const [bytes, run] = await Promise.all([capture.firstClient, curl]);
  assert.equal(run.code, 0, run.stderr); // the client got our answer: the head we read is the one it meant
  return parseHttpRequest(bytes);
}

test('curl origin-form request: host from the Host header', async (t) => {
  const r = await requestFrom(t, (port) => [
    '--resolve',
    `www.example.com:${port}:127.0.0.1`,
    `http://WWW.Example.com:${port}/path?q=1`,
  ]);
  assert.deepEqual(r, { status: 'complete', method: 'GET', target: '/path?q=1', version: 'HTTP/1.1', host: 'www.example.com' });
});

test('curl through a proxy (-x): absolute-form target', async (t) => {
  const r = await requestFrom(t, (port) => ['-x', `http://127.0.0.1:${port}`, 'http://proxied.example.org/a']);
  assert.deepEqual(r, {
    status: 'complete',
    method: 'GET',
    target: 'http://proxied.example.org/a',
    version: 'HTTP/1.1',
    host: 'proxied.example.org',
  });
});

test('curl POST with an IPv6 Host header', async (t) => {
  const r = await requestFrom(t, (port) => ['-d', 'x=1', '-H', 'Host: [2001:db8::5]:8080', `http://127.0.0.1:${port}/form`]);
  assert.deepEqual(r, { status: 'complete', method: 'POST', target: '/form', version: 'HTTP/1.1', host: '2001:db8::5' });
});

test('curl HTTP/1.0 with the Host header removed: host null', async (t) => {
  const r = await requestFrom(t, (port) => ['--http1.0', '-H', 'Host:', `http://127.0.0.1:${port}/`]);
  assert.deepEqual(r, { status: 'complete', method: 'GET', target: '/', version: 'HTTP/1.0', host: null });
});
