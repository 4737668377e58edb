/**
 * The listener and operations of `gatehouse ingress`: HTTPS with a
 * certificate reloaded on SIGHUP (the served certificate changes; a bad one
 * is refused), PROXY protocol v2 giving the client address, routes
 * reloaded on SIGHUP (a bad file refused, the old table kept), the combined
 * access log, and the SIGTERM drain (a request in flight finishes; one past
 * the deadline is cut).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { Duplex } from 'node:stream';
import { join } from 'node:path';
import * as tls from 'node:tls';
import { RecordingUpstream, eventually, send, startIngress, tempDir } from './harness';

function selfSigned(dir: string, name: string): { cert: string; key: string; fingerprint: string } {
  const cert = join(dir, `${name}.crt`);
  const key = join(dir, `${name}.key`);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=ingress.example.test', '-addext', 'subjectAltName=DNS:ingress.example.test'], { stdio: 'ignore' });
  const fingerprint = new X509Certificate(readFileSync(cert)).fingerprint256;
  return { cert, key, fingerprint };
}

/** The SHA-256 fingerprint of the certificate the listener serves now. */
function servedFingerprint(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, servername: 'ingress.example.test', rejectUnauthorized: false }, () => {
      const fp = socket.getPeerCertificate().fingerprint256;
      socket.destroy();
      resolve(fp);
    });
    socket.on('error', reject);
  });
}

function curl(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('curl', ['-sS', '--max-time', '10', ...args], (err, stdout, stderr) => (err ? reject(new Error(`curl: ${stderr || err.message}`)) : resolve(stdout)));
  });
}

test('HTTPS listener: curl verifies the certificate; SIGHUP serves a new one and refuses a broken one', async (t) => {
  const dir = tempDir(t);
  const up = await RecordingUpstream.start(t);
  const first = selfSigned(dir, 'first');
  const second = selfSigned(dir, 'second');
  const live = { cert: join(dir, 'live.crt'), key: join(dir, 'live.key') };
  copyFileSync(first.cert, live.cert);
  copyFileSync(first.key, live.key);
  const ingress = await startIngress(t, {
    dir,
    routes: `routes:\n  - host: ingress.example.test\n    upstream: { url: http://127.0.0.1:${up.port} }\n    sign: false\n`,
    args: ['--tls-cert', live.cert, '--tls-key', live.key],
  });
  const url = `https://ingress.example.test:${ingress.port}/secure?x=1`;
  const resolveArg = `ingress.example.test:${ingress.port}:127.0.0.1`;
  const body = JSON.parse(await curl(['--cacert', first.cert, '--resolve', resolveArg, url])) as { headers: Record<string, string> };
  assert.equal(body.headers['x-forwarded-proto'], 'https');
  assert.equal(await servedFingerprint(ingress.port), first.fingerprint);

  copyFileSync(second.cert, live.cert);
  copyFileSync(second.key, live.key);
  const mark = ingress.events.length;
  ingress.signal('SIGHUP');
  await ingress.waitEvent('TLS certificate loaded', mark);
  assert.equal(await servedFingerprint(ingress.port), second.fingerprint);
  await curl(['--cacert', second.cert, '--resolve', resolveArg, url]);

  writeFileSync(live.key, 'not a key\n');
  const mark2 = ingress.events.length;
  ingress.signal('SIGHUP');
  await ingress.waitEvent('TLS certificate refused; the running one stays', mark2);
  assert.equal(await servedFingerprint(ingress.port), second.fingerprint);
  const entry = await ingress.waitAccess((e) => e.tls === true);
  assert.equal(entry.status, 200);
});

