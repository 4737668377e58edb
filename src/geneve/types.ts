/**
 * GENEVE (RFC 8926) as AWS Gateway Load Balancer speaks it: the shapes the
 * TypeScript codec works with. The native decoder (native/src/geneve.cc)
 * checks the same bytes the same way; see decode.ts for the wire format.
 */
import type { GeneveReason } from './reasons';

/** UDP port GWLB sends GENEVE to (and targets reply to). */
export const GENEVE_PORT = 6081;
/** GENEVE version GWLB speaks; anything else is `bad_version`. */
export const GENEVE_VERSION = 0;
/** Option class AWS (Amazon) uses for the GWLB options. */
export const AWS_OPTION_CLASS = 0x0108;
/** AWS option type 1: GWLB endpoint ENI id, 8 bytes. */
export const AWS_OPTION_ENI = 1;
/** AWS option type 2: attachment id, 8 bytes. */
export const AWS_OPTION_ATTACHMENT = 2;
/** AWS option type 3: flow cookie, 4 bytes. */
export const AWS_OPTION_COOKIE = 3;
/** Data lengths GWLB uses for its three options. */
export const AWS_ENI_LENGTH = 8;
export const AWS_ATTACHMENT_LENGTH = 8;
export const AWS_COOKIE_LENGTH = 4;

/** Protocol type = EtherType of the inner L3 packet (no inner Ethernet header). */
export const ETHERTYPE_IPV4 = 0x0800;
export const ETHERTYPE_IPV6 = 0x86dd;

/** The fixed part of every GENEVE header, before the options. */
export const GENEVE_FIXED_HEADER_LENGTH = 8;
/** Each option starts with a 4-byte header (class, type, length). */
export const GENEVE_OPTION_HEADER_LENGTH = 4;
/** Option data is at most 31 words (the Length field has 5 bits). */
export const GENEVE_MAX_OPTION_DATA = 31 * 4;
/** The option area is at most 63 words (the Opt Len field has 6 bits). */
export const GENEVE_MAX_OPTIONS_LENGTH = 63 * 4;

/**
 * One GENEVE option. `type` is the whole 8-bit type byte, critical bit (0x80)
 * included. The option header's three reserved bits are not kept: RFC 8926
 * says senders set them to zero and receivers ignore them.
 */
export interface GeneveOption {
  optClass: number; // 0..0xffff
  type: number; // 0..0xff
  data: Uint8Array; // a multiple of 4 bytes, at most 124
}

/**
 * A decoded GENEVE datagram. The reserved bits and the reserved byte after
 * the VNI are not kept (zero on encode, ignored on decode, per RFC 8926).
 */
export interface GenevePacket {
  oam: boolean; // O bit: control packet
  critical: boolean; // C bit: critical options present
  protocol: number; // EtherType of `inner`
  vni: number; // 24 bits; GWLB sends 0
  /** Wire order, AWS options included, unknown options kept byte for byte. */
  options: GeneveOption[];
  inner: Uint8Array; // the inner IPv4 / IPv6 packet
}

/** The three values GWLB puts in its options. */
export interface GwlbFields {
  eni: bigint; // GWLB endpoint ENI id (u64)
  attachment: bigint; // attachment id (u64)
  cookie: number; // flow cookie (u32, big-endian on the wire)
}

/** Result of decodeGeneve: a packet, or the first reason it is not valid. */
export type DecodeResult = { ok: true; value: GenevePacket } | { ok: false; reason: GeneveReason };
