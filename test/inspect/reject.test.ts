/**
 * Reject packets, judged by an independent decoder: each case's packets are
 * written to a pcap (raw IP link type) and read back by tshark with every
 * checksum check on.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rejectPackets, TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN, type RejectInput } from '../../src/inspect/reject';
import { ipv4ToBytes, ipv6ToBytes } from '../../src/packet/address';
import { buildInnerPacket, type InnerProtocol } from '../../src/packet/inner';
import { sh } from '../helpers/system';

const CLIENT4 = '192.0.2.10';
const SERVER4 = '198.51.100.20';
const CLIENT6 = '2001:db8::10';
const SERVER6 = '2001:db8:1::20';
const PSH = 0x08;

type Layers = Record<string, unknown>;

/** A pcap (LINKTYPE_RAW: each record is an IP packet) of `packets`. */
function pcap(packets: Uint8Array[]): Buffer {
  const head = Buffer.alloc(24);
  head.writeUInt32LE(0xa1b2c3d4, 0);
  head.writeUInt16LE(2, 4);
  head.writeUInt16LE(4, 6);
  head.writeUInt32LE(65535, 16);
  head.writeUInt32LE(101, 20);
  const parts = [head];
  packets.forEach((p, i) => {
    const rec = Buffer.alloc(16);
    rec.writeUInt32LE(i, 0);
    rec.writeUInt32LE(p.length, 8);
    rec.writeUInt32LE(p.length, 12);
    parts.push(rec, Buffer.from(p));
  });
  return Buffer.concat(parts);
}

