/**
 * The example hook scripts in examples/hooks/, run for real: in a fresh
 * network namespace with two TUN devices named as gwlbtun names them, each
 * script's CREATE must build what it promises (checked in the kernel's own
 * listings and with packets written into gwi-<X> and read back from gwo-<X>)
 * and its DESTROY must leave nothing: rules, routes, iptables rules and
 * qdiscs are compared with what was there before.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { interfaceNames } from '../../src/tunnel/interface-names';
import { TUNNEL_DEFAULTS, parseTunnelOptions } from '../../src/tunnel/options';
import { createNamespaces, sh, skipUnlessNetAdmin, uniqueSuffix } from '../helpers/system';

const ROOT = join(__dirname, '..', '..', '..');
const HOOKS = join(ROOT, 'examples', 'hooks');
const UNIT = join(ROOT, 'packaging', 'gatehouse-tunnel.service');
const SCRIPTS = ['passthrough.sh', 'route.sh', 'nat.sh', 'overlapping-cidrs.sh'] as const;
type Script = (typeof SCRIPTS)[number];

interface Endpoint {
  eni: bigint;
  hex: string;
  gwi: string;
  gwo: string;
}

function endpoint(eni: bigint): Endpoint {
  return { eni, hex: eni.toString(16).padStart(17, '0'), ...interfaceNames(eni) };
}

/** Two random endpoints whose ids differ in their low 28 bits (the scripts' table number). */
function twoEndpoints(): [Endpoint, Endpoint] {
  const a = randomBytes(8).readBigUInt64BE();
  let b = randomBytes(8).readBigUInt64BE();
  while ((b & 0xfffffffn) === (a & 0xfffffffn)) b = randomBytes(8).readBigUInt64BE();
  return [endpoint(a), endpoint(b)];
}

/** Computed here, not read from the scripts: table and mark 0x10000000 + low 28 bits; zone 1 + low 16 bits mod 65535. */
const tableOf = (e: Endpoint): number => 0x10000000 + Number(e.eni & 0xfffffffn);
const zoneOf = (e: Endpoint): number => (Number(e.eni & 0xffffn) % 65535) + 1;

function inNs(ns: string, cmd: string, args: string[]): string {
  return sh('ip', ['netns', 'exec', ns, cmd, ...args]);
}

