/**
 * What the emulator sends: endpoints (ENI id + attachment id, as GWLB puts
 * in options 1 and 2) and flows (inner 5-tuple + random cookie, option 3),
 * turned into the templates the native generator repeats. Pure except for
 * the random cookies and ids, which come from an injectable source.
 */
import { createHash, randomBytes } from 'node:crypto';
import { ETHERTYPE_IPV4, ETHERTYPE_IPV6, encodeGeneve, gwlbOptions, malformedDatagram, type GeneveReason } from '../geneve';
import { GENEVE_REASONS } from '../geneve/reasons';
import type { GeneratorTemplate } from '../native/binding';
import { buildInnerPacket, type InnerProtocol } from '../packet/inner';

export interface Endpoint {
  eni: bigint;
  attachment: bigint;
}

export interface Flow {
  endpoint: number; // index into endpoints
  family: 4 | 6;
  protocol: InnerProtocol;
  src: Uint8Array;
  dst: Uint8Array;
  srcPort: number;
  dstPort: number;
  cookie: number;
  socket: number; // which emulator source port sends it
}

export interface TrafficPlan {
  endpoints: Endpoint[];
  flows: Flow[];
}

export interface TrafficSpec {
  enis: number;
  flows: number;
  protocol: InnerProtocol;
  v6Percent: number;
  sockets: number;
}

export type RandomSource = (bytes: number) => Buffer;

/**
 * Deterministic bytes from a seed (SHA-256 in counter mode): the same seed
 * gives the same ENI ids, attachment ids and cookies, so a second run hits
 * endpoints the target already created (benchmarks warm up with it).
 */
export function seededRandom(seed: number): RandomSource {
  let counter = 0;
  return (n) => {
    const out = Buffer.alloc(n);
    for (let at = 0; at < n; at += 32) {
      createHash('sha256').update(`gatehouse-emu:${seed}:${counter++}`).digest().copy(out, at, 0, Math.min(32, n - at));
    }
    return out;
  };
}

/**
 * Flow i uses endpoint i % enis and socket i % sockets; the IPv6 share is
 * spread evenly. Inner addresses come from the documentation ranges:
 * clients in 198.51.100.0/24 / 2001:db8:100::/64, servers in
 * 203.0.113.0/24 / 2001:db8:200::/64; (client, port) pairs are unique.
 */
export function planTraffic(spec: TrafficSpec, random: RandomSource = randomBytes): TrafficPlan {
  const endpoints: Endpoint[] = [];
  for (let i = 0; i < spec.enis; i++) {
    endpoints.push({ eni: random(8).readBigUInt64BE(0), attachment: random(8).readBigUInt64BE(0) });
  }
  const flows: Flow[] = [];
  for (let i = 0; i < spec.flows; i++) {
    // Bresenham-style spreading: flow i is IPv6 when the running share crosses an integer.
    const v6 = Math.floor(((i + 1) * spec.v6Percent) / 100) > Math.floor((i * spec.v6Percent) / 100);
    const host = (i % 250) + 1;
    const port = 10000 + Math.floor(i / 250);
    flows.push({
      endpoint: i % spec.enis,
      family: v6 ? 6 : 4,
      protocol: spec.protocol,
      src: v6 ? v6Address(0x100, host) : Uint8Array.of(198, 51, 100, host),
      dst: v6 ? v6Address(0x200, (i % 7) + 10) : Uint8Array.of(203, 0, 113, (i % 7) + 10),
      srcPort: port,
      dstPort: spec.protocol === 'icmp' ? 0 : 443,
      cookie: random(4).readUInt32BE(0),
      socket: i % spec.sockets,
    });
  }
  return { endpoints, flows };
}

function v6Address(net: number, host: number): Uint8Array {
  const b = new Uint8Array(16);
  b.set([0x20, 0x01, 0x0d, 0xb8, net >> 8, net & 0xff]);
  b[15] = host;
  return b;
}

/** The complete GENEVE datagram payload (header + inner) of a flow, and where the generator stamps it. */
export function flowTemplate(plan: TrafficPlan, flow: Flow, size: number): GeneratorTemplate {
  const inner = buildInnerPacket({
    src: flow.src,
    dst: flow.dst,
    protocol: flow.protocol,
    srcPort: flow.srcPort,
    dstPort: flow.dstPort,
    size,
  });
  const ep = plan.endpoints[flow.endpoint];
  const bytes = encodeGeneve({
    oam: false,
    critical: false,
    protocol: flow.family === 6 ? ETHERTYPE_IPV6 : ETHERTYPE_IPV4,
    vni: 0,
    options: gwlbOptions({ eni: ep.eni, attachment: ep.attachment, cookie: flow.cookie }),
    inner: inner.bytes,
  });
  const at = bytes.length - inner.bytes.length;
  return {
    bytes,
    malformedKind: -1,
    stampOffset: at + inner.stampOffset,
    checksumOffset: at + inner.checksumOffset,
    ttlOffset: at + inner.ttlOffset,
    ipChecksumOffset: inner.ipChecksumOffset < 0 ? -1 : at + inner.ipChecksumOffset,
    socket: flow.socket,
  };
}

/**
 * One malformed template per kind and per inner family present, derived
 * from the first flow of that family, so both IPv4 and IPv6 variants of a
 * defect are exercised.
 */
export function malformedTemplates(plan: TrafficPlan, size: number, kinds: readonly GeneveReason[]): GeneratorTemplate[] {
  const bases: Flow[] = [];
  for (const family of [4, 6] as const) {
    const f = plan.flows.find((x) => x.family === family);
    if (f) bases.push(f);
  }
  const out: GeneratorTemplate[] = [];
  for (const kind of kinds) {
    for (const base of bases) {
      out.push({
        bytes: malformedDatagram(kind, flowTemplate(plan, base, size).bytes),
        malformedKind: GENEVE_REASONS.indexOf(kind),
        stampOffset: -1,
        checksumOffset: -1,
        ttlOffset: -1,
        ipChecksumOffset: -1,
        socket: base.socket,
      });
    }
  }
  return out;
}
