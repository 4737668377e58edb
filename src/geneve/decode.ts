/**
 * GENEVE decoder. Mirrors native/src/geneve.cc check for check, in the same
 * order, so that any byte string gives the same reason in both (a test feeds
 * thousands of inputs to both and compares). Pure; never throws on bad bytes.
 *
 *  0                   1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |Ver|  Opt Len  |O|C|    Rsvd.  |          Protocol Type        |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |        Virtual Network Identifier (VNI)       |    Reserved   |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |          Option Class         |      Type     |R|R|R| Length  |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                 Variable-Length Option Data                   |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *
 * Opt Len and each option's Length count 4-byte words.
 */
import { GatehouseError } from '../errors';
import type { GeneveReason } from './reasons';
import {
  AWS_ATTACHMENT_LENGTH,
  AWS_COOKIE_LENGTH,
  AWS_ENI_LENGTH,
  AWS_OPTION_ATTACHMENT,
  AWS_OPTION_CLASS,
  AWS_OPTION_COOKIE,
  AWS_OPTION_ENI,
  ETHERTYPE_IPV4,
  ETHERTYPE_IPV6,
  GENEVE_FIXED_HEADER_LENGTH,
  GENEVE_OPTION_HEADER_LENGTH,
  type DecodeResult,
  type GeneveOption,
  type GwlbFields,
} from './types';

const IPV4_MIN_HEADER = 20;
const IPV6_HEADER = 40;

function be16(b: Uint8Array, at: number): number {
  return (b[at] << 8) | b[at + 1];
}

function be32(b: Uint8Array, at: number): number {
  return ((b[at] << 24) | (b[at + 1] << 16) | (b[at + 2] << 8) | b[at + 3]) >>> 0;
}

function be64(b: Uint8Array, at: number): bigint {
  return (BigInt(be32(b, at)) << 32n) | BigInt(be32(b, at + 4));
}

/** A copy, as a plain Uint8Array (not a Buffer), so results never alias the input. */
function copy(b: Uint8Array, start: number, end: number): Uint8Array {
  return new Uint8Array(b.subarray(start, end));
}

function fail(reason: GeneveReason): DecodeResult {
  return { ok: false, reason };
}

/** Decodes one GENEVE datagram (the UDP payload) and checks it is what GWLB sends. */
export function decodeGeneve(datagram: Uint8Array): DecodeResult {
  const len = datagram.length;
  if (len < GENEVE_FIXED_HEADER_LENGTH) return fail('truncated_header');
  // Byte 0: Ver (2 bits) | Opt Len (6 bits, in words).
  if (datagram[0] >> 6 !== 0) return fail('bad_version');
  const headerLen = GENEVE_FIXED_HEADER_LENGTH + (datagram[0] & 0x3f) * 4;
  if (headerLen > len) return fail('options_past_datagram');

  // Option area [8, headerLen): class (16) | type (8) | R R R Length (5, words) | data.
  // -1 = not seen; a later duplicate of an AWS option overrides an earlier one.
  const options: GeneveOption[] = [];
  let eniLen = -1;
  let attachmentLen = -1;
  let cookieLen = -1;
  let off = GENEVE_FIXED_HEADER_LENGTH;
  while (off < headerLen) {
    if (off + GENEVE_OPTION_HEADER_LENGTH > headerLen) return fail('option_past_area');
    const dataLen = (datagram[off + 3] & 0x1f) * 4;
    const dataStart = off + GENEVE_OPTION_HEADER_LENGTH;
    if (dataStart + dataLen > headerLen) return fail('option_past_area');
    const optClass = be16(datagram, off);
    const type = datagram[off + 2];
    if (optClass === AWS_OPTION_CLASS) {
      if (type === AWS_OPTION_ENI) eniLen = dataLen;
      else if (type === AWS_OPTION_ATTACHMENT) attachmentLen = dataLen;
      else if (type === AWS_OPTION_COOKIE) cookieLen = dataLen;
    }
    options.push({ optClass, type, data: copy(datagram, dataStart, dataStart + dataLen) });
    off = dataStart + dataLen;
  }
  if (eniLen < 0) return fail('eni_missing');
  if (eniLen !== AWS_ENI_LENGTH) return fail('eni_bad_length');
  if (attachmentLen < 0) return fail('attachment_missing');
  if (attachmentLen !== AWS_ATTACHMENT_LENGTH) return fail('attachment_bad_length');
  if (cookieLen < 0) return fail('cookie_missing');
  if (cookieLen !== AWS_COOKIE_LENGTH) return fail('cookie_bad_length');

  // Bytes 2-3: Protocol Type, the inner packet's EtherType.
  const protocol = be16(datagram, 2);
  if (protocol !== ETHERTYPE_IPV4 && protocol !== ETHERTYPE_IPV6) return fail('bad_protocol');
  const innerLen = len - headerLen;
  // An empty inner packet has no version nibble to disagree with: too short.
  if (innerLen === 0) return fail('inner_truncated');
  // Inner byte 0: IP version (4 bits) | IPv4 IHL (4 bits, in words).
  const version = datagram[headerLen] >> 4;
  if ((protocol === ETHERTYPE_IPV4 && version !== 4) || (protocol === ETHERTYPE_IPV6 && version !== 6)) {
    return fail('ip_version_mismatch');
  }
  if (protocol === ETHERTYPE_IPV4) {
    const ihl = (datagram[headerLen] & 0x0f) * 4;
    if (innerLen < IPV4_MIN_HEADER || ihl < IPV4_MIN_HEADER || innerLen < ihl) return fail('inner_truncated');
  } else if (innerLen < IPV6_HEADER) {
    return fail('inner_truncated');
  }

  return {
    ok: true,
    value: {
      // Byte 1: O (1 bit) | C (1 bit) | reserved (6 bits).
      oam: (datagram[1] & 0x80) !== 0,
      critical: (datagram[1] & 0x40) !== 0,
      protocol,
      // Bytes 4-7: VNI (24 bits) | reserved (8 bits).
      vni: (datagram[4] << 16) | (datagram[5] << 8) | datagram[6],
      options,
      inner: copy(datagram, headerLen, len),
    },
  };
}

/** The last AWS option of `type` (last wins, as in the decoders), checked for its length. */
function lastAwsOption(options: readonly GeneveOption[], type: number, length: number, name: string): Uint8Array {
  let found: GeneveOption | undefined;
  for (const o of options) if (o.optClass === AWS_OPTION_CLASS && o.type === type) found = o;
  if (found === undefined || found.data.length !== length) {
    const got = found === undefined ? 'none' : `${found.data.length} bytes of data`;
    throw new GatehouseError(
      'ERR_INVALID_ARG',
      `Expected an AWS option (class 0x0108, type ${type}) with ${length} bytes of data for ${name} but received ${got}`,
    );
  }
  return found.data;
}

/**
 * The ENI id, attachment id and flow cookie of a packet. Any packet
 * decodeGeneve accepted has them; for a hand-made packet without them this
 * throws ERR_INVALID_ARG.
 */
export function readGwlbFields(p: { options: readonly GeneveOption[] }): GwlbFields {
  return {
    eni: be64(lastAwsOption(p.options, AWS_OPTION_ENI, AWS_ENI_LENGTH, 'eni'), 0),
    attachment: be64(lastAwsOption(p.options, AWS_OPTION_ATTACHMENT, AWS_ATTACHMENT_LENGTH, 'attachment'), 0),
    cookie: be32(lastAwsOption(p.options, AWS_OPTION_COOKIE, AWS_COOKIE_LENGTH, 'cookie'), 0),
  };
}
