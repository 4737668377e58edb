/**
 * Acceptance for `gatehouse proxy`, in a network namespace made here: real
 * curl, openssl and Node clients, upstream servers on documentation
 * addresses, dnsmasq as the resolver, and listeners on the addresses the
 * SSRF defences must never reach, counting every connection (the proof that
 * nothing was sent to them).
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { makeCertificates } from '../../../src/lab/certificates';
import { CLI_MAIN } from '../../../src/lab/programs';
import { JsonLinesProcess, nodeInNamespace } from '../../helpers/json-lines-process';
import { createNamespaces, sh, skipUnlessNetAdmin, uniqueSuffix } from '../../helpers/system';
import { waitFor } from '../../lab/lab-helpers';
import type { WorldConfig, WorldCounts } from './proxy-world';

const WORLD = join(__dirname, 'proxy-world.js');
const UPSTREAM = '203.0.113.10';
const UPSTREAM6 = '2001:db8::10';
const FORBIDDEN = ['127.0.0.1', '::1', '169.254.169.254', '10.0.0.1'];
const VPCE_A = 'vpce-0aaaaaaaaaaaaaaaa';
const VPCE_B = 'vpce-0bbbbbbbbbbbbbbbb';

const POLICY = `default: deny
connect_ports: [443]
rules:
  - id: deny-denied
    action: deny
    message: denied.test is not for us
    host: [denied.test]
  - id: allowed-web
    action: allow
    host: [allowed.test, .allowed.test]
    port: [80, 443]
  - id: endpoint-a
    action: allow
    endpoint: [${VPCE_A}]
    host: [a-only.test]
    port: 80
  # Lets the SSRF table reach the SSRF defences: the policy allows these, the defences must still refuse.
  - id: any-http-get
    action: allow
    method: [GET]
    port: 80
    host: ['127.0.0.0/8', '::1', '169.254.0.0/16', '10.0.0.0/8']
`;

type WorldMessage = { type: 'ready' } | WorldCounts;

function proxyProcess(ns: string, args: string[]): ChildProcess {
  const p = spawn('ip', ['netns', 'exec', ns, process.execPath, CLI_MAIN, 'proxy', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  p.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  (p as ChildProcess & { log: () => string }).log = () => err;
  return p;
}

/** A raw HTTP/1.1 request (written as given, so the host is exactly what we typed) through the proxy; the status line. */
async function raw(ns: string, port: number, head: string, prefix = ''): Promise<string> {
  const script = `
    const s = require('net').connect(${port}, '127.0.0.1', () => s.write(Buffer.concat([Buffer.from(process.argv[1], 'hex'), Buffer.from(process.argv[2])])));
    let got = '';
    const done = (line) => { console.log(line); process.exit(0); };
    s.on('data', (d) => { got += d; if (got.includes('\\r\\n')) done(got.split('\\r\\n')[0]); });
    s.on('close', () => done(got.split('\\r\\n')[0] || 'closed'));
    s.on('error', (e) => done('error ' + e.message)); setTimeout(() => done('timeout'), 8000);`;
  const r = spawnSync('ip', ['netns', 'exec', ns, process.execPath, '-e', script, prefix, head], { encoding: 'utf8', timeout: 15_000 });
  return r.stdout.trim();
}

/** PROXY protocol v2, TCP over IPv4, from 198.51.100.7:40000, with an AWS VPC endpoint TLV when given. */
function proxyV2(vpce: string | null): string {
  const tlv = vpce ? Buffer.concat([Buffer.from([0xea]), u16(1 + vpce.length), Buffer.from([0x01]), Buffer.from(vpce)]) : Buffer.alloc(0);
  const addrs = Buffer.from([198, 51, 100, 7, 127, 0, 0, 1, 0x9c, 0x40, 0x0c, 0x39]);
  const sig = Buffer.from('0d0a0d0a000d0a515549540a', 'hex');
  return Buffer.concat([sig, Buffer.from([0x21, 0x11]), u16(addrs.length + tlv.length), addrs, tlv]).toString('hex');
}

function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
}

