/**
 * The packets a `reject` verdict sends, built from the packet that was
 * judged. Pure: bytes in, bytes out; the engine injects them toward GWLB
 * inside the flow's own GENEVE header, so each side sees them come from its
 * peer (a bump in the wire has no address of its own).
 *
 * TCP (RFC 9293 3.10.7, RFC 5961 3.2): two resets, each with the sequence
 * number its receiver expects next, because Linux and others answer an
 * in-window but inexact RST with a challenge ACK instead of resetting.
 *   - to the packet's sender, from its peer: seq = the packet's ACK field,
 *     flags RST|ACK, ack = seq + payload (+1 for SYN, +1 for FIN). Without
 *     an ACK field (a bare SYN) seq is 0, as RFC 9293 says.
 *   - to the packet's receiver, from the sender: seq = the first sequence
 *     number of the sender's that the receiver has not been given (the
 *     judged packet was held and is dropped, so by default its own seq),
 *     ack = the packet's ACK field. Not sent for a bare SYN: the receiver
 *     never heard of the connection.
 *   Never a reset in answer to a reset.
 * Anything else: ICMP destination unreachable to the packet's sender, from
 * the address it wrote to: IPv4 type 3 code 13 (communication
 * administratively prohibited, RFC 1812 5.2.7.1) quoting the IP header and
 * 8 bytes (RFC 792); IPv6 type 1 code 1 (RFC 4443 3.1) quoting as much as
 * fits in 1280 bytes. None in answer to an ICMP error, a non-first fragment,
 * or a packet to or from a multicast or broadcast address (RFC 1122 3.2.2,
 * RFC 4443 2.4(e)).
 */
import type { InspectPacketEvent } from '../native/binding';
import { internetChecksum, pseudoHeaderSum } from '../packet/checksum';

/** What the builder reads from a packet event. */
export type RejectInput = Pick<InspectPacketEvent, 'family' | 'protocol' | 'tcpFlags' | 'seq' | 'ack' | 'payload' | 'packet' | 'fromClient' | 'clientPort' | 'serverPort'>;

export interface RejectOptions {
  /**
   * TCP: the sequence number the judged packet's receiver expects next,
   * when earlier data of the same direction was held back too (the first
   * held payload byte). Default: the judged packet's own seq.
   */
  receiverNextSeq?: number;
}

export const TCP_FIN = 0x01;
export const TCP_SYN = 0x02;
export const TCP_RST = 0x04;
export const TCP_ACK = 0x10;

const TCP = 6;
const ICMP = 1;
const ICMPV6 = 58;
const TTL = 64;
const IPV6_MIN_MTU = 1280;
/** ICMPv4 error types (RFC 1122 3.2.2): unreachable, source quench, redirect, time exceeded, parameter problem. */
const ICMP4_ERRORS = new Set([3, 4, 5, 11, 12]);

/** The inner packets that reject the flow of `e`; empty when nothing may be sent. */
export function rejectPackets(e: RejectInput, opts: RejectOptions = {}): Uint8Array[] {
  const header = ipHeader(e);
  if (header === null) return [];
  if (e.protocol === TCP) return tcpResets(e, header, opts);
  const icmp = icmpUnreachable(e, header);
  return icmp === null ? [] : [icmp];
}

interface IpFacts {
  family: 4 | 6;
  /** The judged packet's source and destination address bytes. */
  src: Uint8Array;
  dst: Uint8Array;
  /** IPv4: the header length; IPv6: 40. */
  headerLength: number;
}

function ipHeader(e: RejectInput): IpFacts | null {
  const p = e.packet;
  if (e.family === 4) {
    if (p.length < 20 || p[0] >> 4 !== 4) return null;
    const headerLength = (p[0] & 0x0f) * 4;
    if (headerLength < 20 || p.length < headerLength) return null;
    return { family: 4, src: p.subarray(12, 16), dst: p.subarray(16, 20), headerLength };
  }
  if (p.length < 40 || p[0] >> 4 !== 6) return null;
  return { family: 6, src: p.subarray(8, 24), dst: p.subarray(24, 40), headerLength: 40 };
}

