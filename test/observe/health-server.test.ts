import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { Registry } from 'prom-client';
import { GatehouseError } from '../../src/errors';
import type { HealthCheck, HealthReport } from '../../src/observe/health';
import type { HealthDocument, HealthComponentDocument } from '../../src/observe/health-render';
import { startHealthServer, type HealthServer, type HealthServerOptions } from '../../src/observe/health-server';
import { createLogger, TUNNEL_LOG_SECTIONS } from '../../src/observe/log';
import { registerCounterBlock } from '../../src/observe/metrics';
import { parseExposition } from './exposition';
import { rawExchange, request } from './http-client';

const CLOCK = (): Date => new Date('2024-05-06T07:08:09.010Z');

/** A component whose health the test flips. */
class Switch implements HealthCheck {
  report: HealthReport = { healthy: true };
  constructor(readonly name: string) {}
  check(): HealthReport {
    return this.report;
  }
}

async function start(t: TestContext, options: Partial<HealthServerOptions> = {}): Promise<HealthServer & { logLines: string[] }> {
  const logLines: string[] = [];
  const log = createLogger({
    sections: TUNNEL_LOG_SECTIONS,
    config: { healthcheck: 'important' },
    clock: CLOCK,
    stream: { write: (l: string) => logLines.push(l) },
  });
  const server = await startHealthServer({ port: 0, host: '127.0.0.1', format: 'text', checks: [], log, clock: CLOCK, ...options });
  t.after(() => server.close());
  return Object.assign(server, { logLines });
}

/** The tree most tests serve: a tunnel with two endpoints, one of them down. */
function tunnelCheck(): Switch {
  const c = new Switch('tunnel');
  c.report = {
    healthy: true,
    details: { rx_packets: 12n, flow_idle_timeout_s: 350 },
    children: [
      { name: 'vpce-0aaa', healthy: true, details: { packets: 4, gwi: 'gwi-1Fz' } },
      { name: 'vpce-0bbb', healthy: false, reason: 'gwi-2Qa is down', details: { packets: 0 } },
    ],
  };
  return c;
}

test('200 when healthy, 503 when not, flipping with the checks, on any path', async (t) => {
  const a = new Switch('tunnel');
  const b = new Switch('hooks');
  const server = await start(t, { checks: [a, b], format: 'status' });
  assert.deepEqual(await request(server.port).then((r) => [r.status, r.body]), [200, '200 OK\n']);
  b.report = { healthy: false, reason: 'create hook failed' };
  for (const path of ['/', '/health', '/anything?x=1']) {
    const r = await request(server.port, { path });
    assert.equal(r.status, 503);
    assert.equal(r.body, '503 Service Unavailable: hooks: create hook failed\n');
  }
  a.report = { healthy: false, reason: 'no UDP socket' };
  assert.equal((await request(server.port)).body, '503 Service Unavailable: tunnel: no UDP socket; hooks: create hook failed\n');
  a.report = b.report = { healthy: true };
  assert.equal((await request(server.port)).status, 200);
  // One log line per change of verdict, not per probe.
  assert.deepEqual(
    server.logLines.map((l) => l.slice(25)),
    [
      'important [healthcheck] healthy reasons=""\n',
      'important [healthcheck] unhealthy reasons="hooks: create hook failed"\n',
      'important [healthcheck] healthy reasons=""\n',
    ],
  );
});

test('text body: overall line, time, reasons, then each component with details and children', async (t) => {
  const server = await start(t, { checks: [tunnelCheck(), new Switch('hooks')], format: 'text' });
  const r = await request(server.port);
  assert.equal(r.status, 503);
  assert.equal(r.headers['content-type'], 'text/plain; charset=utf-8');
  assert.equal(r.headers['cache-control'], 'no-store');
  assert.equal(
    r.body,
    [
      'Health: UNHEALTHY (503)',
      'Time: 2024-05-06T07:08:09.010Z',
      'Reasons:',
      '  tunnel/vpce-0bbb: gwi-2Qa is down',
      '',
      'tunnel: UNHEALTHY (unhealthy children: vpce-0bbb)',
      '  rx_packets = 12',
      '  flow_idle_timeout_s = 350',
      '  vpce-0aaa: healthy',
      '    packets = 4',
      '    gwi = gwi-1Fz',
      '  vpce-0bbb: UNHEALTHY (gwi-2Qa is down)',
      '    packets = 0',
      '',
      'hooks: healthy',
      '',
    ].join('\n'),
  );
});

