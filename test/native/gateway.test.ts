/**
 * The lab gateway in a real topology of network namespaces (unique names):
 *
 *   c (client)              g (gateway)                         s (server)
 *   198.51.100.10 ── vc|vgc 198.51.100.1    203.0.113.1 vgs|vs ── 203.0.113.10
 *   2001:db8:100::10        2001:db8:100::1 2001:db8:200::1       2001:db8:200::10
 *                           192.0.2.1 vga
 *                                │ (MTU 9000)
 *                           va 192.0.2.2 (+ 192.0.2.3)   a (appliance: a GENEVE mirror)
 *
 * In g, packets arriving from vgc or vgs are looked up in a table whose
 * default route is the gateway's TUN; what the gateway writes back into
 * the TUN is routed by the main table. So every packet between c and s
 * goes: TUN -> GENEVE to a -> mirrored back -> checked -> TUN -> on.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { execFile, spawn, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import { JsonLinesProcess, nodeInNamespace } from '../helpers/json-lines-process';
import { createNamespaces, sh, skipUnlessNetAdmin, uniqueSuffix } from '../helpers/system';
import { startGateway, GATEWAY_COUNTER_NAMES } from '../../src/native/gateway';
import { GENEVE_REASONS } from '../../src/geneve/reasons';
import { GatehouseError } from '../../src/errors';
import type { GatewayFlowEvent } from '../../src/native/binding';
import type { GatewayHelperOptions, HelperMessage } from './gateway-netns-helper';

const HELPER = path.join(__dirname, 'gateway-netns-helper.js');
const execFileAsync = promisify(execFile);

const C4 = '198.51.100.10';
const S4 = '203.0.113.10';
const C6 = '2001:db8:100::10';
const S6 = '2001:db8:200::10';
const GW_BIND = '192.0.2.1';
const APPLIANCE = '192.0.2.2';
const STRANGER = '192.0.2.3'; // also in namespace a, but not the target
const TUN = 'gwtun0';
const TCP_PORT = 8080;
const ENI = 0x0123456789abcdefn;
const ATTACHMENT = 0xa11a11a11n;
const PORT_LOW = 20000;
const PORT_HIGH = 29999;

// ---- helper processes inside namespaces ----

/** A gateway-netns-helper.js role (gateway, mirror, client...) running in a namespace. */
class Helper extends JsonLinesProcess<HelperMessage> {
  events(): GatewayFlowEvent[] {
    return this.messages.flatMap((m) => (m.type === 'events' ? m.events : []));
  }
}

function startHelper(ns: string, args: string[]): Helper {
  return new Helper(nodeInNamespace(ns, HELPER, args), `${args[0]} in ${ns}`, 15_000);
}

const isReady = (m: HelperMessage): m is { type: 'ready' } => m.type === 'ready';
const isFinal = (m: HelperMessage): m is Extract<HelperMessage, { type: 'final' }> => m.type === 'final';
const isReply = (m: HelperMessage): m is Extract<HelperMessage, { type: 'reply' }> => m.type === 'reply';

async function inNs(ns: string, cmd: string, args: string[]): Promise<string> {
  const { stdout } = await execFileAsync('ip', ['netns', 'exec', ns, cmd, ...args], { timeout: 30_000 });
  return stdout;
}

/** Asks the gateway for its counters until `done` holds for them (bounded). */
async function countersWhen(gw: Helper, done: (c: Record<string, number>) => boolean): Promise<Record<string, number>> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const before = gw.messages.length;
    gw.send('counters');
    const isCounters = (m: HelperMessage): m is Extract<HelperMessage, { type: 'counters' }> => m.type === 'counters';
    const { counters } = await gw.waitFor(isCounters, before);
    if (done(counters) || Date.now() > deadline) return counters;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

// ---- the topology ----

interface Topology {
  c: string;
  g: string;
  s: string;
  a: string;
  cleanup: () => void;
}