function hook(ns: string, script: Script, action: 'CREATE' | 'DESTROY', e: Endpoint, env: Record<string, string> = {}): string {
  const r = spawnSync('ip', ['netns', 'exec', ns, join(HOOKS, script), action, e.gwi, e.gwo, e.hex], {
    encoding: 'utf8',
    env: { ...process.env, ...env },
    timeout: 30_000,
  });
  assert.equal(r.status, 0, `${script} ${action} failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}

/** A namespace with two endpoints' TUNs (persistent, up) and an egress veth "eth1" (peer eth1p, for nat.sh). */
function appliance(t: TestContext, extra: string[] = []): { ns: string; a: Endpoint; b: Endpoint; extra: string[] } {
  const ns = `ghhk${uniqueSuffix()}`;
  const others = extra.map((n) => `${n}${uniqueSuffix()}`);
  const cleanup = createNamespaces([ns, ...others]);
  t.after(cleanup);
  const [a, b] = twoEndpoints();
  for (const e of [a, b]) {
    for (const name of [e.gwi, e.gwo]) {
      inNs(ns, 'ip', ['tuntap', 'add', 'mode', 'tun', 'name', name]);
      inNs(ns, 'ip', ['link', 'set', name, 'up']);
      // Start strict, so that a script that forgets rp_filter is caught.
      inNs(ns, 'sysctl', ['-qw', `net.ipv4.conf.${name}.rp_filter=1`]);
    }
  }
  inNs(ns, 'ip', ['link', 'add', 'eth1', 'type', 'veth', 'peer', 'name', 'eth1p']);
  inNs(ns, 'ip', ['link', 'set', 'eth1', 'up']);
  return { ns, a, b, extra: others };
}

/** Everything a hook may change, as the kernel lists it (sysctls aside). */
function snapshot(ns: string, endpoints: Endpoint[]): Record<string, string> {
  const s: Record<string, string> = {};
  for (const family of ['-4', '-6']) {
    s[`ip ${family} rule`] = inNs(ns, 'ip', [family, 'rule', 'show']);
    s[`ip ${family} route`] = inNs(ns, 'ip', [family, 'route', 'show', 'table', 'all']);
  }
  for (const cmd of ['iptables', 'ip6tables']) {
    for (const table of ['raw', 'mangle', 'nat', 'filter']) s[`${cmd} -t ${table}`] = inNs(ns, cmd, ['-w', '-t', table, '-S']);
  }
  for (const e of endpoints) {
    for (const dev of [e.gwi, e.gwo]) {
      s[`qdisc ${dev}`] = inNs(ns, 'tc', ['qdisc', 'show', 'dev', dev]);
      // The kernel numbers actions afresh each time: a rebuilt filter differs only there.
      s[`filter ${dev}`] = inNs(ns, 'tc', ['filter', 'show', 'dev', dev, 'ingress']).replace(/\bindex \d+ ref/g, 'index N ref');
    }
  }
  return s;
}

const sysctl = (ns: string, key: string): string => inNs(ns, 'sysctl', ['-n', key]).trim();
const tagged = (s: Record<string, string>, e: Endpoint): string[] =>
  Object.entries(s)
    .filter(([k]) => k.includes('tables'))
    .flatMap(([k, v]) => v.split('\n').filter((l) => l.includes(`--comment gatehouse-${e.hex} `)).map((l) => `${k.split(' ')[0]} ${l}`));

/** What CREATE of each script must have built for endpoint e. */
const EXPECT: Record<Script, (ns: string, s: Record<string, string>, e: Endpoint) => void> = {
  'passthrough.sh': (ns, s, e) => {
    assert.match(s[`qdisc ${e.gwi}`], /qdisc ingress ffff:/);
    assert.match(s[`filter ${e.gwi}`], /match 00000000\/00000000 at 0/);
    assert.match(s[`filter ${e.gwi}`], new RegExp(`mirred \\(Egress Redirect to device ${e.gwo}\\)`));
    assert.equal(s[`filter ${e.gwi}`].match(/mirred/g)?.length, 1, 'exactly one filter');
    assert.equal(sysctl(ns, `net.ipv4.conf.${e.gwi}.rp_filter`), '0');
  },
  'route.sh': (ns, s, e) => {
    for (const family of ['-4', '-6']) {
      assert.match(s[`ip ${family} rule`], new RegExp(`^1000:\\s+from all iif ${e.gwi} lookup ${tableOf(e)}\\s*$`, 'm'));
      const routes = inNs(ns, 'ip', [family, 'route', 'show', 'table', String(tableOf(e))]);
      assert.match(routes, new RegExp(`^default dev ${e.gwo} `));
    }
    assert.equal(sysctl(ns, 'net.ipv4.ip_forward'), '1');
    assert.equal(sysctl(ns, 'net.ipv6.conf.all.forwarding'), '1');
    assert.equal(sysctl(ns, `net.ipv4.conf.${e.gwi}.rp_filter`), '0');
  },
  'nat.sh': (ns, s, e) => {
    const mark = `0x${tableOf(e).toString(16)}`;
    const rules = tagged(s, e).join('\n');
    for (const cmd of ['iptables', 'ip6tables']) {
      assert.match(rules, new RegExp(`^${cmd} -A PREROUTING -i ${e.gwi} -m conntrack --ctstate NEW .*-j CONNMARK --set-xmark ${mark}/0xffffffff$`, 'm'));
      assert.match(rules, new RegExp(`^${cmd} -A PREROUTING -i eth1 -m connmark --mark ${mark} .*-j CONNMARK --restore-mark`, 'm'));
      assert.match(rules, new RegExp(`^${cmd} -A POSTROUTING -o eth1 -m connmark --mark ${mark} .*-j MASQUERADE$`, 'm'));
      assert.match(rules, new RegExp(`^${cmd} -A FORWARD -i ${e.gwi} -o eth1 .*-j ACCEPT$`, 'm'));
      assert.match(rules, new RegExp(`^${cmd} -A FORWARD -i eth1 -o ${e.gwo} -m conntrack --ctstate RELATED,ESTABLISHED .*-j ACCEPT$`, 'm'));
    }
    assert.equal(tagged(s, e).length, 10, rules);
    for (const family of ['-4', '-6']) {
      assert.match(s[`ip ${family} rule`], new RegExp(`^1000:\\s+from all fwmark ${mark} lookup ${tableOf(e)}\\s*$`, 'm'));
      assert.match(inNs(ns, 'ip', [family, 'route', 'show', 'table', String(tableOf(e))]), new RegExp(`^default dev ${e.gwo} `));
    }
    assert.equal(sysctl(ns, `net.ipv4.conf.${e.gwi}.rp_filter`), '0');
  },
  'overlapping-cidrs.sh': (ns, s, e) => {
    const rules = tagged(s, e);
    assert.deepEqual(
      rules.sort(),
      ['ip6tables', 'iptables'].map((cmd) => `${cmd} -A PREROUTING -i ${e.gwi} -m comment --comment gatehouse-${e.hex} -j CT --zone ${zoneOf(e)}`),
    );
    for (const family of ['-4', '-6']) {
      assert.match(s[`ip ${family} rule`], new RegExp(`^1000:\\s+from all iif ${e.gwi} lookup ${tableOf(e)}\\s*$`, 'm'));
      assert.match(inNs(ns, 'ip', [family, 'route', 'show', 'table', String(tableOf(e))]), new RegExp(`^default dev ${e.gwo} `));
    }
    assert.equal(sysctl(ns, `net.ipv4.conf.${e.gwi}.rp_filter`), '0');
  },
};

test('the examples are executable bash with strict mode, and nothing else is in examples/hooks', () => {
  assert.deepEqual(readdirSync(HOOKS).filter((f) => f.endsWith('.sh')).sort(), [...SCRIPTS].sort());
  for (const script of SCRIPTS) {
    const path = join(HOOKS, script);
    assert.equal(statSync(path).mode & 0o111, 0o111, `${script} is executable`);
    const r = spawnSync('bash', ['-n', path], { encoding: 'utf8' });
    assert.equal(r.status, 0, `${script}: ${r.stderr}`);
    assert.match(sh('head', ['-n', '1', path]), /^#!\/usr\/bin\/env bash\n$/);
    assert.match(sh('cat', [path]), /^set -euo pipefail$/m);
  }
});

test('the examples refuse wrong arguments before touching anything', (t) => {
  if (skipUnlessNetAdmin(t)) return;
  const { ns, a } = appliance(t);
  const before = snapshot(ns, [a]);
  for (const script of SCRIPTS) {
    for (const args of [[], ['UPDATE', a.gwi, a.gwo, a.hex], ['CREATE', 'eth0', a.gwo, a.hex], ['CREATE', a.gwi, a.gwo, 'vpce-1'], ['CREATE', a.gwi, a.gwo]]) {
      const r = spawnSync('ip', ['netns', 'exec', ns, join(HOOKS, script), ...args], { encoding: 'utf8' });
      assert.equal(r.status, 64, `${script} ${args.join(' ')}`);
      assert.match(r.stderr, /^usage: /);
    }
  }
  assert.deepEqual(snapshot(ns, [a]), before);
});

for (const script of SCRIPTS) {
  test(`${script}: CREATE builds it, twice is harmless, DESTROY removes exactly its own endpoint's state`, (t) => {
    if (skipUnlessNetAdmin(t)) return;
    const { ns, a, b } = appliance(t);
    snapshot(ns, [a, b]); // the first listing may create iptables' built-in chains
    const before = snapshot(ns, [a, b]);

    hook(ns, script, 'CREATE', a);
    const afterA = snapshot(ns, [a, b]);
    EXPECT[script](ns, afterA, a);
    assert.notDeepEqual(afterA, before);

    hook(ns, script, 'CREATE', a);
    assert.deepEqual(snapshot(ns, [a, b]), afterA, 'a second CREATE adds nothing');

    // A second endpoint alongside: its DESTROY must not touch the first one's state.
    hook(ns, script, 'CREATE', b);
    const both = snapshot(ns, [a, b]);
    EXPECT[script](ns, both, b);
    EXPECT[script](ns, both, a);
    hook(ns, script, 'DESTROY', b);
    assert.deepEqual(snapshot(ns, [a, b]), afterA, 'DESTROY b leaves a as it was');

    hook(ns, script, 'DESTROY', a);
    assert.deepEqual(snapshot(ns, [a, b]), before, 'DESTROY leaves nothing behind');
    hook(ns, script, 'DESTROY', a);
    assert.deepEqual(snapshot(ns, [a, b]), before, 'a second DESTROY is harmless');
  });
}