function tcpResets(e: RejectInput, ip: IpFacts, opts: RejectOptions): Uint8Array[] {
  if ((e.tcpFlags & TCP_RST) !== 0) return [];
  const senderPort = e.fromClient ? e.clientPort : e.serverPort;
  const receiverPort = e.fromClient ? e.serverPort : e.clientPort;
  const hasAck = (e.tcpFlags & TCP_ACK) !== 0;
  const segmentLength = e.payload.length + (e.tcpFlags & TCP_SYN ? 1 : 0) + (e.tcpFlags & TCP_FIN ? 1 : 0);
  const toSender = tcpSegment(ip.family, ip.dst, ip.src, receiverPort, senderPort, hasAck ? e.ack : 0, (e.seq + segmentLength) >>> 0);
  if (!hasAck) return [toSender];
  const toReceiver = tcpSegment(ip.family, ip.src, ip.dst, senderPort, receiverPort, opts.receiverNextSeq ?? e.seq, e.ack);
  return [toSender, toReceiver];
}

/** An IP packet holding a bare TCP header with RST|ACK. */
function tcpSegment(family: 4 | 6, src: Uint8Array, dst: Uint8Array, srcPort: number, dstPort: number, seq: number, ack: number): Uint8Array {
  const l4 = new Uint8Array(20);
  const v = new DataView(l4.buffer);
  v.setUint16(0, srcPort);
  v.setUint16(2, dstPort);
  v.setUint32(4, seq >>> 0);
  v.setUint32(8, ack >>> 0);
  l4[12] = 5 << 4; // data offset: 5 words, no options
  l4[13] = TCP_RST | TCP_ACK;
  // window 0, urgent pointer 0
  v.setUint16(16, internetChecksum(l4, pseudoHeaderSum(src, dst, TCP, l4.length)));
  return ipPacket(family, src, dst, TCP, l4);
}

function icmpUnreachable(e: RejectInput, ip: IpFacts): Uint8Array | null {
  const p = e.packet;
  if (isMulticastOrBroadcast(ip.src) || isMulticastOrBroadcast(ip.dst) || isUnspecified(ip.src)) return null;
  if (ip.family === 4) {
    const fragmentOffset = ((p[6] << 8) | p[7]) & 0x1fff;
    if (fragmentOffset !== 0) return null;
    if (e.protocol === ICMP && (e.payload.length === 0 || ICMP4_ERRORS.has(e.payload[0]))) return null;
    const quote = p.subarray(0, Math.min(p.length, ip.headerLength + 8));
    return ipPacket(4, ip.dst, ip.src, ICMP, icmpMessage(3, 13, quote, 0));
  }
  if (e.protocol === ICMPV6 && (e.payload.length === 0 || e.payload[0] < 128)) return null;
  const quote = p.subarray(0, Math.min(p.length, IPV6_MIN_MTU - 40 - 8));
  // ICMPv6's checksum covers a pseudo-header (RFC 4443 2.3); ICMPv4's does not.
  return ipPacket(6, ip.dst, ip.src, ICMPV6, icmpMessage(1, 1, quote, pseudoHeaderSum(ip.dst, ip.src, ICMPV6, 8 + quote.length)));
}

/** type | code | checksum | 4 unused bytes | the quoted packet. */
function icmpMessage(type: number, code: number, quote: Uint8Array, pseudoSum: number): Uint8Array {
  const m = new Uint8Array(8 + quote.length);
  m[0] = type;
  m[1] = code;
  m.set(quote, 8);
  const c = internetChecksum(m, pseudoSum);
  m[2] = c >> 8;
  m[3] = c & 0xff;
  return m;
}

function ipPacket(family: 4 | 6, src: Uint8Array, dst: Uint8Array, protocol: number, l4: Uint8Array): Uint8Array {
  const headerLength = family === 4 ? 20 : 40;
  const p = new Uint8Array(headerLength + l4.length);
  const v = new DataView(p.buffer);
  if (family === 4) {
    p[0] = 0x45;
    v.setUint16(2, p.length);
    v.setUint16(6, 0x4000); // DF, id 0 (RFC 6864: fine for atomic datagrams)
    p[8] = TTL;
    p[9] = protocol;
    p.set(src, 12);
    p.set(dst, 16);
    v.setUint16(10, internetChecksum(p.subarray(0, 20)));
  } else {
    v.setUint32(0, 0x60000000);
    v.setUint16(4, l4.length);
    p[6] = protocol;
    p[7] = TTL;
    p.set(src, 8);
    p.set(dst, 24);
  }
  p.set(l4, headerLength);
  return p;
}

function isMulticastOrBroadcast(a: Uint8Array): boolean {
  if (a.length === 4) return a[0] >= 224; // multicast, class E and the limited broadcast
  return a[0] === 0xff;
}

function isUnspecified(a: Uint8Array): boolean {
  return a.every((b) => b === 0);
}