function buildTopology(): Topology {
  const sfx = uniqueSuffix();
  const t = { c: `ghc${sfx}`, g: `ghg${sfx}`, s: `ghs${sfx}`, a: `gha${sfx}` };
  const cleanup = createNamespaces([t.c, t.g, t.s, t.a]);
  try {
    const ip = (ns: string, ...args: string[]): string => sh('ip', ['-n', ns, ...args]);
    const sysctl = (ns: string, ...settings: string[]): string => sh('ip', ['netns', 'exec', ns, 'sysctl', '-q', '-w', ...settings]);
    // Before any link exists, so every interface (the TUN too) inherits them.
    for (const ns of [t.c, t.g, t.s]) sysctl(ns, 'net.ipv6.conf.all.accept_dad=0', 'net.ipv6.conf.default.accept_dad=0');
    sysctl(t.g, 'net.ipv4.ip_forward=1', 'net.ipv6.conf.all.forwarding=1', 'net.ipv4.conf.all.rp_filter=0', 'net.ipv4.conf.default.rp_filter=0');

    const veth = (ns1: string, if1: string, ns2: string, if2: string, mtu = 1500): void => {
      ip(ns1, 'link', 'add', if1, 'mtu', String(mtu), 'type', 'veth', 'peer', 'name', if2, 'mtu', String(mtu), 'netns', ns2);
      ip(ns1, 'link', 'set', if1, 'up');
      ip(ns2, 'link', 'set', if2, 'up');
    };
    veth(t.c, 'vc', t.g, 'vgc');
    veth(t.s, 'vs', t.g, 'vgs');
    // GENEVE adds 68 bytes: the appliance link carries 1500-byte inner packets.
    veth(t.a, 'va', t.g, 'vga', 9000);

    ip(t.c, 'addr', 'add', `${C4}/24`, 'dev', 'vc');
    ip(t.c, 'addr', 'add', `${C6}/64`, 'dev', 'vc', 'nodad');
    ip(t.c, 'route', 'add', 'default', 'via', '198.51.100.1');
    ip(t.c, '-6', 'route', 'add', 'default', 'via', '2001:db8:100::1');
    ip(t.s, 'addr', 'add', `${S4}/24`, 'dev', 'vs');
    ip(t.s, 'addr', 'add', `${S6}/64`, 'dev', 'vs', 'nodad');
    ip(t.s, 'route', 'add', 'default', 'via', '203.0.113.1');
    ip(t.s, '-6', 'route', 'add', 'default', 'via', '2001:db8:200::1');
    ip(t.g, 'addr', 'add', '198.51.100.1/24', 'dev', 'vgc');
    ip(t.g, 'addr', 'add', '2001:db8:100::1/64', 'dev', 'vgc', 'nodad');
    ip(t.g, 'addr', 'add', '203.0.113.1/24', 'dev', 'vgs');
    ip(t.g, 'addr', 'add', '2001:db8:200::1/64', 'dev', 'vgs', 'nodad');
    ip(t.g, 'addr', 'add', `${GW_BIND}/24`, 'dev', 'vga');
    ip(t.a, 'addr', 'add', `${APPLIANCE}/24`, 'dev', 'va');
    ip(t.a, 'addr', 'add', `${STRANGER}/24`, 'dev', 'va');
    for (const family of ['-4', '-6']) {
      ip(t.g, family, 'rule', 'add', 'iif', 'vgc', 'lookup', '100', 'pref', '100');
      ip(t.g, family, 'rule', 'add', 'iif', 'vgs', 'lookup', '100', 'pref', '101');
    }
  } catch (err) {
    cleanup();
    throw err;
  }
  return { ...t, cleanup };
}

/** Table 100's default route: into the TUN (gone whenever the TUN is). */
function routeIntoTun(g: string): void {
  for (const family of ['-4', '-6']) sh('ip', ['-n', g, family, 'route', 'replace', 'default', 'dev', TUN, 'table', '100']);
}

function gatewayArgs(flowIdleMs: number): string[] {
  const o: GatewayHelperOptions = {
    tunName: TUN,
    bind: GW_BIND,
    target: APPLIANCE,
    port: 6081,
    eni: ENI.toString(),
    attachment: ATTACHMENT.toString(),
    sourcePortLow: PORT_LOW,
    sourcePortHigh: PORT_HIGH,
    flowIdleMs,
  };
  return ['gateway', JSON.stringify(o)];
}

// ---- tshark: an independent decoder of what the gateway sends ----