test('route.sh and overlapping-cidrs.sh refuse an endpoint whose table is taken', (t) => {
  if (skipUnlessNetAdmin(t)) return;
  const { ns, a } = appliance(t);
  // Another endpoint (other names) whose id has the same low 28 bits: same table number.
  const clash = endpoint((a.eni ^ (1n << 40n)) & 0xffffffffffffffffn);
  for (const name of [clash.gwi, clash.gwo]) inNs(ns, 'ip', ['tuntap', 'add', 'mode', 'tun', 'name', name]);
  for (const script of ['route.sh', 'overlapping-cidrs.sh'] as const) {
    hook(ns, script, 'CREATE', a);
    const r = spawnSync('ip', ['netns', 'exec', ns, join(HOOKS, script), 'CREATE', clash.gwi, clash.gwo, clash.hex], { encoding: 'utf8' });
    assert.equal(r.status, 1);
    assert.match(r.stderr, new RegExp(`table ${tableOf(a)} is already used by another rule: 1000:\\s+from all iif ${a.gwi} lookup`));
    hook(ns, script, 'DESTROY', a);
  }
});

/**
 * Writes one UDP packet into gwi (as the tunnel does with what GWLB sends)
 * and reports the first packet carrying the same marker that comes out of
 * gwo or gwi within the time limit, as JSON (or {"none": true}). Python's
 * own packet code, so no gatehouse code judges the scripts.
 */
