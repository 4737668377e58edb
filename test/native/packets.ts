/**
 * Hand-built packets for the native engine tests (not a test itself):
 * GENEVE headers, inner IPv4/IPv6 packets with UDP, TCP and ICMP, generator
 * templates, one malformed datagram per GENEVE reason, and an Internet
 * checksum written here from RFC 1071, so the native code is judged by an
 * independent computation rather than by itself.
 */
import type { GeneratorTemplate } from '../../src/native/binding';
import { GENEVE_REASONS, type GeneveReason } from '../../src/geneve/reasons';

/** RFC 1071 sum of big-endian 16-bit words (odd byte padded), folded to 16 bits. */
export function onesSum(bytes: Uint8Array, start = 0): number {
  let s = start;
  for (let i = 0; i + 1 < bytes.length; i += 2) s += (bytes[i] << 8) | bytes[i + 1];
  if (bytes.length % 2) s += bytes[bytes.length - 1] << 8;
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return s;
}

export const be16 = (b: Uint8Array, at: number): number => (b[at] << 8) | b[at + 1];
export const be64 = (b: Uint8Array, at: number): bigint => Buffer.from(b.buffer, b.byteOffset, b.length).readBigUInt64BE(at);
function put16(b: Uint8Array, at: number, v: number): void {
  b[at] = v >> 8;
  b[at + 1] = v & 0xff;
}

export const ETH_IPV4 = 0x0800;
export const ETH_IPV6 = 0x86dd;
export const EXAMPLE_ENI = 0x0123456789abcdefn;
export const EXAMPLE_ATTACHMENT = 0xfedcba9876543210n;
export const EXAMPLE_COOKIE = 0xdeadbeef;

export interface GeneveOptionSpec {
  optClass: number;
  type: number;
  data: Uint8Array;
}

function u64(v: bigint): Uint8Array {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(v);
  return new Uint8Array(b);
}
function u32(v: number): Uint8Array {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v >>> 0);
  return new Uint8Array(b);
}

/** The three GWLB options (class 0x0108, types 1, 2, 3). */
export function gwlbOptionList(eni = EXAMPLE_ENI, attachment = EXAMPLE_ATTACHMENT, cookie = EXAMPLE_COOKIE): GeneveOptionSpec[] {
  return [
    { optClass: 0x0108, type: 1, data: u64(eni) },
    { optClass: 0x0108, type: 2, data: u64(attachment) },
    { optClass: 0x0108, type: 3, data: u32(cookie) },
  ];
}

/** GENEVE header (version 0, VNI 0) with `options`, then `inner`; lengths as the data dictate. */
export function geneve(protocol: number, options: GeneveOptionSpec[], inner: Uint8Array, version = 0): Uint8Array {
  const optBytes = options.reduce((n, o) => n + 4 + o.data.length, 0);
  const out = new Uint8Array(8 + optBytes + inner.length);
  out[0] = (version << 6) | (optBytes / 4);
  put16(out, 2, protocol);
  let at = 8;
  for (const o of options) {
    put16(out, at, o.optClass);
    out[at + 2] = o.type;
    out[at + 3] = o.data.length / 4;
    out.set(o.data, at + 4);
    at += 4 + o.data.length;
  }
  out.set(inner, at);
  return out;
}

export type L4 = 'udp' | 'tcp' | 'icmp';
const PROTO: Record<L4, number> = { udp: 17, tcp: 6, icmp: 1 };
const V4_SRC = [198, 51, 100, 7];
const V4_DST = [203, 0, 113, 9];
const V6_SRC = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7];
const V6_DST = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9];

export interface InnerPacket {
  bytes: Uint8Array;
  l4Offset: number; // start of the L4 header
  checksumOffset: number; // L4 checksum
  payloadOffset: number;
  ttlOffset: number;
  ipChecksumOffset: number; // -1 for IPv6
}

/**
 * An inner packet of exactly `size` bytes with correct checksums. The
 * payload is a byte pattern; the generator's stamp goes at payloadOffset +
 * `stampSkew` (zeros there).
 */
export function innerPacket(family: 4 | 6, l4: L4, size: number, stampSkew = 0): InnerPacket {
  const ipLen = family === 4 ? 20 : 40;
  const l4Len = l4 === 'tcp' ? 20 : 8;
  const b = new Uint8Array(size);
  const l4Offset = ipLen;
  const payloadOffset = ipLen + l4Len;
  for (let i = payloadOffset; i < size; i++) b[i] = (i * 7 + 3) & 0xff;
  b.fill(0, payloadOffset + stampSkew, payloadOffset + stampSkew + 24);
  const proto = family === 6 && l4 === 'icmp' ? 58 : PROTO[l4];
  if (family === 4) {
    b[0] = 0x45;
    put16(b, 2, size);
    put16(b, 4, 0x1234);
    put16(b, 6, 0x4000);
    b[8] = 64;
    b[9] = proto;
    b.set(V4_SRC, 12);
    b.set(V4_DST, 16);
    put16(b, 10, ~onesSum(b.subarray(0, 20)) & 0xffff);
  } else {
    b[0] = 0x60;
    put16(b, 4, size - 40);
    b[6] = proto;
    b[7] = 64;
    b.set(V6_SRC, 8);
    b.set(V6_DST, 24);
  }
  let checksumOffset: number;
  if (l4 === 'udp') {
    put16(b, l4Offset, 40000);
    put16(b, l4Offset + 2, 53);
    put16(b, l4Offset + 4, size - ipLen);
    checksumOffset = l4Offset + 6;
  } else if (l4 === 'tcp') {
    put16(b, l4Offset, 40001);
    put16(b, l4Offset + 2, 443);
    b.set([0, 0, 0, 1, 0, 0, 0, 2], l4Offset + 4);
    b[l4Offset + 12] = 5 << 4;
    b[l4Offset + 13] = 0x18; // PSH | ACK
    put16(b, l4Offset + 14, 65535);
    checksumOffset = l4Offset + 16;
  } else {
    b[l4Offset] = family === 4 ? 8 : 128; // echo request
    put16(b, l4Offset + 4, 0x4242);
    put16(b, l4Offset + 6, 1);
    checksumOffset = l4Offset + 2;
  }
  put16(b, checksumOffset, l4Checksum(b, family, l4Offset));
  return { bytes: b, l4Offset, checksumOffset, payloadOffset, ttlOffset: family === 4 ? 8 : 7, ipChecksumOffset: family === 4 ? 10 : -1 };
}