test('PROXY protocol v2: the client address comes from the header, into X-Forwarded-For and the access log', async (t) => {
  const up = await RecordingUpstream.start(t);
  const ingress = await startIngress(t, {
    routes: `routes:\n  - host: pp.example.test\n    upstream: { url: http://127.0.0.1:${up.port} }\n    sign: false\n`,
    args: ['--proxy-protocol'],
  });
  // v2, PROXY command, TCP over IPv4: 203.0.113.9:4242 -> 198.51.100.1:443.
  const header = Buffer.concat([
    Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a, 0x21, 0x11, 0x00, 0x0c]),
    Buffer.from([203, 0, 113, 9, 198, 51, 100, 1, 0x10, 0x92, 0x01, 0xbb]),
  ]);
  const socket = netConnect({ host: '127.0.0.1', port: ingress.port });
  t.after(() => socket.destroy());
  let reply = '';
  socket.on('data', (d: Buffer) => (reply += d.toString('latin1')));
  await new Promise<void>((resolve) => socket.once('connect', resolve));
  // Header and request in one write: the parser must hand the rest on to HTTP intact.
  socket.write(Buffer.concat([header, Buffer.from('GET /who HTTP/1.1\r\nHost: pp.example.test\r\nConnection: close\r\n\r\n', 'latin1')]));
  await new Promise<void>((resolve) => socket.once('close', resolve));
  assert.match(reply, /^HTTP\/1\.1 200 OK\r\n/);
  const seen = JSON.parse(reply.slice(reply.indexOf('\r\n\r\n') + 4)) as { headers: Record<string, string> };
  assert.equal(seen.headers['x-forwarded-for'], '203.0.113.9');
  const entry = await ingress.waitAccess((e) => e.path === '/who');
  assert.equal(entry.client, '203.0.113.9');
  assert.equal(entry.client_port, 4242);
  // Without a header the connection is refused (never served as if from the NLB itself).
  const plain = await send({ port: ingress.port, host: 'pp.example.test', path: '/who' }).then(
    (r) => r.status,
    () => 'closed',
  );
  assert.equal(plain, 'closed');
});

test('SIGHUP reloads the routes: a bad file is refused and the running table stays; a good one takes over', async (t) => {
  const up = await RecordingUpstream.start(t);
  const route = (host: string): string => `routes:\n  - host: ${host}\n    upstream: { url: http://127.0.0.1:${up.port} }\n    sign: false\n`;
  const ingress = await startIngress(t, { routes: route('old.example.test') });
  assert.equal((await send({ port: ingress.port, host: 'old.example.test' })).status, 200);
  ingress.writeRoutes('routes:\n  - host: new.example.test\n    upstream: { url: ftp://nowhere }\n');
  let mark = ingress.events.length;
  ingress.signal('SIGHUP');
  const refused = await ingress.waitEvent('routes refused; the running table stays', mark);
  assert.match(String(refused.error), /routes\.yaml:3:\d+: Expected an http:\/\/ or https:\/\/ URL/);
  assert.equal((await send({ port: ingress.port, host: 'old.example.test' })).status, 200);
  assert.equal((await send({ port: ingress.port, host: 'new.example.test' })).status, 421);
  ingress.writeRoutes(route('new.example.test'));
  mark = ingress.events.length;
  ingress.signal('SIGHUP');
  await ingress.waitEvent('routes loaded', mark);
  assert.equal((await send({ port: ingress.port, host: 'new.example.test' })).status, 200);
  assert.equal((await send({ port: ingress.port, host: 'old.example.test' })).status, 421);
  const health = await send({ port: ingress.healthPort, host: '127.0.0.1', path: '/healthz' });
  assert.equal(health.status, 200);
  const metrics = (await send({ port: ingress.healthPort, host: '127.0.0.1', path: '/metrics' })).body.toString();
  assert.match(metrics, /^gatehouse_ingress_reloads_total\{what="routes",result="refused"\} 1$/m);
  assert.match(metrics, /^gatehouse_ingress_reloads_total\{what="routes",result="ok"\} 1$/m);
  assert.match(metrics, /^gatehouse_ingress_requests_total\{route="old.example.test\/",status="200"\} 2$/m);
});