const TUN_PROBE = String.raw`
import fcntl, json, os, select, socket, struct, sys, time
def csum(b):
    if len(b) % 2: b += b'\0'
    s = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    while s >> 16: s = (s & 0xffff) + (s >> 16)
    return (~s) & 0xffff
def tun(name):
    fd = os.open('/dev/net/tun', os.O_RDWR | os.O_NONBLOCK)
    fcntl.ioctl(fd, 0x400454ca, struct.pack('16sH', name.encode(), 0x0001 | 0x1000))  # TUNSETIFF, IFF_TUN | IFF_NO_PI
    return fd
def udp(v, src, dst, sport, dport, payload):
    fam = socket.AF_INET if v == 4 else socket.AF_INET6
    s, d = socket.inet_pton(fam, src), socket.inet_pton(fam, dst)
    ulen = 8 + len(payload)
    pseudo = s + d + (struct.pack('!BBH', 0, 17, ulen) if v == 4 else struct.pack('!I3xB', ulen, 17))
    u = struct.pack('!HHHH', sport, dport, ulen, 0) + payload
    u = u[:6] + struct.pack('!H', csum(pseudo + u) or 0xffff) + u[8:]
    if v == 4:
        h = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + ulen, 1, 0, 64, 17, 0, s, d)
        return h[:10] + struct.pack('!H', csum(h)) + h[12:] + u
    return struct.pack('!IHBB16s16s', 6 << 28, ulen, 17, 64, s, d) + u
def parse(p):
    v = p[0] >> 4
    if v == 4:
        fam, ttl, proto, s, d, l4 = socket.AF_INET, p[8], p[9], p[12:16], p[16:20], p[(p[0] & 15) * 4:]
    else:
        fam, ttl, proto, s, d, l4 = socket.AF_INET6, p[7], p[6], p[8:24], p[24:40], p[40:]
    out = {'version': v, 'ttl': ttl, 'proto': proto, 'src': socket.inet_ntop(fam, s), 'dst': socket.inet_ntop(fam, d)}
    if proto == 17 and len(l4) >= 8:
        out['sport'], out['dport'] = struct.unpack('!HH', l4[:4])
        out['payload'] = l4[8:].decode('latin1')
    return out
gwi, gwo, v, src, dst, sport, dport, marker, wait = sys.argv[1:10]
fi, fo = tun(gwi), tun(gwo)
time.sleep(0.2)  # let the kernel's own first packets (IPv6 router solicitations) go by
os.write(fi, udp(int(v), src, dst, int(sport), int(dport), marker.encode()))
deadline = time.time() + float(wait)
while time.time() < deadline:
    ready, _, _ = select.select([fi, fo], [], [], max(0.0, deadline - time.time()))
    for fd in ready:
        p = parse(os.read(fd, 65535))
        if marker in p.get('payload', ''):
            p['iface'] = gwo if fd == fo else gwi
            print(json.dumps(p)); sys.exit(0)
print(json.dumps({'none': True}))
`;

/** Answers every UDP datagram with "reply:" + its payload; stops after 20 s or 10 datagrams. */
const UDP_RESPONDER = String.raw`
import socket, sys, time
fam = socket.AF_INET6 if ':' in sys.argv[1] else socket.AF_INET
s = socket.socket(fam, socket.SOCK_DGRAM); s.bind((sys.argv[1], int(sys.argv[2]))); s.settimeout(1)
print('ready', flush=True)
end, n = time.time() + 20, 0
while time.time() < end and n < 10:
    try: data, peer = s.recvfrom(2048)
    except socket.timeout: continue
    s.sendto(b'reply:' + data, peer); n += 1
`;