test('proxy in a namespace: names, ports, CONNECT, SSRF table, PROXY v2 endpoints, fronting, reload under load, Squid log, drain', { timeout: 240_000 }, async (t) => {
  if (skipUnlessNetAdmin(t)) return;
  // Two namespaces: the proxy's host (clients, the proxy, its resolver) and
  // "the internet" (upstreams, and the metadata and private addresses the
  // proxy must not reach). Loopback is the proxy's own, so its listeners
  // are in the proxy's namespace.
  const sfx = uniqueSuffix();
  const ns = `ghpx${sfx}`;
  const net = `ghpi${sfx}`;
  const cleanupNs = createNamespaces([ns, net]);
  const dir = mkdtempSync(join(tmpdir(), 'gh-proxy-'));
  const procs: ChildProcess[] = [];
  const worlds: JsonLinesProcess<WorldMessage>[] = [];
  t.after(() => {
    for (const w of worlds) w.kill();
    for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL');
    cleanupNs();
    rmSync(`/etc/netns/${ns}`, { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
  });
  const ip = (n: string, ...args: string[]) => sh('ip', ['-n', n, ...args]);
  ip(ns, 'link', 'add', 'veth-net', 'type', 'veth', 'peer', 'name', 'veth-proxy', 'netns', net);
  ip(ns, 'addr', 'add', '198.51.100.2/24', 'dev', 'veth-net');
  ip(ns, 'addr', 'add', '2001:db8:1::2/64', 'dev', 'veth-net', 'nodad');
  ip(ns, 'link', 'set', 'veth-net', 'up');
  ip(ns, 'route', 'add', 'default', 'via', '198.51.100.1');
  ip(ns, '-6', 'route', 'add', 'default', 'via', '2001:db8:1::1');
  ip(net, 'addr', 'add', '198.51.100.1/24', 'dev', 'veth-proxy');
  ip(net, 'addr', 'add', '2001:db8:1::1/64', 'dev', 'veth-proxy', 'nodad');
  ip(net, 'link', 'set', 'veth-proxy', 'up');
  for (const a of [`${UPSTREAM}/32`, '169.254.169.254/32', '10.0.0.1/32']) ip(net, 'addr', 'add', a, 'dev', 'lo');
  ip(net, 'addr', 'add', `${UPSTREAM6}/128`, 'dev', 'lo');
  // The proxy's host resolves with its own dnsmasq.
  mkdirSync(`/etc/netns/${ns}`, { recursive: true });
  writeFileSync(`/etc/netns/${ns}/resolv.conf`, 'nameserver 127.0.0.1\n');
  const names = ['allowed.test', 'www.allowed.test', 'denied.test', 'a-only.test'];
  const dns = spawn('ip', [
    'netns', 'exec', ns, 'dnsmasq', '--no-daemon', '--conf-file=/dev/null', '--no-resolv', '--no-hosts', '--bind-interfaces',
    '--listen-address=127.0.0.1', '--port=53', '--pid-file=', '--local=/test/',
    ...names.map((n) => `--host-record=${n},${UPSTREAM},${UPSTREAM6}`), '--host-record=internal.allowed.test,10.0.0.1', `--host-record=v6.allowed.test,${UPSTREAM6}`,
  ], { stdio: 'ignore' });
  procs.push(dns);
  const [, cert] = await makeCertificates(join(dir, 'tls'), ['allowed.test']);
  const world = (n: string, cfg: WorldConfig): JsonLinesProcess<WorldMessage> => {
    const w = new JsonLinesProcess<WorldMessage>(nodeInNamespace(n, WORLD, ['world', JSON.stringify(cfg)]), `world in ${n}`);
    worlds.push(w);
    return w;
  };
  const internet = world(net, { upstreams: [UPSTREAM, UPSTREAM6], forbidden: ['169.254.169.254', '10.0.0.1'], cert: cert.cert, key: cert.key });
  const local = world(ns, { upstreams: [], forbidden: ['127.0.0.1', '::1'], cert: cert.cert, key: cert.key });
  await internet.waitFor((m) => m.type === 'ready');
  await local.waitFor((m) => m.type === 'ready');
  const countsOf = async (w: JsonLinesProcess<WorldMessage>): Promise<WorldCounts> => {
    const from = w.messages.length;
    w.send('counts');
    return (await w.waitFor((m) => m.type === 'counts', from)) as WorldCounts;
  };
  const counts = async (): Promise<WorldCounts> => {
    const [a, b] = [await countsOf(internet), await countsOf(local)];
    return { ...a, forbidden: { ...a.forbidden, ...b.forbidden } };
  };

  const policy = join(dir, 'policy.yaml');
  writeFileSync(policy, POLICY);
  const access = join(dir, 'access.log');
  const decisions = join(dir, 'decisions.log');
  const proxy = proxyProcess(ns, ['--policy', policy, '--listen', '127.0.0.1:3128', '--health-port', '9090', '--access-log', access, '--decision-log', decisions, '--via', 'on']);
  procs.push(proxy);
  const ppProxy = proxyProcess(ns, ['--policy', policy, '--listen', '127.0.0.1:3129', '--health-port', '9091', '--proxy-protocol', '--decision-log', join(dir, 'pp.log')]);
  procs.push(ppProxy);
  const run = (argv: string[], timeoutMs = 20_000) => spawnSync('ip', ['netns', 'exec', ns, ...argv], { encoding: 'utf8', timeout: timeoutMs });
  const curl = (args: string[]) => run(['curl', '-sS', '-m', '8', '-x', 'http://127.0.0.1:3128', ...args]);
  const proxyLog = (p: ChildProcess) => (p as ChildProcess & { log: () => string }).log();
  t.after(() => {
    if (process.env.GATEHOUSE_TEST_VERBOSE) console.log(`proxy log:\n${proxyLog(proxy)}\nproxy-protocol proxy log:\n${proxyLog(ppProxy)}`);
  });
  await waitFor('the proxies', async () => (run(['curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', 'http://127.0.0.1:9091/']).stdout === '200' && run(['curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', 'http://127.0.0.1:9090/']).stdout === '200' ? true : undefined), 20_000);
  const jsonLines = (path: string) => readFileSync(path, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
  const decisionLines = () => jsonLines(decisions);
  // The logs gather lines for up to 50 ms before writing them: wait for the lines a check needs.
  const linesWhere = <T>(what: string, read: () => T[], ready: (lines: T[]) => boolean) =>
    waitFor(what, async () => {
      const lines = read();
      return ready(lines) ? lines : undefined;
    }, 5000);

  await t.test('plain HTTP: an allowed name is fetched (Via added), a denied name and a denied port get 403 with the rule', () => {
    const ok = curl(['http://allowed.test/small']);
    assert.equal(ok.status, 0, ok.stderr);
    assert.match(ok.stdout, /^hello allowed\.test via=1\.1 gatehouse/);
    const v6 = curl(['http://v6.allowed.test/small']);
    assert.match(v6.stdout, /^hello v6\.allowed\.test/, 'an upstream reached over IPv6');
    const denied = curl(['-i', 'http://denied.test/small']);
    assert.match(denied.stdout, /^HTTP\/1\.1 403/);
    assert.match(denied.stdout, /X-Gatehouse-Rule: deny-denied/i);
    const port = curl(['-i', 'http://allowed.test:8080/small']);
    assert.match(port.stdout, /^HTTP\/1\.1 403/);
  });

  await t.test('CONNECT: an allowed name tunnels (TLS end to end), a denied name and a port outside connect_ports get 403', () => {
    const ok = curl(['-k', 'https://allowed.test/']);
    assert.equal(ok.status, 0, ok.stderr);
    assert.equal(ok.stdout, 'ok\n');
    const denied = curl(['-k', 'https://denied.test/']);
    assert.notEqual(denied.status, 0);
    assert.match(denied.stderr, /403/);
    const port = curl(['-k', 'https://allowed.test:8443/']);
    assert.match(port.stderr, /403/);
  });

  await t.test('SSRF: every notation of a forbidden address, and a name resolving to one, is refused and nothing reaches them', async () => {
    const before = await counts();
    const targets: Array<[string, string]> = [
      ['127.0.0.1', '127.0.0.1'],
      ['[::1]', '[::1]'],
      ['169.254.169.254', '169.254.169.254'],
      ['0x7f000001', '0x7f000001'],
      ['2130706433', '2130706433'],
      ['[::ffff:127.0.0.1]', '[::ffff:127.0.0.1]'],
      ['0177.0.0.1', '0177.0.0.1'],
      ['internal.allowed.test', 'internal.allowed.test'],
    ];
    for (const [urlHost, hostHeader] of targets) {
      const status = await raw(ns, 3128, `GET http://${urlHost}/ HTTP/1.1\r\nHost: ${hostHeader}\r\nConnection: close\r\n\r\n`);
      assert.match(status, /^HTTP\/1\.1 403/, `${urlHost}: ${status}`);
    }
    const after = await counts();
    assert.deepEqual(after.forbidden, before.forbidden);
    for (const a of FORBIDDEN) assert.equal(after.forbidden[a], 0, `${a} was connected to`);
    // The judges work: a direct connection (not through the proxy) reaches each listener and is counted.
    for (const a of FORBIDDEN) run(['curl', '-s', '-m', '3', '-o', '/dev/null', `http://${a.includes(':') ? `[${a}]` : a}/`]);
    const direct = await counts();
    for (const a of FORBIDDEN) assert.equal(direct.forbidden[a], 1, `${a}: the listener counts a direct connection`);
    const isSsrf = (d: Record<string, unknown>) => String(d.reason).startsWith('ssrf:');
    const ssrf = (await linesWhere('the SSRF decision lines', decisionLines, (l) => l.filter(isSsrf).length >= targets.length)).filter(isSsrf);
    assert.ok(ssrf.length >= targets.length, JSON.stringify(ssrf));
    assert.ok(ssrf.some((d) => d.reason === 'ssrf:metadata'));
  });

  await t.test('PROXY v2: the VPC endpoint id from TLV 0xEA selects that endpoint\'s rules', async () => {
    const req = 'GET http://a-only.test/small HTTP/1.1\r\nHost: a-only.test\r\nConnection: close\r\n\r\n';
    assert.match(await raw(ns, 3129, req, proxyV2(VPCE_A)), /^HTTP\/1\.1 200/);
    assert.match(await raw(ns, 3129, req, proxyV2(VPCE_B)), /^HTTP\/1\.1 403/);
    const log = await linesWhere('both endpoints in the decision log', () => jsonLines(join(dir, 'pp.log')), (l) => l.filter((d) => d.endpoint === VPCE_A || d.endpoint === VPCE_B).length >= 2);
    assert.ok(log.some((d) => d.endpoint === VPCE_A && d.client === '198.51.100.7' && d.decision === 'allow' && d.rule === 'endpoint-a'));
    assert.ok(log.some((d) => d.endpoint === VPCE_B && d.decision === 'deny'));
    // Without the header the connection is refused, not served.
    assert.doesNotMatch(await raw(ns, 3129, req), /^HTTP\/1\.1 200/);
  });

  await t.test('fronting: CONNECT allowed.test then a ClientHello for denied.test is closed before any byte goes upstream', async () => {
    const before = await counts();
    const bad = run(['openssl', 's_client', '-proxy', '127.0.0.1:3128', '-connect', 'allowed.test:443', '-servername', 'denied.test', '-brief'], 20_000);
    assert.doesNotMatch(bad.stdout + bad.stderr, /CONNECTION ESTABLISHED/);
    const after = await counts();
    assert.equal(after.tlsBytes, before.tlsBytes, 'no byte of the ClientHello reached the upstream');
    const lines = await linesWhere('the fronting decision line', decisionLines, (l) => l.some((d) => d.reason === 'fronting'));
    assert.ok(lines.some((d) => d.reason === 'fronting'));
    const good = run(['openssl', 's_client', '-proxy', '127.0.0.1:3128', '-connect', 'allowed.test:443', '-servername', 'allowed.test', '-brief'], 20_000);
    assert.match(good.stdout + good.stderr, /CONNECTION ESTABLISHED/);
  });

  await t.test('reload during 200 concurrent downloads: all complete; the new policy applies to new requests', async () => {
    const script = join(dir, 'load.js');
    writeFileSync(
      script,
      `const http = require('http');
const agent = new http.Agent({ keepAlive: false, maxSockets: 1000 });
let done = 0, ok = 0, started = 0; const bad = [];
for (let i = 0; i < 200; i++) {
  const req = http.request({ host: '127.0.0.1', port: 3128, path: 'http://allowed.test/slow?chunks=40', agent }, (res) => {
    // In flight: decided, and streaming (40 chunks, 50 ms apart) when the reload comes.
    if (++started === 200) console.log(JSON.stringify({ started }));
    let n = 0; res.on('data', (d) => (n += d.length));
    res.on('end', () => { if (res.statusCode === 200 && n === 40 * 1024) ok++; else bad.push(res.statusCode + '/' + n); if (++done === 200) console.log(JSON.stringify({ ok, bad })); });
  });
  req.on('error', (e) => { bad.push(e.message); if (++done === 200) console.log(JSON.stringify({ ok, bad })); });
  req.end();
}
setTimeout(() => { console.log(JSON.stringify({ ok, bad, timeout: true })); process.exit(1); }, 60000);
`,
    );
    const load = new JsonLinesProcess<{ started?: number; ok?: number; bad?: string[] }>(nodeInNamespace(ns, script, []), 'load');
    try {
      await load.waitFor((m) => m.started === 200);
      writeFileSync(policy, POLICY.replace('host: [allowed.test, .allowed.test]', 'host: [other.test]'));
      process.kill(ppProxy.pid!, 'SIGHUP');
      proxy.kill('SIGHUP');
      await waitFor('the reload', async () => ((proxy as ChildProcess & { log: () => string }).log().includes('policy loaded') ? true : undefined), 15_000);
      const fresh = curl(['-i', 'http://allowed.test/small']);
      assert.match(fresh.stdout, /^HTTP\/1\.1 403/, 'a new request follows the new policy');
      const result = await load.waitFor((m) => m.ok !== undefined, 0, 60_000);
      assert.deepEqual(result.bad, []);
      assert.equal(result.ok, 200, 'every download in flight completed');
    } finally {
      load.kill();
    }
  });

  await t.test('access log: every line is Squid\'s native format, fields in order', async () => {
    const lines = await linesWhere('the access log', () => readFileSync(access, 'utf8').trim().split('\n'), (l) => l.length > 20 && l.some((x) => / CONNECT /.test(x)));
    assert.ok(lines.length > 20);
    const squid = /^(\d+)\.(\d{3}) +(\d+) (\S+) ([A-Z_]+)\/(\d{3}) (\d+) ([A-Z]+) (\S+) (\S+) ([A-Z_]+)\/(\S+) (\S+)$/;
    for (const l of lines) assert.match(l, squid, l);
    const connects = lines.filter((l) => / CONNECT /.test(l)).join('\n');
    assert.match(connects, / TCP_TUNNEL\/200 \d+ CONNECT allowed\.test:443 - HIER_DIRECT\/(203\.0\.113\.10|2001:db8::10) /);
    assert.ok(lines.some((l) => / TCP_DENIED\/403 \d+ GET http:\/\/denied\.test\/small - HIER_NONE\/- /.test(l)));
  });

  await t.test('SIGTERM drains: a download in flight completes, then the proxy exits', async () => {
    const loads = (): number => proxyLog(proxy).split('policy loaded').length - 1;
    const loadsBefore = loads();
    writeFileSync(policy, POLICY);
    proxy.kill('SIGHUP');
    await waitFor('the reload back to the first policy', async () => (loads() > loadsBefore ? true : undefined), 15_000);
    const requestsBefore = (await counts()).httpRequests;
    const dl = spawn('ip', ['netns', 'exec', ns, 'curl', '-sS', '-m', '20', '-o', '/dev/null', '-w', '%{http_code} %{size_download}', '-x', 'http://127.0.0.1:3128', 'http://allowed.test/slow?chunks=40'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    dl.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    const finished = new Promise<void>((r) => dl.on('close', () => r()));
    // In flight: the upstream has the request (its 40 chunks take 2 s) before the drain begins.
    await waitFor('the download to reach the upstream', async () => ((await counts()).httpRequests > requestsBefore ? true : undefined), 15_000);
    proxy.kill('SIGTERM');
    await finished;
    assert.equal(out, '200 40960');
    await waitFor('the proxy to exit', async () => (proxy.exitCode !== null ? true : undefined), 20_000);
    assert.equal(proxy.exitCode, 0);
  });
});
