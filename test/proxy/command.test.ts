/**
 * `gatehouse proxy` as the command runs it (ProxyApp: policy file, server,
 * logs, health port): the Prometheus counters on the health port count the
 * requests that went through, by kind, decision, rule and reason. Real
 * parts on loopback: a node:http upstream, requests sent through the proxy
 * over one keep-alive connection (so later ones go on a kept route and are
 * reported in batches), /metrics read over HTTP.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ProxyApp, PROXY_LOG_SECTIONS } from '../../src/proxy/command';
import { parseProxyOptions } from '../../src/proxy/options';
import { createLogger } from '../../src/observe/log';

async function listening(server: http.Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

/** One request through the proxy (absolute form) on `agent`'s connection; its status. */
function viaProxy(proxyPort: number, agent: http.Agent, url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const host = new URL(url).host;
    const req = http.request({ host: '127.0.0.1', port: proxyPort, agent, path: url, headers: { Host: host } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.setTimeout(10_000, () => req.destroy(new Error(`no answer for ${url} within 10 s`)));
    req.on('error', reject);
    req.end();
  });
}

function get(port: number, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => resolve(body));
      })
      .on('error', reject);
  });
}

async function startApp(t: TestContext, upstreamPort: number): Promise<{ app: ProxyApp; port: number; health: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-proxy-command-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const policy = join(dir, 'policy.yaml');
  writeFileSync(
    policy,
    [
      'version: 1',
      'default: deny',
      'rules:',
      '  - id: to-upstream',
      '    action: allow',
      '    host: localhost',
      `    port: [${upstreamPort}]`,
      '    allow_addresses: [127.0.0.1/32]',
      '',
    ].join('\n'),
  );
  // A free port for the health server (0 turns it off): bound, released, then taken by the app.
  const probe = http.createServer();
  const health = await listening(probe);
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  const opts = parseProxyOptions(['--policy', policy, '--listen', '127.0.0.1:0', '--health-port', String(health), '--health-bind', '127.0.0.1', '--access-log', join(dir, 'access.log')]);
  if ('help' in opts) throw new Error('unexpected help');
  const config = Object.fromEntries(PROXY_LOG_SECTIONS.map((s) => [s, 'error'])) as Record<(typeof PROXY_LOG_SECTIONS)[number], 'error'>;
  const app = new ProxyApp(opts, createLogger({ sections: PROXY_LOG_SECTIONS, config, stream: { write: () => true } }));
  t.after(() => app.stop());
  await app.start();
  return { app, port: app.addresses()[0].port, health: app.healthPort ?? 0 };
}

/** `gatehouse_proxy_requests_total` samples from a /metrics text, keyed by their label text. */
function requestCounts(metrics: string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const m of metrics.matchAll(/^gatehouse_proxy_requests_total\{([^}]*)\} (\d+)$/gm)) counts.set(m[1], Number(m[2]));
  return counts;
}

test('/metrics counts every request by kind, decision, rule and reason, repeats on a kept route included', async (t) => {
  const upstream = http.createServer((req, res) => {
    req.resume();
    res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': '2' });
    res.end('ok');
  });
  const upstreamPort = await listening(upstream);
  t.after(() => upstream.close());
  upstream.keepAliveTimeout = 60_000;
  const { port, health } = await startApp(t, upstreamPort);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  t.after(() => agent.destroy());

  const allowed = 7;
  for (let i = 0; i < allowed; i++) assert.equal(await viaProxy(port, agent, `http://localhost:${upstreamPort}/r${i}`), 200);
  assert.equal(await viaProxy(port, agent, `http://denied.test:${upstreamPort}/x`), 403);
  // Another port of an allowed name: denied by the policy before any connection is tried.
  assert.equal(await viaProxy(port, agent, `http://localhost:${upstreamPort === 9 ? 13 : 9}/x`), 403);

  // Reports of kept routes go up in batches (at most 50 ms late): read until they are all in.
  const want = new Map([
    [`kind="http",decision="allow",rule="to-upstream",reason="rule"`, allowed],
    [`kind="http",decision="deny",rule=":default",reason="default"`, 2],
  ]);
  let counts = new Map<string, number>();
  for (const end = Date.now() + 5000; Date.now() < end; await new Promise((r) => setTimeout(r, 20))) {
    counts = requestCounts(await get(health, '/metrics'));
    if ([...want].every(([labels, n]) => counts.get(labels) === n)) break;
  }
  assert.deepEqual(Object.fromEntries(counts), Object.fromEntries(want));
  // Counts are handed over whole at each read: reading again must not add them twice.
  assert.deepEqual(Object.fromEntries(requestCounts(await get(health, '/metrics'))), Object.fromEntries(want));
  // And a request after a read adds one, not the whole count again.
  assert.equal(await viaProxy(port, agent, `http://denied.test:${upstreamPort}/y`), 403);
  want.set(`kind="http",decision="deny",rule=":default",reason="default"`, 3);
  assert.deepEqual(Object.fromEntries(requestCounts(await get(health, '/metrics'))), Object.fromEntries(want));
});