/** tshark's layers for each packet, with IP, UDP and TCP checksum checks on. */
function decode(t: TestContext, packets: Uint8Array[]): Layers[] {
  const dir = mkdtempSync(join(tmpdir(), 'gh-reject-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'reject.pcap');
  writeFileSync(file, pcap(packets));
  const out = sh('tshark', [
    '-r', file, '-n',
    '-o', 'tcp.check_checksum:TRUE', '-o', 'udp.check_checksum:TRUE', '-o', 'ip.check_checksum:TRUE',
    '-o', 'tcp.analyze_sequence_numbers:FALSE',
    '-T', 'json', '--no-duplicate-keys',
  ]);
  const frames = JSON.parse(out) as Array<{ _source: { layers: Layers } }>;
  return frames.map((f) => f._source.layers);
}

function field(layers: Layers, layer: string, name: string): string {
  const l = layers[layer];
  const v = Array.isArray(l) ? (l[0] as Layers)[name] : (l as Layers | undefined)?.[name];
  assert.equal(typeof v, 'string', `${layer}.${name} in ${JSON.stringify(layers).slice(0, 400)}`);
  return v as string;
}

/** 'tcp' fields every reset must have, checked against tshark; returns [src, dst, sport, dport, seq, ack]. */
function reset(layers: Layers, ip: 'ip' | 'ipv6'): [string, string, number, number, number, number] {
  assert.equal(field(layers, 'tcp', 'tcp.flags'), '0x0014', 'RST|ACK');
  assert.equal(field(layers, 'tcp', 'tcp.checksum.status'), '1', 'TCP checksum good');
  assert.equal(field(layers, 'tcp', 'tcp.len'), '0');
  if (ip === 'ip') assert.equal(field(layers, 'ip', 'ip.checksum.status'), '1', 'IPv4 header checksum good');
  return [
    field(layers, ip, `${ip}.src`),
    field(layers, ip, `${ip}.dst`),
    Number(field(layers, 'tcp', 'tcp.srcport')),
    Number(field(layers, 'tcp', 'tcp.dstport')),
    Number(field(layers, 'tcp', 'tcp.seq_raw')),
    Number(field(layers, 'tcp', 'tcp.ack_raw')),
  ];
}

interface Spec {
  family: 4 | 6;
  protocol: InnerProtocol;
  size: number;
  fromClient?: boolean;
  flags?: number;
  seq?: number;
  ack?: number;
}

/** A packet of the flow client:40000 <-> server:443 (UDP: :53) and the event the engine would give for it. */
function event(spec: Spec): RejectInput {
  const fromClient = spec.fromClient ?? true;
  const [c, s] = spec.family === 4 ? [ipv4ToBytes(CLIENT4), ipv4ToBytes(SERVER4)] : [ipv6ToBytes(CLIENT6), ipv6ToBytes(SERVER6)];
  const serverPort = spec.protocol === 'udp' ? 53 : 443;
  const p = buildInnerPacket({
    src: fromClient ? c : s,
    dst: fromClient ? s : c,
    protocol: spec.protocol,
    srcPort: fromClient ? 40000 : serverPort,
    dstPort: fromClient ? serverPort : 40000,
    size: spec.size,
  });
  const ipLen = spec.family === 4 ? 20 : 40;
  const l4Len = spec.protocol === 'tcp' ? 20 : spec.protocol === 'udp' ? 8 : 0;
  const flags = spec.flags ?? 0;
  if (spec.protocol === 'tcp') {
    // The builder's checksum no longer holds; rejectPackets never reads it.
    p.bytes.writeUInt32BE(spec.seq ?? 0x1000, ipLen + 4);
    p.bytes.writeUInt32BE(spec.ack ?? 0x2000, ipLen + 8);
    p.bytes[ipLen + 13] = flags;
  }
  return {
    family: spec.family,
    protocol: spec.protocol === 'tcp' ? 6 : spec.protocol === 'udp' ? 17 : spec.family === 4 ? 1 : 58,
    tcpFlags: spec.protocol === 'tcp' ? flags : 0,
    seq: spec.protocol === 'tcp' ? (spec.seq ?? 0x1000) : 0,
    ack: spec.protocol === 'tcp' ? (spec.ack ?? 0x2000) : 0,
    payload: p.bytes.subarray(ipLen + l4Len),
    packet: p.bytes,
    fromClient,
    clientPort: 40000,
    serverPort,
  };
}

for (const family of [4, 6] as const) {
  const ip = family === 4 ? 'ip' : 'ipv6';
  const [client, server] = family === 4 ? [CLIENT4, SERVER4] : [CLIENT6, SERVER6];

  test(`IPv${family} TCP data from the client: RST to the client at its ack, RST to the server at the client's seq`, (t) => {
    const e = event({ family, protocol: 'tcp', size: 300, flags: PSH | TCP_ACK, seq: 1_000_000, ack: 7_000_000 });
    const payload = e.payload.length;
    const [toClient, toServer] = decode(t, rejectPackets(e));
    assert.deepEqual(reset(toClient, ip), [server, client, 443, 40000, 7_000_000, 1_000_000 + payload]);
    assert.deepEqual(reset(toServer, ip), [client, server, 40000, 443, 1_000_000, 7_000_000]);
  });

  test(`IPv${family} TCP: earlier held data moves the server's reset back to the first held byte`, (t) => {
    const e = event({ family, protocol: 'tcp', size: 200, flags: PSH | TCP_ACK, seq: 5000, ack: 9000 });
    const [, toServer] = decode(t, rejectPackets(e, { receiverNextSeq: 4001 }));
    assert.deepEqual(reset(toServer, ip), [client, server, 40000, 443, 4001, 9000]);
  });

  test(`IPv${family} TCP bare SYN: one RST|ACK to the client, seq 0, ack ISN + 1`, (t) => {
    const e = event({ family, protocol: 'tcp', size: family === 4 ? 64 : 84, flags: TCP_SYN, seq: 123456, ack: 0 });
    const syn = { ...e, payload: new Uint8Array(0) };
    const packets = rejectPackets(syn);
    assert.equal(packets.length, 1);
    const [toClient] = decode(t, packets);
    assert.deepEqual(reset(toClient, ip), [server, client, 443, 40000, 0, 123457]);
  });

  test(`IPv${family} TCP FIN with data, across the sequence wrap: ack counts the FIN and wraps`, (t) => {
    const e = event({ family, protocol: 'tcp', size: 600, flags: TCP_FIN | TCP_ACK, seq: 0xffffff00, ack: 42 });
    const payload = e.payload.length;
    const [toClient] = decode(t, rejectPackets(e));
    assert.deepEqual(reset(toClient, ip), [server, client, 443, 40000, 42, (0xffffff00 + payload + 1) % 2 ** 32]);
  });

  test(`IPv${family} TCP data from the server (it spoke first): the roles swap`, (t) => {
    const e = event({ family, protocol: 'tcp', size: 120, fromClient: false, flags: PSH | TCP_ACK, seq: 300, ack: 800 });
    const payload = e.payload.length;
    const [toServer, toClient] = decode(t, rejectPackets(e));
    assert.deepEqual(reset(toServer, ip), [client, server, 40000, 443, 800, 300 + payload]);
    assert.deepEqual(reset(toClient, ip), [server, client, 443, 40000, 300, 800]);
  });

  test(`IPv${family} TCP: never a reset for a reset`, () => {
    assert.deepEqual(rejectPackets(event({ family, protocol: 'tcp', size: 100, flags: TCP_RST | TCP_ACK })), []);
  });
}

test('IPv4 UDP: ICMP type 3 code 13 to the client from the server, quoting the IP header and 8 bytes', (t) => {
  const e = event({ family: 4, protocol: 'udp', size: 500 });
  const [icmp] = decode(t, rejectPackets(e));
  assert.equal(field(icmp, 'ip', 'ip.src'), SERVER4);
  assert.equal(field(icmp, 'ip', 'ip.dst'), CLIENT4);
  assert.equal(field(icmp, 'ip', 'ip.checksum.status'), '1');
  assert.equal(field(icmp, 'ip', 'ip.len'), String(20 + 8 + 28));
  assert.equal(field(icmp, 'icmp', 'icmp.type'), '3');
  assert.equal(field(icmp, 'icmp', 'icmp.code'), '13');
  assert.equal(field(icmp, 'icmp', 'icmp.checksum.status'), '1');
  // The quoted packet is the client's: tshark decodes its IP and UDP headers inside the ICMP message.
  const quoted = (icmp.icmp as Layers).ip as Layers;
  assert.equal(quoted['ip.src'], CLIENT4);
  assert.equal(quoted['ip.dst'], SERVER4);
  assert.equal(((icmp.icmp as Layers).udp as Layers)['udp.dstport'], '53');
});

test('IPv4 ICMP echo: unreachable; an ICMP error: nothing', (t) => {
  const echo = event({ family: 4, protocol: 'icmp', size: 84 });
  const [icmp] = decode(t, rejectPackets(echo));
  assert.equal(field(icmp, 'icmp', 'icmp.type'), '3');
  assert.equal(field(icmp, 'icmp', 'icmp.checksum.status'), '1');
  const error = { ...echo, payload: Uint8Array.from([3, 1, ...echo.payload.subarray(2)]) };
  assert.deepEqual(rejectPackets(error), []);
});

test('IPv6 UDP: ICMPv6 type 1 code 1 quoting what fits in 1280 bytes', (t) => {
  const e = event({ family: 6, protocol: 'udp', size: 1400 });
  const [small] = rejectPackets(event({ family: 6, protocol: 'udp', size: 200 }));
  const packets = rejectPackets(e);
  assert.equal(packets[0].length, 1280);
  assert.equal(small.length, 40 + 8 + 200, 'a short packet is quoted whole');
  const [icmp, short] = decode(t, [packets[0], small]);
  assert.equal(field(icmp, 'ipv6', 'ipv6.src'), SERVER6);
  assert.equal(field(icmp, 'ipv6', 'ipv6.dst'), CLIENT6);
  assert.equal(field(icmp, 'icmpv6', 'icmpv6.type'), '1');
  assert.equal(field(icmp, 'icmpv6', 'icmpv6.code'), '1');
  assert.equal(field(icmp, 'icmpv6', 'icmpv6.checksum.status'), '1');
  assert.equal(field(short, 'icmpv6', 'icmpv6.checksum.status'), '1');
  assert.equal(Buffer.from(packets[0].subarray(48)).compare(Buffer.from(e.packet.subarray(0, 1232))), 0);
});

test('IPv6: no ICMPv6 for an ICMPv6 error; an echo request gets one', () => {
  const echo = event({ family: 6, protocol: 'icmp', size: 104 });
  assert.equal(rejectPackets(echo).length, 1);
  assert.deepEqual(rejectPackets({ ...echo, payload: Uint8Array.from([1, 0, 0, 0]) }), []);
});

test('no ICMP to or from multicast and broadcast, nor for non-first fragments', () => {
  const e = event({ family: 4, protocol: 'udp', size: 100 });
  const to = (bytes: number[]): RejectInput => {
    const packet = Buffer.from(e.packet);
    packet.set(bytes, 16);
    return { ...e, packet };
  };
  assert.deepEqual(rejectPackets(to([224, 0, 0, 251])), []);
  assert.deepEqual(rejectPackets(to([255, 255, 255, 255])), []);
  const fragment = Buffer.from(e.packet);
  fragment.writeUInt16BE(0x2000 | 100, 6); // more fragments, offset 800
  assert.deepEqual(rejectPackets({ ...e, packet: fragment }), []);
  const v6 = event({ family: 6, protocol: 'udp', size: 100 });
  const mcast = Buffer.from(v6.packet);
  mcast[24] = 0xff;
  assert.deepEqual(rejectPackets({ ...v6, packet: mcast }), []);
});

test('a truncated or foreign packet gives nothing rather than a wrong answer', () => {
  const e = event({ family: 4, protocol: 'tcp', size: 100, flags: TCP_ACK });
  assert.deepEqual(rejectPackets({ ...e, packet: e.packet.subarray(0, 10) }), []);
  assert.deepEqual(rejectPackets({ ...e, family: 6 }), []);
});
