/**
 * The upstream side of `gatehouse ingress`: TLS per route (verified against
 * a route's CA file, or refused with 502 when the system CAs do not know
 * the certificate), SNI set to the upstream's name, and keep-alive (several
 * requests, one upstream connection).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { RecordingUpstream, json, send, startIngress, tempDir } from './harness';

const NAME = 'secure-upstream.example.test';

test('TLS to the upstream: verified against the route CA file with SNI; unknown to the system CAs: 502', async (t) => {
  const dir = tempDir(t);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', join(dir, 'up.key'), '-out', join(dir, 'up.crt'), '-days', '1', '-subj', `/CN=${NAME}`, '-addext', `subjectAltName=DNS:${NAME}`], { stdio: 'ignore' });
  const servernames: string[] = [];
  const server = createServer({ cert: readFileSync(join(dir, 'up.crt')), key: readFileSync(join(dir, 'up.key')) }, (req, res) => {
    servernames.push(String((req.socket as TLSSocket).servername));
    req.resume();
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ host: req.headers.host }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    server.closeAllConnections();
    server.close();
  });
  const port = (server.address() as AddressInfo).port;
  const ingress = await startIngress(t, {
    dir,
    hosts: [NAME],
    routes: `routes:
  - host: trusted.example.test
    upstream: { url: https://${NAME}:${port} }
    sign: false
    tls: { ca_file: up.crt }
  - host: untrusted.example.test
    upstream: { url: https://${NAME}:${port} }
    sign: false
`,
  });
  const ok = await send({ port: ingress.port, host: 'trusted.example.test', path: '/' });
  assert.equal(ok.status, 200, ok.body.toString());
  assert.equal(json(ok).host, `${NAME}:${port}`);
  assert.deepEqual(servernames, [NAME]);
  const refused = await send({ port: ingress.port, host: 'untrusted.example.test', path: '/' });
  assert.equal(refused.status, 502);
  assert.equal(json(refused).error, 'bad-gateway');
  assert.match(String(json(refused).reason), /self[- ]signed certificate/);
  assert.equal(servernames.length, 1);
});

test('keep-alive upstream: several requests from several clients share one upstream connection, also after large answers', async (t) => {
  const up = await RecordingUpstream.start(t);
  let connections = 0;
  up.server.on('connection', () => connections++);
  const ingress = await startIngress(t, { routes: `routes:\n  - host: ka.example.test\n    upstream: { url: http://127.0.0.1:${up.port} }\n    sign: false\n` });
  for (let i = 0; i < 5; i++) assert.equal((await send({ port: ingress.port, host: 'ka.example.test', path: `/${i}` })).status, 200);
  assert.equal(up.requests.length, 5);
  // 4 MiB answers fill the client socket (back-pressure pauses the upstream connection); the pooled connection must still serve the next request.
  for (let i = 0; i < 4; i++) {
    const big = await send({ port: ingress.port, host: 'ka.example.test', path: '/download?blocks=64' });
    assert.equal(big.status, 200);
    assert.equal(big.bodyBytes, 64 * 64 * 1024);
    assert.equal((await send({ port: ingress.port, host: 'ka.example.test', path: `/after-${i}` })).status, 200);
  }
  assert.equal(connections, 1);
});