test('access log in Apache combined format', async (t) => {
  const up = await RecordingUpstream.start(t);
  const ingress = await startIngress(t, {
    routes: `routes:\n  - host: log.example.test\n    upstream: { url: http://127.0.0.1:${up.port} }\n    sign: false\n`,
    args: ['--access-log-format', 'combined'],
  });
  await send({ port: ingress.port, host: 'log.example.test', path: '/a/b?secret=1', headers: ['User-Agent', 'test "agent"', 'Referer', 'https://example.test/'] });
  const line = await ingress.waitText(/^127\.0\.0\.1 - - \[.*$/m);
  assert.match(line[0], /^127\.0\.0\.1 - - \[\d{2}\/[A-Z][a-z]{2}\/\d{4}:\d{2}:\d{2}:\d{2} \+0000\] "GET \/a\/b\? HTTP\/1\.1" 200 \d+ "https:\/\/example\.test\/" "test \\"agent\\""$/);
});

test('SIGTERM drains: a request in flight finishes, new connections are refused, one past the deadline is cut', async (t) => {
  const up = await RecordingUpstream.start(t);
  const ingress = await startIngress(t, {
    routes: `routes:\n  - host: drain.example.test\n    upstream: { url: http://127.0.0.1:${up.port} }\n    sign: false\n`,
    args: ['--drain-timeout', '3'],
  });
  const slow = send({ port: ingress.port, host: 'drain.example.test', path: '/slow?ms=1000' });
  const stuck = send({ port: ingress.port, host: 'drain.example.test', path: '/hang' }).then(
    (r) => r.status,
    () => 'cut',
  );
  // Both requests have reached the upstream before the signal (waited for: the ingress is another process; 20 s is a ceiling).
  const arrived = (url: string): boolean => up.requests.some((r) => r.url === url);
  assert.ok(await eventually(async () => arrived('/slow?ms=1000') && arrived('/hang'), 200), 'both requests reached the upstream before SIGTERM');
  ingress.signal('SIGTERM');
  await ingress.waitEvent('draining');
  const refused = await send({ port: ingress.port, host: 'drain.example.test' }).then(
    (r) => r.status,
    () => 'refused',
  );
  assert.equal(refused, 'refused');
  const done = await slow;
  assert.equal(done.status, 200);
  assert.equal(done.headers.connection, 'close');
  assert.equal(await stuck, 'cut');
  assert.equal(await ingress.exited, 0);
});

// Node's TLSSocket takes over what the PROXY header reader left buffered (the ClientHello): this keeps it so.
test('PROXY protocol v2 in front of HTTPS: a header sent in the same segment as the ClientHello still gets its handshake', async (t) => {
  const dir = tempDir(t);
  const up = await RecordingUpstream.start(t);
  const cert = selfSigned(dir, 'pp-tls');
  const ingress = await startIngress(t, {
    dir,
    routes: `routes:\n  - host: ingress.example.test\n    upstream: { url: http://127.0.0.1:${up.port} }\n    sign: false\n`,
    args: ['--proxy-protocol', '--tls-cert', cert.cert, '--tls-key', cert.key],
  });
  // v2, PROXY, TCP over IPv4: 203.0.113.7:4343 -> 198.51.100.1:443.
  const header = Buffer.concat([
    Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a, 0x21, 0x11, 0x00, 0x0c]),
    Buffer.from([203, 0, 113, 7, 198, 51, 100, 1, 0x10, 0xf7, 0x01, 0xbb]),
  ]);
  const raw = netConnect({ host: '127.0.0.1', port: ingress.port });
  t.after(() => raw.destroy());
  await new Promise<void>((resolve) => raw.once('connect', resolve));
  // Between TLS and the socket: the first TLS write (the ClientHello) goes out in one write with the header, as an NLB may send it.
  let first = true;
  const tap = new Duplex({
    write(chunk: Buffer, _encoding, callback) {
      raw.write(first ? Buffer.concat([header, chunk]) : chunk, callback);
      first = false;
    },
    read() {},
  });
  raw.on('data', (d: Buffer) => tap.push(d));
  raw.on('end', () => tap.push(null));
  const secure = tls.connect({ socket: tap, servername: 'ingress.example.test', ca: readFileSync(cert.cert) });
  t.after(() => secure.destroy());
  let reply = '';
  secure.on('data', (d: Buffer) => (reply += d.toString('latin1')));
  secure.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    secure.once('secureConnect', resolve);
    secure.once('error', reject);
    setTimeout(() => reject(new Error('no TLS handshake within 5 s')), 5000);
  });
  secure.write('GET /pp-tls HTTP/1.1\r\nHost: ingress.example.test\r\nConnection: close\r\n\r\n');
  for (let i = 0; i < 50 && !reply.includes('\r\n\r\n{'); i++) await new Promise((r) => setTimeout(r, 100));
  assert.match(reply, /^HTTP\/1\.1 200 OK\r\n/);
  const entry = await ingress.waitAccess((e) => e.path === '/pp-tls');
  assert.equal(entry.client, '203.0.113.7');
  assert.equal(entry.tls, true);
});