const CAPTURE_FIELDS = [
  'ip.src', 'ip.dst', 'udp.srcport', 'udp.dstport', 'udp.checksum.status', 'geneve.version', 'geneve.proto_type',
  'geneve.vni', 'geneve.option.class', 'geneve.option.type', 'geneve.option.length', 'geneve.option.unknown.data',
  'icmp.type', 'icmp.ident',
] as const;
type CaptureRow = Record<(typeof CAPTURE_FIELDS)[number], string>;

/**
 * Captures GENEVE the gateway sends on `dev` in `ns` into a pcap file;
 * tshark decodes the file into rows of CAPTURE_FIELDS.
 */
function startCapture(
  ns: string,
  dev: string,
): { ready: Promise<void>; rowsWhen: (done: (rows: CaptureRow[]) => boolean) => Promise<CaptureRow[]>; stop: () => Promise<void> } {
  const dir = mkdtempSync(path.join(tmpdir(), 'gh-gateway-'));
  const file = path.join(dir, 'geneve.pcap');
  const filter = `src host ${GW_BIND} and udp dst port 6081`;
  const proc = spawn('ip', ['netns', 'exec', ns, 'tshark', '-i', dev, '-n', '-f', filter, '-F', 'pcap', '-w', file], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  const closed = new Promise<void>((resolve) => proc.on('close', () => resolve()));
  const ready = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`tshark did not start: ${err}`)), 30_000);
    proc.stderr.on('data', (d: Buffer) => {
      err += d.toString();
      // "Capturing on" comes before dumpcap really captures; this comes after.
      if (/Capture started/.test(err)) {
        clearTimeout(timer);
        resolve();
      }
    });
    proc.on('close', () => reject(new Error(`tshark exited: ${err}`)));
  });
  ready.catch(() => {}); // stop() reports instead when nobody awaited
  const read = (): CaptureRow[] => {
    if (!existsSync(file)) return [];
    const fields = CAPTURE_FIELDS.flatMap((f) => ['-e', f]);
    const out = sh('tshark', ['-r', file, '-n', '-o', 'udp.check_checksum:TRUE', '-T', 'fields', '-E', 'separator=|', ...fields]);
    return out
      .split('\n')
      .filter(Boolean)
      .map((line) => Object.fromEntries(line.split('|').map((v, i) => [CAPTURE_FIELDS[i], v])) as CaptureRow);
  };
  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopped ??= (async () => {
      proc.kill('SIGINT');
      await closed;
      rmSync(dir, { recursive: true, force: true });
    })());
  /**
   * dumpcap writes packets a moment after they pass: read the file until
   * `done` holds (bounded), then stop capturing.
   */
  const rowsWhen = async (done: (rows: CaptureRow[]) => boolean): Promise<CaptureRow[]> => {
    const deadline = Date.now() + 15_000;
    let rows = read();
    while (!done(rows) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 300));
      rows = read();
    }
    await stop();
    return rows;
  };
  return { ready, rowsWhen, stop };
}

const hex = (n: bigint, digits: number): string => n.toString(16).padStart(digits, '0');

// ---- hand-built GENEVE datagrams for the negative cases ----

const be16 = (n: number): number[] => [(n >> 8) & 0xff, n & 0xff];
const be32 = (n: number): number[] => [...be16(Math.floor(n / 65536) & 0xffff), ...be16(n & 0xffff)];
const be64 = (n: bigint): number[] => [...be32(Number(n >> 32n)), ...be32(Number(n & 0xffffffffn))];

function geneve(cookie: number, inner: number[], eni = ENI, attachment = ATTACHMENT): string {
  const bytes = [
    0x08, 0, ...be16(0x0800), 0, 0, 0, 0,
    ...be16(0x0108), 1, 2, ...be64(eni),
    ...be16(0x0108), 2, 2, ...be64(attachment),
    ...be16(0x0108), 3, 1, ...be32(cookie),
    ...inner,
  ];
  return Buffer.from(bytes).toString('hex');
}

function ipv4(src: string, dst: string, proto: number, payload: number[]): number[] {
  const addr = (s: string): number[] => s.split('.').map(Number);
  return [0x45, 0, ...be16(20 + payload.length), 0, 1, 0x40, 0, 64, proto, 0, 0, ...addr(src), ...addr(dst), ...payload];
}

// ---- the tests ----