interface Probed {
  none?: true;
  iface?: string;
  version?: number;
  ttl?: number;
  src?: string;
  dst?: string;
  sport?: number;
  dport?: number;
  payload?: string;
}

function probe(ns: string, e: Endpoint, v: 4 | 6, src: string, dst: string, waitS: number): Probed {
  const marker = `gh-${uniqueSuffix()}`;
  const out = inNs(ns, 'python3', ['-c', TUN_PROBE, e.gwi, e.gwo, String(v), src, dst, '40000', '5353', marker, String(waitS)]);
  const p = JSON.parse(out.trim().split('\n').pop() ?? '{}') as Probed;
  if (!p.none) assert.ok(p.payload?.endsWith(marker), `probe saw its own marker: ${out}`);
  return p;
}

test('passthrough.sh: a packet written into gwi comes out of gwo unchanged (and not before CREATE)', (t) => {
  if (skipUnlessNetAdmin(t)) return;
  const { ns, a } = appliance(t);
  assert.deepEqual(probe(ns, a, 4, '192.0.2.10', '198.51.100.20', 1), { none: true }, 'nothing comes back without the hook');
  hook(ns, 'passthrough.sh', 'CREATE', a);
  for (const [v, src, dst] of [
    [4, '192.0.2.10', '198.51.100.20'],
    [6, '2001:db8:1::10', '2001:db8:2::20'],
  ] as const) {
    const p = probe(ns, a, v, src, dst, 5);
    assert.equal(p.iface, a.gwo);
    assert.equal(p.version, v);
    assert.equal(p.ttl, 64, 'not routed: TTL / hop limit untouched');
    assert.deepEqual([p.src, p.dst, p.sport, p.dport], [src, dst, 40000, 5353]);
  }
  hook(ns, 'passthrough.sh', 'DESTROY', a);
  assert.deepEqual(probe(ns, a, 4, '192.0.2.10', '198.51.100.20', 1), { none: true }, 'nothing comes back after DESTROY');
});

for (const script of ['route.sh', 'overlapping-cidrs.sh'] as const) {
  test(`${script}: a packet written into gwi is forwarded by the kernel out of its own gwo`, (t) => {
    if (skipUnlessNetAdmin(t)) return;
    const { ns, a, b } = appliance(t);
    assert.deepEqual(probe(ns, a, 4, '192.0.2.10', '198.51.100.20', 1), { none: true }, 'nothing comes back without the hook');
    hook(ns, script, 'CREATE', a);
    hook(ns, script, 'CREATE', b);
    for (const e of [a, b]) {
      // The same addresses on both endpoints (overlapping CIDRs): each packet leaves by its own endpoint's gwo.
      for (const [v, src, dst] of [
        [4, '192.0.2.10', '198.51.100.20'],
        [6, '2001:db8:1::10', '2001:db8:2::20'],
      ] as const) {
        const p = probe(ns, e, v, src, dst, 5);
        assert.equal(p.iface, e.gwo, `${e.gwi} -> ${e.gwo}`);
        assert.equal(p.ttl, 63, 'forwarded by the kernel: TTL / hop limit decremented');
        assert.deepEqual([p.src, p.dst, p.sport, p.dport], [src, dst, 40000, 5353]);
      }
    }
    hook(ns, script, 'DESTROY', a);
    hook(ns, script, 'DESTROY', b);
  });
}