/** Checks every field HealthDocument documents, recursively. */
function assertComponentShape(c: HealthComponentDocument, where: string): void {
  assert.deepEqual(Object.keys(c).sort(), ['children', 'details', 'healthy', 'name', 'reason'], where);
  assert.equal(typeof c.name, 'string', where);
  assert.equal(typeof c.healthy, 'boolean', where);
  assert.ok(c.reason === null || typeof c.reason === 'string', where);
  assert.ok(typeof c.details === 'object' && c.details !== null && !Array.isArray(c.details), where);
  assert.ok(Array.isArray(c.children), where);
  if (c.children.some((x) => !x.healthy)) assert.equal(c.healthy, false, `${where}: an unhealthy child makes the parent unhealthy`);
  c.children.forEach((x) => assertComponentShape(x, `${where}/${x.name}`));
}

test('json body: the documented gatehouse.health/v1 document', async (t) => {
  const tunnel = tunnelCheck();
  const server = await start(t, { checks: [tunnel, new Switch('hooks')], format: 'json' });
  let r = await request(server.port);
  assert.equal(r.status, 503);
  assert.equal(r.headers['content-type'], 'application/json; charset=utf-8');
  const doc = JSON.parse(r.body) as HealthDocument;
  assert.deepEqual(Object.keys(doc).sort(), ['components', 'healthy', 'reasons', 'schema', 'status', 'time']);
  doc.components.forEach((c) => assertComponentShape(c, c.name));
  assert.deepEqual(doc, {
    schema: 'gatehouse.health/v1',
    status: 503,
    healthy: false,
    time: '2024-05-06T07:08:09.010Z',
    reasons: ['tunnel/vpce-0bbb: gwi-2Qa is down'],
    components: [
      {
        name: 'tunnel',
        healthy: false,
        reason: 'unhealthy children: vpce-0bbb',
        details: { rx_packets: 12, flow_idle_timeout_s: 350 },
        children: [
          { name: 'vpce-0aaa', healthy: true, reason: null, details: { packets: 4, gwi: 'gwi-1Fz' }, children: [] },
          { name: 'vpce-0bbb', healthy: false, reason: 'gwi-2Qa is down', details: { packets: 0 }, children: [] },
        ],
      },
      { name: 'hooks', healthy: true, reason: null, details: {}, children: [] },
    ],
  });

  tunnel.report = { healthy: true };
  r = await request(server.port);
  assert.equal(r.status, 200);
  const healthy = JSON.parse(r.body) as HealthDocument;
  assert.equal(healthy.status, 200);
  assert.equal(healthy.healthy, true);
  assert.deepEqual(healthy.reasons, []);
});

test('a throwing check answers 503 with the error as the reason', async (t) => {
  const boom: HealthCheck = {
    name: 'flowtable',
    check() {
      throw new Error('counter block gone');
    },
  };
  const server = await start(t, { checks: [new Switch('tunnel'), boom], format: 'status' });
  const r = await request(server.port);
  assert.equal(r.status, 503);
  assert.equal(r.body, '503 Service Unavailable: flowtable: check threw: counter block gone\n');
});

test('HEAD answers the status and length without a body; other methods get 405', async (t) => {
  const sw = new Switch('tunnel');
  const server = await start(t, { checks: [sw], format: 'text' });
  const get = await request(server.port);
  const head = await request(server.port, { method: 'HEAD' });
  assert.equal(head.status, 200);
  assert.equal(head.body, '');
  assert.equal(head.headers['content-length'], String(Buffer.byteLength(get.body)));
  sw.report = { healthy: false };
  assert.equal((await request(server.port, { method: 'HEAD' })).status, 503);
  for (const method of ['POST', 'PUT', 'DELETE', 'OPTIONS']) {
    const r = await request(server.port, { method, body: method === 'POST' ? 'x=1' : undefined });
    assert.equal(r.status, 405, method);
    assert.equal(r.headers.allow, 'GET, HEAD');
    assert.equal(r.body, '405 Method Not Allowed\n');
  }
});