test('gateway: IPv4 and IPv6 ping and TCP pass through GENEVE and back; bad datagrams are counted and dropped', { timeout: 180_000 }, async (t) => {
  if (skipUnlessNetAdmin(t)) return;
  const topo = buildTopology();
  const helpers: Helper[] = [];
  const start = (ns: string, args: string[]): Helper => {
    const h = startHelper(ns, args);
    helpers.push(h);
    return h;
  };
  try {
    await start(topo.a, ['mirror', APPLIANCE, '6081']).waitFor(isReady);
    const gw = start(topo.g, gatewayArgs(60_000));
    await gw.waitFor(isReady);
    // The gateway made the TUN and brought it up.
    assert.match(sh('ip', ['-n', topo.g, '-d', 'link', 'show', 'dev', TUN]), /UP.*\n.*\n\s+tun type tun pi off .*multi_queue/);
    routeIntoTun(topo.g);

    const ping4 = await inNs(topo.c, 'ping', ['-n', '-c', '3', '-i', '0.2', '-W', '5', S4]);
    assert.match(ping4, /3 packets transmitted, 3 received/);
    const ping6 = await inNs(topo.c, 'ping', ['-6', '-n', '-c', '3', '-i', '0.2', '-W', '5', S6]);
    assert.match(ping6, /3 packets transmitted, 3 received/);

    await start(topo.s, ['tcp-echo', S4, String(TCP_PORT)]).waitFor(isReady);
    const client = start(topo.c, ['tcp-client', S4, String(TCP_PORT), 'hello through the gateway']);
    const reply = await client.waitFor(isReply);
    assert.equal(reply.reply, 'hello through the gateway');
    assert.equal(await client.exitCode(), 0);

    // One 'new' event per flow, with the 5-tuple as the client sent it.
    const newFlows = (protocol: number, src: string, dst: string): GatewayFlowEvent[] =>
      gw.events().filter((e) => e.type === 'new' && e.protocol === protocol && e.src === src && e.dst === dst);
    const hasAllFlows = (m: HelperMessage): m is Extract<HelperMessage, { type: 'events' }> =>
      m.type === 'events' && [newFlows(1, C4, S4), newFlows(58, C6, S6), newFlows(6, C4, S4)].every((f) => f.length > 0);
    await gw.waitFor(hasAllFlows);
    const news = gw.events().filter((e) => e.type === 'new');
    const [icmp4] = newFlows(1, C4, S4);
    const [icmp6] = newFlows(58, C6, S6);
    const [tcp] = newFlows(6, C4, S4);
    assert.equal(newFlows(1, C4, S4).length, 1, `one ICMP flow: ${JSON.stringify(news)}`);
    assert.equal(newFlows(58, C6, S6).length, 1, `one ICMPv6 flow: ${JSON.stringify(news)}`);
    assert.equal(newFlows(6, C4, S4).length, 1, `one TCP flow: ${JSON.stringify(news)}`);
    assert.equal(icmp4.dstPort, 0);
    assert.equal(icmp6.dstPort, 0);
    assert.deepEqual([tcp.srcPort, tcp.dstPort], [reply.localPort, TCP_PORT]);
    for (const e of [icmp4, icmp6, tcp]) {
      assert.ok(e.sourcePort >= PORT_LOW && e.sourcePort <= PORT_HIGH, `source port ${e.sourcePort}`);
      assert.ok(Number.isInteger(e.cookie) && e.cookie > 0 && e.cookie <= 0xffffffff, `cookie ${e.cookie}`);
    }
    assert.equal(new Set(news.map((e) => e.cookie)).size, news.length, 'cookies are unique');
    assert.equal(gw.events().filter((e) => e.type === 'expired').length, 0);

    // Echoes of 2000 bytes leave c (and s) in two IPv4 fragments, IPv6 in
    // two fragments behind a fragment header; g forwards fragments as they
    // are. Later fragments carry no ICMP header: they must find their flow
    // through the fragment tracker, in both directions, or the echo (and
    // a new id-0 flow) would show it.
    const big4 = await inNs(topo.c, 'ping', ['-n', '-c', '2', '-i', '0.2', '-W', '5', '-s', '2000', S4]);
    assert.match(big4, /2 packets transmitted, 2 received/);
    const big6 = await inNs(topo.c, 'ping', ['-6', '-n', '-c', '2', '-i', '0.2', '-W', '5', '-s', '2000', S6]);
    assert.match(big6, /2 packets transmitted, 2 received/);
    const twoFlows = (m: HelperMessage): m is Extract<HelperMessage, { type: 'events' }> =>
      m.type === 'events' && newFlows(1, C4, S4).length >= 2 && newFlows(58, C6, S6).length >= 2;
    await gw.waitFor(twoFlows);

    // Datagrams that must not reach the TUN, one per check.
    const known = icmp4.cookie;
    const unknown = (Math.max(...news.map((e) => e.cookie)) % 0xffffffff) + 1;
    const echo = ipv4(C4, S4, 1, [8, 0, 0, 0, ...be16(icmp4.srcPort), 0, 99, 1, 2, 3, 4]);
    const bad = {
      unknownCookie: geneve(unknown === known ? known + 1 : unknown, echo),
      optionMismatch: geneve(known, echo, ENI + 1n),
      tupleMismatch: geneve(known, ipv4(C4, S4, 17, [0, 1, 0, 2, 0, 8, 0, 0])),
      unparsableInner: geneve(known, ipv4(C4, S4, 6, [0, 1])),
      truncated: 'deadbeef',
    };
    const base = await countersWhen(gw, () => true);
    // From the known flow's own source port, so each bad datagram fails on its own defect.
    const fromTarget = start(topo.a, ['send-udp', `${APPLIANCE}:${icmp4.sourcePort}`, GW_BIND, '6081', ...Object.values(bad)]);
    const fromWrongPort = start(topo.a, ['send-udp', APPLIANCE, GW_BIND, '6081', geneve(known, echo)]);
    const fromStranger = start(topo.a, ['send-udp', STRANGER, GW_BIND, '6081', geneve(known, echo)]);
    assert.equal(await fromTarget.exitCode(), 0);
    assert.equal(await fromStranger.exitCode(), 0);
    assert.equal(await fromWrongPort.exitCode(), 0);
    await countersWhen(gw, (c) => c.udp_rx_packets >= base.udp_rx_packets + 7);

    gw.send('stop');
    const { counters } = await gw.waitFor(isFinal);
    // stop() released the event callback and closed everything: the process ends by itself.
    assert.equal(await gw.exitCode(), 0);
    assert.deepEqual(Object.keys(counters), [...GATEWAY_COUNTER_NAMES]);

    assert.equal(counters.drop_unknown_flow, 1);
    assert.equal(counters.drop_option_mismatch, 1);
    assert.equal(counters.drop_tuple_mismatch, 1);
    assert.equal(counters.drop_unparsable_inner, 1);
    assert.equal(counters.drop_not_from_target, 1);
    assert.equal(counters.drop_wrong_port, 1);
    assert.equal(counters.malformed_truncated_header, 1);
    for (const r of GENEVE_REASONS.filter((r) => r !== 'truncated_header')) assert.equal(counters[`malformed_${r}`], 0, r);
    assert.equal(counters.tx_errors, 0);
    assert.equal(counters.rx_overflow, 0);

    // 3 + 3 small echo pairs, 2 + 2 fragmented ones and a TCP conversation.
    assert.ok(counters.encap_tx_packets >= 12 + 16 + 6, `encap_tx_packets ${counters.encap_tx_packets}`);
    assert.equal(counters.tun_rx_packets, counters.encap_tx_packets, 'every routed packet from the TUN was sent');
    assert.equal(counters.udp_rx_packets, counters.encap_tx_packets + 7, 'the mirror returned each, plus our 7');
    assert.equal(counters.tun_tx_packets, counters.encap_tx_packets, 'every returned packet went back into the TUN');
    assert.equal(counters.tun_tx_bytes, counters.tun_rx_bytes);
    // The fragmented echoes made one flow each, none keyed by id 0.
    assert.deepEqual(newFlows(1, C4, S4).map((e) => e.srcPort === 0), [false, false], JSON.stringify(newFlows(1, C4, S4)));
    assert.deepEqual(newFlows(58, C6, S6).map((e) => e.srcPort === 0), [false, false], JSON.stringify(newFlows(58, C6, S6)));
    // Outer bytes = inner + 68 (IPv4 20, UDP 8, GENEVE 40) per packet.
    assert.equal(counters.encap_tx_bytes, counters.tun_rx_bytes + 68 * counters.encap_tx_packets);
    // g's own stack sends multicast into the TUN too (IPv6 MLD reports):
    // counted as not routed, never a flow, as no GWLB endpoint sees them.
    const allNew = gw.events().filter((e) => e.type === 'new');
    assert.deepEqual(allNew.filter((e) => e.dst.startsWith('ff') || e.src === '::'), []);
    assert.equal(counters.flows_created, allNew.length);
    assert.equal(counters.flows_active, allNew.length);
    assert.equal(counters.flows_expired, 0);

    // A TUN the gateway created goes away with it.
    assert.notEqual(spawnStatus('ip', ['-n', topo.g, 'link', 'show', 'dev', TUN]), 0);
  } finally {
    for (const h of helpers) h.kill();
    topo.cleanup();
  }
});