/**
 * The L4 checksum `inner` should carry (computed with its checksum field
 * taken as zero): pseudo-header for UDP, TCP and ICMPv6, none for ICMPv4.
 */
export function l4Checksum(inner: Uint8Array, family: 4 | 6, l4Offset: number): number {
  const seg = Uint8Array.from(inner.subarray(l4Offset));
  const proto = family === 4 ? inner[9] : inner[6];
  const csumAt = proto === 17 ? 6 : proto === 6 ? 16 : 2;
  put16(seg, csumAt, 0);
  let sum = 0;
  if (family === 4 && proto !== 1) {
    sum = onesSum(inner.subarray(12, 20));
    sum = onesSum(Uint8Array.of(0, proto, seg.length >> 8, seg.length & 0xff), sum);
  } else if (family === 6) {
    sum = onesSum(inner.subarray(8, 40));
    sum = onesSum(Uint8Array.of(0, 0, seg.length >> 8, seg.length & 0xff, 0, 0, 0, proto), sum);
  }
  const c = ~onesSum(seg, sum) & 0xffff;
  return proto === 17 && c === 0 ? 0xffff : c;
}

/** A good generator template: GWLB GENEVE around an inner packet of `innerSize` bytes. */
export function goodTemplate(family: 4 | 6, l4: L4, innerSize: number, socket = 0, stampSkew = 0, cookie = EXAMPLE_COOKIE): GeneratorTemplate {
  const inner = innerPacket(family, l4, innerSize, stampSkew);
  const bytes = geneve(family === 4 ? ETH_IPV4 : ETH_IPV6, gwlbOptionList(EXAMPLE_ENI, EXAMPLE_ATTACHMENT, cookie), inner.bytes);
  const h = bytes.length - inner.bytes.length;
  return {
    bytes,
    malformedKind: -1,
    stampOffset: h + inner.payloadOffset + stampSkew,
    checksumOffset: h + inner.checksumOffset,
    ttlOffset: h + inner.ttlOffset,
    ipChecksumOffset: inner.ipChecksumOffset < 0 ? -1 : h + inner.ipChecksumOffset,
    socket,
  };
}

/** One datagram per GENEVE reason, each defective in exactly that way (the decoders' check order). */
export function malformedDatagrams(): Record<GeneveReason, Uint8Array> {
  const v4 = innerPacket(4, 'udp', 60).bytes;
  const opts = gwlbOptionList();
  const [eni, att, cookie] = opts;
  const good = geneve(ETH_IPV4, opts, v4);
  const optionPastArea = Uint8Array.from(good);
  optionPastArea[35] = 2; // cookie claims 8 bytes: runs past the 32-byte option area
  const out: Record<GeneveReason, Uint8Array> = {
    truncated_header: good.subarray(0, 7),
    bad_version: geneve(ETH_IPV4, opts, v4, 1),
    options_past_datagram: good.subarray(0, 30),
    option_past_area: optionPastArea,
    eni_missing: geneve(ETH_IPV4, [att, cookie], v4),
    eni_bad_length: geneve(ETH_IPV4, [{ ...eni, data: new Uint8Array(4) }, att, cookie], v4),
    attachment_missing: geneve(ETH_IPV4, [eni, cookie], v4),
    attachment_bad_length: geneve(ETH_IPV4, [eni, { ...att, data: new Uint8Array(12) }, cookie], v4),
    cookie_missing: geneve(ETH_IPV4, [eni, att], v4),
    cookie_bad_length: geneve(ETH_IPV4, [eni, att, { ...cookie, data: new Uint8Array(8) }], v4),
    bad_protocol: geneve(0x6558, opts, v4),
    ip_version_mismatch: geneve(ETH_IPV6, opts, v4),
    inner_truncated: geneve(ETH_IPV4, opts, v4.subarray(0, 12)),
  };
  return out;
}

/** Malformed generator templates, one per reason, all on `socket`. */
export function malformedTemplates(socket = 0): GeneratorTemplate[] {
  const m = malformedDatagrams();
  return GENEVE_REASONS.map((reason, kind) => ({
    bytes: m[reason],
    malformedKind: kind,
    stampOffset: 0,
    checksumOffset: -1,
    ttlOffset: 0,
    ipChecksumOffset: -1,
    socket,
  }));
}
