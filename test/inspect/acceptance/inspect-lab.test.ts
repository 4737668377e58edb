/**
 * Acceptance for `gatehouse inspect`, in the lab: inspect is the appliance,
 * the lab's emulated GWLB carries app's traffic to it, and real clients
 * (curl, dig, a Node TLS client) and servers (nginx, dnsmasq) are the
 * judges, with the appliance's EVE log and health.
 *
 * The policy: allow (and log) TLS and HTTP to .example.com and
 * api.allowed.test, with the name-to-address check on TLS; allow DNS for
 * those names; reset every other TCP connection; drop everything else.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { test } from 'node:test';
import { GENEVE_REASONS } from '../../../src/geneve/reasons';
import { LAB_ADDRESSES, labDown, labExecCapture, labUp } from '../../../src/lab';
import { namespaceName } from '../../../src/lab/plan';
import { CLI_MAIN } from '../../../src/lab/programs';
import { skipUnlessNetAdmin } from '../../helpers/system';
import { applianceHealth, assertLabGone, labEmu, pidAlive, uniqueLabName, waitFor } from '../../lab/lab-helpers';

const POLICY = `# the acceptance policy
default: deny
rules:
  - id: allow-dns
    action: alert
    message: "allow-dns: DNS for allowed names"
    protocol: udp
    dst_port: 53
    dns_query: [".example.com", "api.allowed.test"]
  - id: allow-tls
    action: alert
    message: "allow-tls: TLS to allowed names"
    protocol: tcp
    dst_port: 443
    tls_sni: [".example.com", "api.allowed.test"]
    verify_dns: true
    on_mismatch: reject
  - id: allow-http
    action: alert
    message: "allow-http: HTTP to allowed names"
    protocol: tcp
    dst_port: 80
    http_host: [".example.com", "api.allowed.test"]
  - id: reset-tcp
    action: reject
    message: "reset-tcp: no other TCP"
    protocol: tcp
`;

/** Default Suricata signature ids of POLICY's rules: 1000000 + position. */
const SID = { allowDns: 1_000_001, allowTls: 1_000_002, allowHttp: 1_000_003, resetTcp: 1_000_004 } as const;

interface EveLine {
  event_type: string;
  src_ip: string;
  dest_ip: string;
  dest_port?: number;
  alert?: { action: string; signature_id: number; signature: string };
  tls?: { sni?: string };
  http?: { hostname?: string };
  dns?: { rrname?: string };
  flow?: { pkts_toserver: number; pkts_toclient: number; bytes_toserver: number; bytes_toclient: number };
}

function eveLines(file: string): EveLine[] {
  let text = '';
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as EveLine);
}

function count(text: string, needle: string): number {
  return text.split(needle).length - 1;
}