test('gateway: attaches to an existing persistent TUN, expires idle flows and reports their totals', { timeout: 120_000 }, async (t) => {
  if (skipUnlessNetAdmin(t)) return;
  const topo = buildTopology();
  const helpers: Helper[] = [];
  try {
    sh('ip', ['-n', topo.g, 'tuntap', 'add', 'dev', TUN, 'mode', 'tun', 'multi_queue']);
    const mirror = startHelper(topo.a, ['mirror', APPLIANCE, '6081']);
    helpers.push(mirror);
    await mirror.waitFor(isReady);
    const gw = startHelper(topo.g, gatewayArgs(1500));
    helpers.push(gw);
    await gw.waitFor(isReady);
    routeIntoTun(topo.g);
    const capture = startCapture(topo.g, 'vga');
    let rows: CaptureRow[] = [];
    try {
      await capture.ready;
      assert.match(await inNs(topo.c, 'ping', ['-n', '-c', '1', '-W', '5', S4]), /1 packets transmitted, 1 received/);
      rows = await capture.rowsWhen((r) => ['8', '0'].every((type) => r.some((row) => row['icmp.type'] === type)));
    } finally {
      await capture.stop();
    }
    const isExpired = (m: HelperMessage): m is Extract<HelperMessage, { type: 'events' }> =>
      m.type === 'events' && m.events.some((e) => e.type === 'expired');
    await gw.waitFor(isExpired, 0, 20_000);
    gw.send('stop');
    const { counters } = await gw.waitFor(isFinal);
    assert.equal(await gw.exitCode(), 0);

    const events = gw.events();
    const created = events.filter((e) => e.type === 'new' && e.protocol === 1);
    const expired = events.filter((e) => e.type === 'expired' && e.protocol === 1);
    assert.equal(created.length, 1);
    assert.equal(expired.length, 1);
    const [e] = expired;
    assert.deepEqual(
      { src: e.src, dst: e.dst, cookie: e.cookie, sourcePort: e.sourcePort, srcPort: e.srcPort },
      { src: C4, dst: S4, cookie: created[0].cookie, sourcePort: created[0].sourcePort, srcPort: created[0].srcPort },
    );
    // Request and reply, 84 bytes each (20 IPv4 + 8 ICMP + 56 data).
    assert.equal(e.packets, 2);
    assert.equal(e.bytes, 168);
    // Multicast the kernel sends into the TUN is never a flow.
    assert.equal(counters.flows_created, events.filter((x) => x.type === 'new').length);
    assert.equal(counters.flows_expired, events.filter((x) => x.type === 'expired').length);
    assert.equal(counters.flows_active, counters.flows_created - counters.flows_expired);

    // tshark's reading of the two datagrams that carried the ping: GENEVE
    // as GWLB writes it, from the flow's source port, correct UDP checksum.
    const cookieHex = hex(BigInt(e.cookie), 8);
    for (const icmpType of ['8', '0']) {
      const row = rows.find((r) => r['icmp.type'] === icmpType);
      assert.ok(row, `a captured datagram with ICMP type ${icmpType}: ${JSON.stringify(rows)}`);
      assert.deepEqual(row, {
        'ip.src': icmpType === '8' ? `${GW_BIND},${C4}` : `${GW_BIND},${S4}`,
        'ip.dst': icmpType === '8' ? `${APPLIANCE},${S4}` : `${APPLIANCE},${C4}`,
        'udp.srcport': String(e.sourcePort),
        'udp.dstport': '6081',
        'udp.checksum.status': '1', // good
        'geneve.version': '0',
        'geneve.proto_type': '0x0800',
        'geneve.vni': '0x000000',
        'geneve.option.class': '0x0108,0x0108,0x0108',
        'geneve.option.type': '0x01,0x02,0x03',
        'geneve.option.length': '32,12,12,8', // the option area, then each option with its header
        'geneve.option.unknown.data': `${hex(ENI, 16)},${hex(ATTACHMENT, 16)},${cookieHex}`,
        'icmp.type': icmpType,
        'icmp.ident': String(e.srcPort),
      });
    }

    // Not ours to delete: the persistent TUN outlives the gateway.
    assert.match(sh('ip', ['-n', topo.g, '-d', 'link', 'show', 'dev', TUN]), /persist on/);
  } finally {
    for (const h of helpers) h.kill();
    topo.cleanup();
  }
});

