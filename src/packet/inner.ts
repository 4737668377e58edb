/**
 * Builds the inner IP packets GWLB carries (IPv4/IPv6 with UDP, TCP or ICMP
 * echo), with every checksum correct, for the emulator and for tests.
 *
 * The payload starts with a zeroed stamp area of STAMP_LENGTH bytes that the
 * native generator fills per packet (run tag, sequence, send time) and
 * accounts for with an incremental checksum update; the rest of the payload
 * is a fixed pattern so a corrupted byte anywhere is detected.
 */
import { internetChecksum, pseudoHeaderSum } from './checksum';

export const STAMP_LENGTH = 24;

export type InnerProtocol = 'udp' | 'tcp' | 'icmp';

export interface InnerPacketSpec {
  /** 4 or 16 bytes each; both of the same family. */
  src: Uint8Array;
  dst: Uint8Array;
  protocol: InnerProtocol;
  /** UDP/TCP ports; for ICMP, srcPort is the echo identifier. */
  srcPort: number;
  dstPort: number;
  /** Total inner packet length in bytes (IP header included). */
  size: number;
  ttl?: number;
}

export interface InnerPacket {
  bytes: Buffer;
  stampOffset: number;
  /** Offset of the L4 checksum (covers the stamp). */
  checksumOffset: number;
  ttlOffset: number;
  /** IPv4 header checksum offset, -1 for IPv6. */
  ipChecksumOffset: number;
}

const PROTO_NUMBER = { udp: 17, tcp: 6, icmp: 1 } as const;
const L4_HEADER = { udp: 8, tcp: 20, icmp: 8 } as const;

/** Smallest inner packet that holds the headers and the stamp. */
export function minimumInnerSize(family: 4 | 6, protocol: InnerProtocol): number {
  return (family === 4 ? 20 : 40) + L4_HEADER[protocol] + STAMP_LENGTH;
}

export function buildInnerPacket(spec: InnerPacketSpec): InnerPacket {
  const v6 = spec.src.length === 16;
  const family = v6 ? 6 : 4;
  if (spec.dst.length !== spec.src.length) throw new TypeError('Expected src and dst of the same address family');
  const min = minimumInnerSize(family, spec.protocol);
  if (spec.size < min || spec.size > 65535) {
    throw new RangeError(`Expected inner size between ${min} and 65535 for ${spec.protocol}/IPv${family} but received ${spec.size}`);
  }
  const ipLen = v6 ? 40 : 20;
  const l4Len = spec.size - ipLen;
  const buf = Buffer.alloc(spec.size);
  const proto = spec.protocol === 'icmp' && v6 ? 58 : PROTO_NUMBER[spec.protocol];
  const ttl = spec.ttl ?? 64;

  if (v6) {
    buf.writeUInt32BE(0x60000000, 0);
    buf.writeUInt16BE(l4Len, 4);
    buf[6] = proto;
    buf[7] = ttl;
    buf.set(spec.src, 8);
    buf.set(spec.dst, 24);
  } else {
    buf[0] = 0x45;
    buf.writeUInt16BE(spec.size, 2);
    buf.writeUInt16BE(0x4000, 6); // DF
    buf[8] = ttl;
    buf[9] = proto;
    buf.set(spec.src, 12);
    buf.set(spec.dst, 16);
    buf.writeUInt16BE(internetChecksum(buf.subarray(0, 20)), 10);
  }

  const l4 = buf.subarray(ipLen);
  const hdr = L4_HEADER[spec.protocol];
  let csumAt: number;
  if (spec.protocol === 'udp') {
    l4.writeUInt16BE(spec.srcPort, 0);
    l4.writeUInt16BE(spec.dstPort, 2);
    l4.writeUInt16BE(l4Len, 4);
    csumAt = 6;
  } else if (spec.protocol === 'tcp') {
    l4.writeUInt16BE(spec.srcPort, 0);
    l4.writeUInt16BE(spec.dstPort, 2);
    l4.writeUInt32BE(0x1000, 4); // sequence
    l4.writeUInt32BE(0x2000, 8); // acknowledgment
    l4[12] = 5 << 4; // data offset: 5 words
    l4[13] = 0x18; // PSH | ACK: a mid-stream data segment
    l4.writeUInt16BE(0xffff, 14); // window
    csumAt = 16;
  } else {
    l4[0] = v6 ? 128 : 8; // echo request
    l4.writeUInt16BE(spec.srcPort, 4); // identifier
    l4.writeUInt16BE(1, 6); // sequence
    csumAt = 2;
  }
  // Payload: stamp area (zeros), then a repeating pattern.
  for (let i = hdr + STAMP_LENGTH; i < l4Len; i++) l4[i] = (i * 31 + 7) & 0xff;

  let pseudo = 0;
  if (v6 || spec.protocol !== 'icmp') {
    // UDP/TCP over both families, and ICMPv6, include the pseudo-header.
    pseudo = pseudoHeaderSum(spec.src, spec.dst, proto, l4Len);
  }
  let c = internetChecksum(l4, pseudo);
  if (spec.protocol === 'udp' && c === 0) c = 0xffff;
  l4.writeUInt16BE(c, csumAt);

  return {
    bytes: buf,
    stampOffset: ipLen + hdr,
    checksumOffset: ipLen + csumAt,
    ttlOffset: v6 ? 7 : 8,
    ipChecksumOffset: v6 ? -1 : 10,
  };
}