test('GET /metrics serves the registry: live native-like counters, removed blocks gone', async (t) => {
  const registry = new Registry();
  const block = { names: ['rx_packets', 'flows_active'], values: new BigUint64Array(2) };
  const endpoints = registerCounterBlock(registry, {
    prefix: 'gatehouse_endpoint_',
    help: 'per endpoint',
    gauges: ['flows_active'],
    labelNames: ['endpoint'],
    labels: { endpoint: 'vpce-0aaa' },
    block,
  });
  const server = await start(t, { checks: [new Switch('tunnel')], registry, format: 'json' });

  block.values[0] = 99n;
  block.values[1] = 4n;
  let r = await request(server.port, { path: '/metrics' });
  assert.equal(r.status, 200);
  assert.equal(r.headers['content-type'], registry.contentType);
  let e = parseExposition(r.body);
  assert.equal(e.samples.get('gatehouse_endpoint_rx_packets_total{endpoint="vpce-0aaa"}'), 99);
  assert.equal(e.samples.get('gatehouse_endpoint_flows_active{endpoint="vpce-0aaa"}'), 4);

  block.values[0] = 150n;
  e = parseExposition((await request(server.port, { path: '/metrics?fresh=1' })).body);
  assert.equal(e.samples.get('gatehouse_endpoint_rx_packets_total{endpoint="vpce-0aaa"}'), 150);

  endpoints.remove({ endpoint: 'vpce-0aaa' });
  r = await request(server.port, { path: '/metrics' });
  e = parseExposition(r.body);
  assert.equal([...e.samples.keys()].filter((k) => k.includes('vpce-0aaa')).length, 0);
  assert.equal(e.types.get('gatehouse_endpoint_rx_packets_total'), 'counter'); // the family stays, empty

  // Any other path is still health.
  r = await request(server.port, { path: '/metricsx' });
  assert.equal((JSON.parse(r.body) as HealthDocument).schema, 'gatehouse.health/v1');
});

test('without a registry, /metrics is a health path like any other', async (t) => {
  const server = await start(t, { checks: [new Switch('tunnel')], format: 'status' });
  assert.equal((await request(server.port, { path: '/metrics' })).body, '200 OK\n');
});

test('100 concurrent probes are all answered', async (t) => {
  const sw = new Switch('tunnel');
  const server = await start(t, { checks: [sw], format: 'json' });
  const answers = await Promise.all(Array.from({ length: 100 }, () => request(server.port)));
  assert.equal(answers.length, 100);
  for (const a of answers) {
    assert.equal(a.status, 200);
    assert.equal((JSON.parse(a.body) as HealthDocument).healthy, true);
  }
});

test('an oversized request head gets 431 and the connection is closed', async (t) => {
  const server = await start(t, { checks: [new Switch('tunnel')] });
  const head = `GET / HTTP/1.1\r\nHost: x\r\nX-Padding: ${'a'.repeat(9 * 1024)}\r\n\r\n`;
  const { received } = await rawExchange(server.port, head);
  assert.match(received, /^HTTP\/1\.1 431 Request Header Fields Too Large\r\n/);
  // And the server still answers others.
  assert.equal((await request(server.port)).status, 200);
});

test('an oversized body gets 413 and the connection is closed (declared or chunked)', async (t) => {
  const server = await start(t, { checks: [new Switch('tunnel')] });
  const declared = await rawExchange(server.port, `GET / HTTP/1.1\r\nHost: x\r\nContent-Length: ${65 * 1024}\r\n\r\n`);
  assert.match(declared.received, /^HTTP\/1\.1 413 Payload Too Large\r\n/);
  assert.match(declared.received, /\r\nConnection: close\r\n/i);
  const chunk = 'b'.repeat(16 * 1024);
  const chunked = `GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n${`4000\r\n${chunk}\r\n`.repeat(5)}0\r\n\r\n`;
  const r = await rawExchange(server.port, chunked);
  assert.match(r.received, /^HTTP\/1\.1 413 Payload Too Large\r\n/);
  // A small body is read and the probe answered normally.
  const small = await request(server.port, { body: 'x'.repeat(1000), headers: { 'content-type': 'text/plain' } });
  assert.equal(small.status, 200);
});