test('gateway: options are validated with coded errors; a missing bind address fails to start', async (t) => {
  const good = {
    tunName: 'gw0',
    bind: '192.0.2.1',
    target: '192.0.2.2',
    port: 6081,
    eni: 1n,
    attachment: 2n,
    sourcePortLow: 20000,
    sourcePortHigh: 20010,
    flowIdleMs: 1000,
    onFlowEvents: () => {},
  };
  const cases: Array<[Partial<typeof good> & Record<string, unknown>, string]> = [
    [{ sourcePortLow: 80 }, 'Expected integer between 1024 and 65535 for sourcePortLow but received 80 of type number'],
    [{ sourcePortHigh: 19999 }, 'Expected integer between 20000 and 65535 for sourcePortHigh but received 19999 of type number'],
    [{ port: 0 }, 'Expected integer between 1 and 65535 for port but received 0 of type number'],
    [{ flowIdleMs: 0 }, 'Expected integer between 1 and 86400000 for flowIdleMs but received 0 of type number'],
    [{ bind: '2001:db8::1' }, `Expected IPv4 address for bind but received "2001:db8::1" of type string`],
    [{ target: 'appliance' }, `Expected IPv4 address for target but received "appliance" of type string`],
    [{ tunName: 'far-too-long-for-linux' }, `Expected interface name of 1 to 15 characters without '/', ':' or whitespace for tunName but received "far-too-long-for-linux" of type string`],
    [{ eni: -1n }, 'Expected bigint between 0 and 2^64-1 for eni but received -1 of type bigint'],
    [{ attachment: 5 as unknown as bigint }, 'Expected bigint between 0 and 2^64-1 for attachment but received 5 of type number'],
  ];
  for (const [change, message] of cases) {
    assert.throws(() => startGateway({ ...good, ...change }), (err: unknown) => {
      assert.ok(err instanceof GatehouseError);
      assert.equal(err.code, 'ERR_INVALID_ARG');
      assert.equal(err.message, message);
      return true;
    });
  }
  if (skipUnlessNetAdmin(t)) return;
  // In a fresh namespace 192.0.2.1 is nobody's address: bind() fails, and
  // the TUN the gateway had made is gone again.
  const ns = `ghv${uniqueSuffix()}`;
  const cleanup = createNamespaces([ns]);
  try {
    const out = await execFileAsync('ip', ['netns', 'exec', ns, process.execPath, HELPER, ...gatewayArgs(1000)], { timeout: 30_000 }).then(
      () => ({ ok: true, stderr: '' }),
      (err: { stderr?: string }) => ({ ok: false, stderr: err.stderr ?? '' }),
    );
    assert.equal(out.ok, false);
    assert.match(out.stderr, /ERR_NATIVE_START/);
    assert.match(out.stderr, /bind\(192\.0\.2\.1:6081\): Cannot assign requested address/);
    assert.notEqual(spawnStatus('ip', ['-n', ns, 'link', 'show', 'dev', TUN]), 0);
  } finally {
    cleanup();
  }
});

function spawnStatus(cmd: string, args: string[]): number | null {
  return spawnSync(cmd, args, { stdio: 'ignore' }).status;
}
