import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { runPolicyCommand } from '../../../src/inspect/policy';
import { policyFrom } from './helpers';

// dist/test/inspect/policy -> the repository root.
const ROOT = resolve(__dirname, '..', '..', '..', '..');
const EXAMPLES = join(ROOT, 'examples', 'policies');
const ALLOWLIST = join(EXAMPLES, 'egress-allowlist.yaml');

async function run(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runPolicyCommand(argv, { stdout: (s) => out.push(s), stderr: (s) => err.push(s) });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

function tempFile(t: TestContext, name: string, text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-policy-cli-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

test('check explains each rule in one line', async () => {
  const r = await run('check', ALLOWLIST);
  assert.equal(r.code, 0);
  assert.equal(r.err, '');
  assert.equal(
    r.out,
    [
      `${ALLOWLIST}: ok, 3 rules, default deny`,
      '1 dns-allowed   allow  tcp or udp to port 53 when DNS query is example.com (or a subdomain) or api.allowed.test',
      '2 tls-allowed   allow  tcp to port 443 when TLS SNI is example.com (or a subdomain) or api.allowed.test',
      '3 http-allowed  allow  tcp to port 80 when HTTP Host is example.com (or a subdomain) or api.allowed.test',
      'then: deny (drop) everything else; midstream flows: inspect; TLS without SNI: drop; unparsable TLS: drop',
    ].join('\n'),
  );
});

test('check: every example policy is valid', async () => {
  for (const name of ['egress-allowlist.yaml', 'allow-all.yaml', 'egress-domain-lists.yaml']) {
    const r = await run('check', join(EXAMPLES, name));
    assert.equal(r.code, 0, `${name}: ${r.err}`);
  }
  const lists = await run('check', join(EXAMPLES, 'egress-domain-lists.yaml'));
  assert.match(lists.out, /^1 blocked-domains {2}drop {3}when TLS SNI or HTTP Host is blocked\.example\.com \(or a subdomain\) or tracker\.example\.net \(from lists\/blocked-domains\.json\)$/m);
  assert.match(lists.out, /^2 allowed-domains {2}allow {2}tcp to ports 80 or 443 when .*; the name must resolve to the destination address, else drop$/m);
});

test('check: an invalid file prints file:line:column: reason and exits 1', async (t) => {
  const path = tempFile(t, 'bad.yaml', 'default: deny\nrules:\n  - id: a\n    action: allow\n    dst: 10.0.0.1/8\n');
  const r = await run('check', path);
  assert.equal(r.code, 1);
  assert.equal(r.out, '');
  assert.equal(
    r.err,
    `${path}:5:10: Expected an IPv4 or IPv6 address or CIDR (e.g. 192.0.2.0/24, 2001:db8::/32) for dst but received "10.0.0.1/8" (host bits set (did you mean 10.0.0.0/8?))`,
  );
});

test('test: the acceptance allowlist, flow by flow', async () => {
  const flows: Array<[string[], number, string]> = [
    [['--sni', 'www.example.com'], 0, 'allow tls-allowed'],
    [['--sni', 'EXAMPLE.COM.'], 0, 'allow tls-allowed'],
    [['--sni', 'api.allowed.test'], 0, 'allow tls-allowed'],
    [['--sni', 'www.api.allowed.test'], 3, 'drop -'],
    [['--sni', 'example.com.evil.test'], 3, 'drop -'],
    [['--sni', 'www.example.com', '--dport', '8443'], 3, 'drop -'],
    [['--host', 'api.allowed.test'], 0, 'allow http-allowed'],
    [['--host', 'shop.example.com:80'], 0, 'allow http-allowed'],
    [['--host', 'other.test'], 3, 'drop -'],
    [['--dns', 'api.allowed.test'], 0, 'allow dns-allowed'],
    [['--dns', 'a.example.com', '--proto', 'tcp'], 0, 'allow dns-allowed'],
    [['--dns', 'other.test'], 3, 'drop -'],
    [['--payload', 'tls-no-sni'], 3, 'drop -'],
    [['--proto', 'icmp'], 3, 'drop -'],
  ];
  for (const [args, code, expected] of flows) {
    const r = await run('test', ALLOWLIST, '--src', '10.0.1.10', '--dst', '203.0.113.10', ...args, '--json');
    assert.equal(r.code, code, args.join(' '));
    const d = JSON.parse(r.out) as { action: string; rule: { id: string } | null };
    assert.equal(`${d.action} ${d.rule?.id ?? '-'}`, expected, args.join(' '));
  }
});

test('test: text output names the verdict, the rule, its sid and line', async () => {
  const allowed = await run('test', ALLOWLIST, '--src', '10.0.1.10', '--dst', '203.0.113.10', '--sni', 'www.example.com');
  assert.equal(allowed.code, 0);
  assert.equal(allowed.out, 'verdict: allow\nrule: tls-allowed (sid 1000002, line 23): TLS to an allowed name');
  const denied = await run('test', ALLOWLIST, '--src', '10.0.1.10', '--dst', '203.0.113.10', '--sni', 'evil.test');
  assert.equal(denied.code, 3);
  assert.equal(denied.out, 'verdict: drop\ndecided by: the default (no rule matched; default deny)');
  const noSni = await run('test', ALLOWLIST, '--src', '10.0.1.10', '--dst', '203.0.113.10', '--payload', 'tls-no-sni');
  assert.equal(noSni.out, 'verdict: drop\ndecided by: tls_without_sni: drop (TLS without SNI; no rule matched)');
});

test('test: not final without the payload says which name it needs (exit 4)', async () => {
  const r = await run('test', ALLOWLIST, '--src', '10.0.1.10', '--dst', '203.0.113.10');
  assert.equal(r.code, 4);
  assert.equal(r.out, 'verdict: not final without the payload\nwaiting for: rule tls-allowed (line 23) matches on names; give --sni NAME (TLS SNI)');
  const json = await run('test', ALLOWLIST, '--src', '10.0.1.10', '--dst', '203.0.113.10', '--dport', '80', '--json');
  assert.equal(json.code, 4);
  assert.deepEqual(JSON.parse(json.out), {
    final: false,
    waiting_for: { id: 'http-allowed', sid: 1000003, position: 3, line: 30, message: 'HTTP to an allowed name' },
    needs: ['--host NAME (HTTP Host)'],
  });
});

test('test: midstream, endpoint and verify_dns', async (t) => {
  const path = tempFile(
    t,
    'p.yaml',
    'midstream: allow\nrules:\n' +
      '  - {id: prod, action: reject, endpoint: vpce-0123456789abcdef0, dst: 198.51.100.0/24}\n' +
      '  - {id: checked, action: allow, tls_sni: .example.com, verify_dns: true, on_mismatch: reject}\n',
  );
  const mid = await run('test', path, '--src', '10.0.0.1', '--dst', '198.51.100.1', '--midstream');
  assert.equal(mid.out, 'verdict: allow\ndecided by: midstream: allow (the flow arrived mid-stream)');
  const prod = await run('test', path, '--src', '10.0.0.1', '--dst', '198.51.100.1', '--endpoint', 'vpce-0123456789abcdef0', '--json');
  assert.equal(prod.code, 3);
  assert.equal((JSON.parse(prod.out) as { action: string }).action, 'reject');
  const other = await run('test', path, '--src', '10.0.0.1', '--dst', '198.51.100.1', '--sni', 'a.example.com');
  assert.equal(
    other.out,
    'verdict: allow\n' +
      'rule: checked (sid 1000002, line 4): allow when TLS SNI is example.com or a subdomain; the name must resolve to the destination address, else reject\n' +
      'verify_dns: the name must resolve to 198.51.100.1, else reject\n' +
      'note: no --endpoint given, so rules with an endpoint key did not match',
  );
});

test('test: usage mistakes exit 2', async () => {
  const cases: Array<[string[], RegExp]> = [
    [['test', ALLOWLIST, '--src', '10.0.0.1'], /--dst IP is required/],
    [['test', ALLOWLIST, '--src', '10.0.0.1', '--dst', '192.0.2.1', '--sni', 'a', '--host', 'b'], /give one of --sni, --host, --dns, --payload \(received --sni, --host\)/],
    [['test', ALLOWLIST, '--src', '10.0.0.1', '--dst', '192.0.2.1', '--proto', 'sctp'], /Expected one of tcp, udp, icmp, icmpv6 for --proto but received "sctp"/],
    [['test', ALLOWLIST, '--src', '10.0.0.1', '--dst', '192.0.2.1', '--dport', '70000'], /Expected an integer between 0 and 65535 for --dport/],
    [['test', ALLOWLIST, '--src', '10.0.0.1', '--dst', '192.0.2.1', '--endpoint', 'vpce-xyz'], /for --endpoint but received "vpce-xyz"/],
    [['test', ALLOWLIST, '--bogus'], /Unknown option '--bogus'/],
    [['check'], /expected one FILE but received 0/],
    [['frobnicate'], /unknown subcommand "frobnicate"/],
  ];
  for (const [argv, message] of cases) {
    const r = await run(...argv);
    assert.equal(r.code, 2, argv.join(' '));
    assert.match(r.err, message);
  }
});

test('import: an ANF list becomes a rule that a policy accepts', async (t) => {
  const text = await run('import', join(EXAMPLES, 'lists', 'allowed-domains.txt'));
  assert.equal(text.code, 0);
  const lines = text.out.split('\n');
  assert.equal(lines[0], `# 3 names from ${join(EXAMPLES, 'lists', 'allowed-domains.txt')} (text form; TLS SNI and HTTP Host)`);
  const policy = policyFrom(text.out);
  assert.deepEqual(
    policy.rules.map((r) => [r.id, r.action, r.match.tlsSni, r.match.httpHost]),
    [['allowed-domains', 'allow', ['.example.com', 'api.allowed.test', 'example.org'], ['.example.com', 'api.allowed.test', 'example.org']]],
  );

  const json = await run('import', join(EXAMPLES, 'lists', 'blocked-domains.json'), '--id', 'no-trackers');
  const fromJson = policyFrom(json.out).rules[0];
  assert.deepEqual([fromJson.id, fromJson.action, fromJson.match.tlsSni], ['no-trackers', 'drop', ['.blocked.example.com', 'tracker.example.net']]);

  const overridden = await run('import', join(EXAMPLES, 'lists', 'blocked-domains.json'), '--action', 'alert');
  assert.equal(policyFrom(overridden.out).rules[0].action, 'alert');

  const bad = tempFile(t, 'bad.txt', '.example.com\n*.*.example.com\n');
  const refused = await run('import', bad);
  assert.equal(refused.code, 1);
  assert.equal(refused.err, `${bad}:2:1: Expected a domain (example.com, or .example.com for the domain and its subdomains) for a domain list entry but received "*.*.example.com" (a "*" that is not the leading "*." label)`);
});

test('--help for the command and each subcommand', async () => {
  for (const argv of [['--help'], ['check', '--help'], ['test', '--help'], ['import', '--help']]) {
    const r = await run(...argv);
    assert.equal(r.code, 0, argv.join(' '));
    assert.match(r.out, /^Usage: gatehouse policy/);
  }
});