test('a stuck client does not block other probes and is closed after the header timeout', async (t) => {
  const server = await start(t, { checks: [new Switch('tunnel')], timeouts: { headersMs: 200, requestMs: 400, keepAliveMs: 200 } });
  const stuck = rawExchange(server.port, 'GET / HTTP/1.1\r\nHost: x\r\nX-Half', 10_000);
  const silent = rawExchange(server.port, Buffer.alloc(0), 10_000);
  // While they hang, probes are answered.
  for (let i = 0; i < 5; i++) assert.equal((await request(server.port)).status, 200);
  const [s1, s2] = await Promise.all([stuck, silent]);
  assert.match(s1.received, /^HTTP\/1\.1 408 Request Timeout\r\n/);
  assert.match(s2.received, /^HTTP\/1\.1 408 Request Timeout\r\n/);
});

test('a kept-alive connection serves several probes in a row', async (t) => {
  const server = await start(t, { checks: [new Switch('tunnel')], format: 'status' });
  const probe = 'GET / HTTP/1.1\r\nHost: x\r\n\r\n';
  const socket = net.connect(server.port, '127.0.0.1');
  t.after(() => socket.destroy());
  let received = '';
  socket.on('data', (c: Buffer) => (received += c.toString()));
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  socket.write(probe + probe + probe);
  const deadline = Date.now() + 10_000;
  while ((received.match(/200 OK\n/g) ?? []).length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  assert.equal((received.match(/^HTTP\/1\.1 200 OK\r\n/gm) ?? []).length, 3);
});

test('options are validated; a port in use is ERR_LISTEN', async (t) => {
  const log = createLogger({ sections: ['healthcheck'], stream: { write: () => true } });
  const base = { port: 0, host: '127.0.0.1', format: 'text' as const, checks: [], log };
  const rejects = async (options: HealthServerOptions, code: string, message: string | RegExp): Promise<void> => {
    await assert.rejects(startHealthServer(options), (err: unknown) => {
      assert.ok(err instanceof GatehouseError);
      assert.equal(err.code, code);
      if (typeof message === 'string') assert.equal(err.message, message);
      else assert.match(err.message, message);
      return true;
    });
  };
  await rejects({ ...base, port: 70000 }, 'ERR_INVALID_ARG', 'Expected an integer port between 0 and 65535 for port but received 70000');
  await rejects({ ...base, format: 'xml' as never }, 'ERR_INVALID_ARG', 'Expected one of text, json, status for format but received "xml"');
  const dup = new Switch('tunnel');
  await rejects({ ...base, checks: [dup, dup] }, 'ERR_INVALID_ARG', 'Expected a unique non-empty name for checks[].name but received "tunnel"');
  await rejects(
    { ...base, timeouts: { headersMs: 500, requestMs: 100 } },
    'ERR_INVALID_ARG',
    'Expected at least headersMs (500) for requestMs but received 100',
  );
  await rejects({ ...base, timeouts: { keepAliveMs: 0 } }, 'ERR_INVALID_ARG', 'Expected a positive integer for keepAliveMs but received 0');

  const first = await startHealthServer(base);
  t.after(() => first.close());
  await rejects({ ...base, port: first.port }, 'ERR_LISTEN', new RegExp(`^Expected a free port for the health server but received 127\\.0\\.0\\.1:${first.port} \\(EADDRINUSE\\)$`));
});

test('connections beyond maxConnections are refused, and probes work again once they go', async (t) => {
  const server = await start(t, { checks: [new Switch('tunnel')], format: 'status', maxConnections: 2 });
  // Two kept-alive connections, each answered once so the server has surely accepted them.
  const held = await Promise.all(
    [0, 1].map(
      () =>
        new Promise<net.Socket>((resolve, reject) => {
          const s = net.connect(server.port, '127.0.0.1', () => s.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
          s.once('data', () => resolve(s));
          s.once('error', reject);
        }),
    ),
  );
  t.after(() => held.forEach((s) => s.destroy()));
  await assert.rejects(request(server.port), (err: NodeJS.ErrnoException) => ['ECONNRESET', 'EPIPE'].includes(err.code ?? '') || /socket hang up/.test(err.message));
  held.forEach((s) => s.destroy());
  // The server learns of the closes asynchronously: retry, bounded.
  let status = 0;
  for (let i = 0; i < 100 && status !== 200; i++) {
    status = await request(server.port).then(
      (r) => r.status,
      () => new Promise<number>((r) => setTimeout(() => r(0), 20)),
    );
  }
  assert.equal(status, 200);
});