test('inspect in the lab: names allowed and denied by SNI, Host and DNS; verify_dns; reload; malformed GENEVE', { timeout: 300_000 }, async (t) => {
  if (skipUnlessNetAdmin(t)) return;
  const dir = mkdtempSync(join(tmpdir(), 'gh-inspect-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const policy = join(dir, 'policy.yaml');
  const eve = join(dir, 'eve.json');
  writeFileSync(policy, POLICY);
  const lab = uniqueLabName();
  t.after(async () => {
    await labDown(lab);
    assertLabGone(lab);
  });
  const cmd = [process.execPath, CLI_MAIN, 'inspect', '--policy', policy, '-p', '8080', '-j', '--eve', eve].map((a) => `'${a}'`).join(' ');
  const info = await labUp({ name: lab, appliance: `exec ${cmd}` });
  const applianceLog = (): string => readFileSync(info.logs.appliance, 'utf8');
  const app = (argv: string[]) => labExecCapture(lab, 'app', argv, 30_000);
  const curl = (url: string, extra: string[] = []) => app(['curl', '-sS', '-k', '-m', '8', ...extra, url]);
  const alerts = (pred: (e: EveLine) => boolean) => eveLines(eve).filter((e) => e.event_type === 'alert' && pred(e));
  const dnsName = LAB_ADDRESSES.internet.v4;

  await t.test('DNS: an allowed name answers, a denied name gets no answer; EVE names the rule', async () => {
    const ok = await app(['dig', '+short', '+tries=1', '+time=3', `@${dnsName}`, 'www.example.com', 'A']);
    assert.equal(ok.stdout.trim(), LAB_ADDRESSES.internet.v4, ok.stderr);
    const denied = await app(['dig', '+tries=1', '+time=2', `@${dnsName}`, 'blocked.example.net', 'A']);
    assert.doesNotMatch(denied.stdout, /ANSWER SECTION/);
    assert.match(denied.stdout + denied.stderr, /timed out|no servers could be reached/);
    await waitFor('the DNS alert', async () => (alerts((e) => e.dns?.rrname === 'www.example.com').length ? true : undefined), 10_000);
    const hit = alerts((e) => e.dns?.rrname === 'www.example.com')[0];
    assert.equal(hit.alert?.action, 'allowed');
    assert.match(hit.alert?.signature ?? '', /allow-dns/);
    assert.equal(hit.alert?.signature_id, SID.allowDns, 'the rule\'s own signature id (1000000 + its position)');
  });

  await t.test('TLS: allowed SNI connects, a denied one is reset; EVE names the rule for each', async () => {
    for (const name of ['www.example.com', 'api.allowed.test']) {
      const r = await curl(`https://${name}/`);
      assert.equal(r.code, 0, `${name}: ${r.stderr}`);
      assert.match(r.stdout, new RegExp(name.replace(/\./g, '\\.')));
    }
    // DNS for the denied name is denied too: the client knows the address anyway.
    const denied = await curl('https://blocked.example.net/', ['--resolve', `blocked.example.net:443:${LAB_ADDRESSES.internet.v4}`]);
    assert.notEqual(denied.code, 0);
    assert.match(denied.stderr, /reset|Connection reset|SSL_ERROR_SYSCALL|unexpected eof/i, denied.stderr);
    await waitFor('the TLS alerts', async () => (alerts((e) => e.tls?.sni === 'blocked.example.net').length ? true : undefined), 10_000);
    const allowed = alerts((e) => e.tls?.sni === 'www.example.com');
    assert.ok(allowed.length >= 1);
    assert.equal(allowed[0].alert?.action, 'allowed');
    assert.match(allowed[0].alert?.signature ?? '', /allow-tls/);
    assert.equal(allowed[0].alert?.signature_id, SID.allowTls);
    const blocked = alerts((e) => e.tls?.sni === 'blocked.example.net')[0];
    assert.equal(blocked.alert?.action, 'blocked');
    assert.match(blocked.alert?.signature ?? '', /reset-tcp/);
    assert.equal(blocked.alert?.signature_id, SID.resetTcp);
  });

  await t.test('HTTP: an allowed Host gets the page, a denied one is reset', async () => {
    const ok = await curl('http://api.example.com/');
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /api\.example\.com/);
    const denied = await curl('http://blocked.example.net/', ['--resolve', `blocked.example.net:80:${LAB_ADDRESSES.internet.v4}`]);
    assert.notEqual(denied.code, 0);
    assert.match(denied.stderr, /reset|Empty reply|Recv failure/i, denied.stderr);
    await waitFor('the HTTP alerts', async () => (alerts((e) => e.http?.hostname === 'blocked.example.net').length ? true : undefined), 10_000);
    assert.match(alerts((e) => e.http?.hostname === 'api.example.com')[0]?.alert?.signature ?? '', /allow-http/);
    assert.equal(alerts((e) => e.http?.hostname === 'api.example.com')[0]?.alert?.signature_id, SID.allowHttp);
    assert.match(alerts((e) => e.http?.hostname === 'blocked.example.net')[0]?.alert?.signature ?? '', /reset-tcp/);
  });

  await t.test('verify_dns: an allowed SNI sent to an address the name does not resolve to is refused and logged', async () => {
    // A second address on the internet host, served by the same nginx, that no name resolves to.
    const extra = '203.0.113.11';
    const internet = namespaceName(lab, 'internet');
    await labExecCapture(lab, 'internet', ['ip', 'addr', 'add', `${extra}/25`, 'dev', 'veth-gwlb'], 10_000);
    const direct = await labExecCapture(lab, 'internet', ['curl', '-sS', '-k', '-m', '5', '--resolve', `www.example.com:443:${extra}`, 'https://www.example.com/'], 15_000);
    assert.equal(direct.code, 0, `nginx answers on ${extra} inside ${internet}: ${direct.stderr}`);
    const r = await curl('https://www.example.com/', ['--resolve', `www.example.com:443:${extra}`]);
    assert.notEqual(r.code, 0, 'refused');
    const mismatch = await waitFor('the mismatch alert', async () => alerts((e) => e.dest_ip === extra && /mismatch/.test(e.alert?.signature ?? ''))[0], 10_000);
    assert.equal(mismatch.alert?.action, 'blocked');
    assert.equal(mismatch.tls?.sni, 'www.example.com');
    assert.match(applianceLog(), /mismatch/);
    await labExecCapture(lab, 'internet', ['ip', 'addr', 'del', `${extra}/25`, 'dev', 'veth-gwlb'], 10_000);
  });

  await t.test('reload: new flows follow the new policy, an established allowed flow keeps going; a broken file is refused', async () => {
    // An allowed TLS connection, opened now and used after the reload.
    const script = join(dir, 'held.js');
    writeFileSync(
      script,
      `const tls = require('tls');
const s = tls.connect({ host: '${LAB_ADDRESSES.internet.v4}', port: 443, servername: 'www.example.com', rejectUnauthorized: false }, () => console.log('connected'));
let body = '';
s.on('data', (d) => (body += d));
s.on('end', () => { console.log(JSON.stringify({ status: body.split('\\r\\n')[0] })); process.exit(0); });
s.on('error', (e) => { console.log(JSON.stringify({ error: e.message })); process.exit(1); });
process.stdin.once('data', () => s.write('GET / HTTP/1.1\\r\\nHost: www.example.com\\r\\nConnection: close\\r\\n\\r\\n'));
setTimeout(() => { console.log(JSON.stringify({ error: 'timeout' })); process.exit(2); }, 60000);
`,
    );
    const held = spawn('ip', ['netns', 'exec', namespaceName(lab, 'app'), process.execPath, script], { stdio: ['pipe', 'pipe', 'inherit'] });
    t.after(() => held.kill('SIGKILL'));
    const lines: string[] = [];
    createInterface({ input: held.stdout! }).on('line', (l) => lines.push(l));
    await waitFor('the held connection', async () => (lines.includes('connected') ? true : undefined), 15_000);

    // The new policy: www.example.com is no longer allowed.
    const loaded = count(applianceLog(), 'policy loaded');
    writeFileSync(policy, POLICY.replaceAll('[".example.com", "api.allowed.test"]', '["api.example.com", "api.allowed.test"]'));
    process.kill(info.pids.appliance, 'SIGHUP');
    await waitFor('the reload', async () => (count(applianceLog(), 'policy loaded') > loaded ? true : undefined), 15_000);
    const now = await curl('https://www.example.com/');
    assert.notEqual(now.code, 0, 'a new connection to the name no longer allowed is refused');
    const still = await curl('https://api.example.com/');
    assert.equal(still.code, 0, still.stderr);

    held.stdin!.write('go\n');
    const result = await waitFor('the held connection\'s answer', async () => lines.find((l) => l.startsWith('{')), 20_000);
    assert.match(result, /HTTP\/1\.1 200/, 'the established allowed flow was not dropped');

    const refused = count(applianceLog(), 'policy refused');
    writeFileSync(policy, 'default: deny\nrules:\n  - id: broken\n    action: maybe\n');
    process.kill(info.pids.appliance, 'SIGHUP');
    await waitFor('the refusal', async () => (count(applianceLog(), 'policy refused') > refused ? true : undefined), 15_000);
    assert.match(applianceLog(), /policy\.yaml:4:\d+/);
    const after = await curl('https://api.example.com/');
    assert.equal(after.code, 0, `the running policy stays in force: ${after.stderr}`);
    const h = await applianceHealth(lab);
    assert.equal(h.code, 200);
  });

  await t.test('malformed GENEVE mixed in at load: none comes back, no good packet lost', async () => {
    writeFileSync(policy, 'default: allow\nrules: []\n');
    const loaded = count(applianceLog(), 'policy loaded');
    process.kill(info.pids.appliance, 'SIGHUP');
    await waitFor('the allow-all reload', async () => (count(applianceLog(), 'policy loaded') > loaded ? true : undefined), 15_000);
    const r = await labEmu(lab, ['--rate', '5000', '--duration', '2', '--enis', '4', '--flows', '1000', '--v6', '20', '--malformed', '20']);
    for (const kind of GENEVE_REASONS) {
      assert.ok(r.malformed[kind]?.sent > 0, `${kind} sent`);
      assert.equal(r.malformed[kind].returned, 0, `${kind} came back`);
    }
    assert.equal(r.invalid, 0, JSON.stringify(r.invalid_by_reason));
    assert.equal(r.good_all_returned, true);
    assert.equal(r.loss_pct, 0);
    assert.ok(pidAlive(info.pids.appliance));
    const m = await applianceHealth(lab, '/metrics');
    assert.match(m.body, /^gatehouse_inspect_dropped_malformed_total [1-9]\d*$/m);
  });

  await t.test('SIGTERM: the appliance stops and logs the open flows', async () => {
    const pid = info.pids.appliance;
    process.kill(pid, 'SIGTERM');
    await waitFor('inspect to exit', async () => (pidAlive(pid) ? undefined : true), 30_000);
    const flows = eveLines(eve).filter((e) => e.event_type === 'flow');
    assert.ok(flows.length > 0, 'flow events');
    assert.ok(flows.some((f) => (f.flow?.pkts_toserver ?? 0) > 0 && (f.flow?.pkts_toclient ?? 0) > 0), 'flows with packets both ways');
  });
});