test('nat.sh: out of eth1 masqueraded, the answer comes back through gwo translated back (IPv4 and IPv6)', async (t) => {
  if (skipUnlessNetAdmin(t)) return;
  const { ns, a, extra } = appliance(t, ['ghnet']);
  const internet = extra[0];
  // eth1's peer moves into the "internet" namespace, which owns 198.51.100.20 / 2001:db8:2::20.
  inNs(ns, 'ip', ['link', 'set', 'eth1p', 'netns', internet]);
  inNs(ns, 'ip', ['addr', 'add', '203.0.113.1/24', 'dev', 'eth1']);
  inNs(ns, 'ip', ['-6', 'addr', 'add', '2001:db8:ff::1/64', 'dev', 'eth1', 'nodad']);
  inNs(internet, 'ip', ['link', 'set', 'eth1p', 'up']);
  inNs(internet, 'ip', ['addr', 'add', '203.0.113.2/24', 'dev', 'eth1p']);
  inNs(internet, 'ip', ['-6', 'addr', 'add', '2001:db8:ff::2/64', 'dev', 'eth1p', 'nodad']);
  inNs(internet, 'ip', ['addr', 'add', '198.51.100.20/32', 'dev', 'lo']);
  inNs(internet, 'ip', ['-6', 'addr', 'add', '2001:db8:2::20/128', 'dev', 'lo']);
  inNs(ns, 'ip', ['route', 'add', 'default', 'via', '203.0.113.2', 'dev', 'eth1']);
  inNs(ns, 'ip', ['-6', 'route', 'add', 'default', 'via', '2001:db8:ff::2', 'dev', 'eth1']);

  const responders = ['198.51.100.20', '2001:db8:2::20'].map((addr) => {
    const child = spawn('ip', ['netns', 'exec', internet, 'python3', '-c', UDP_RESPONDER, addr, '5353'], { stdio: ['ignore', 'pipe', 'inherit'] });
    t.after(() => child.kill('SIGKILL'));
    return child;
  });
  for (const r of responders) {
    const [chunk] = (await once(r.stdout as NodeJS.ReadableStream, 'data')) as [Buffer];
    assert.equal(chunk.toString().trim(), 'ready');
  }

  assert.deepEqual(probe(ns, a, 4, '192.0.2.10', '198.51.100.20', 1), { none: true }, 'nothing comes back without the hook');
  hook(ns, 'nat.sh', 'CREATE', a);
  for (const [v, client, server] of [
    [4, '192.0.2.10', '198.51.100.20'],
    [6, '2001:db8:1::10', '2001:db8:2::20'],
  ] as const) {
    const p = probe(ns, a, v, client, server, 5);
    assert.equal(p.iface, a.gwo, `the answer returns through ${a.gwo}`);
    assert.deepEqual([p.src, p.dst, p.sport, p.dport], [server, client, 5353, 40000], 'translated back to the client');
    assert.ok(p.payload?.startsWith('reply:gh-'), 'it is the server\'s answer');
  }
  hook(ns, 'nat.sh', 'DESTROY', a);
});

test('the systemd unit: its ExecStart is a valid command line, its stop timeout outlasts a DESTROY hook', (t) => {
  const unit = readFileSync(UNIT, 'utf8');
  const exec = /^ExecStart=(.*)$/m.exec(unit)?.[1] ?? '';
  const words = exec.split(/\s+/).filter((w) => w !== '$GATEHOUSE_TUNNEL_ARGS');
  assert.deepEqual(words.slice(0, 3), ['/usr/bin/env', 'gatehouse', 'tunnel']);
  // The hook paths the unit names, replaced by real executables so the parser's file checks pass.
  const dir = mkdtempSync(join(tmpdir(), 'gh-unit-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const argv = words.slice(3).map((w) => {
    const m = /^\/etc\/gatehouse\/hooks\/(create|destroy)\.sh$/.exec(w);
    if (!m) return w;
    const path = join(dir, `${m[1]}.sh`);
    writeFileSync(path, '#!/bin/sh\n');
    chmodSync(path, 0o755);
    return path;
  });
  const o = parseTunnelOptions(argv);
  assert.ok(!('help' in o));
  if ('help' in o) return;
  assert.equal(o.createScript, join(dir, 'create.sh'));
  assert.equal(o.destroyScript, join(dir, 'destroy.sh'));
  assert.equal(o.healthPort, 8080);
  const stopS = Number(/^TimeoutStopSec=(\d+)$/m.exec(unit)?.[1]);
  assert.ok(stopS > TUNNEL_DEFAULTS.hookTimeoutS, `TimeoutStopSec ${stopS} > --hook-timeout ${TUNNEL_DEFAULTS.hookTimeoutS}`);
  assert.match(unit, /^CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_RAW$/m);
  assert.match(unit, /^KillMode=mixed$/m);
});

test('the systemd unit passes systemd-analyze verify', (t) => {
  const which = spawnSync('sh', ['-c', 'command -v systemd-analyze'], { encoding: 'utf8' });
  if (which.status !== 0) {
    t.skip('systemd-analyze is not installed');
    return;
  }
  const r = spawnSync('systemd-analyze', ['verify', UNIT], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stderr.trim(), '', 'no warnings');
});
