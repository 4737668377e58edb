/**
 * Malformed variants of a valid GWLB datagram, one per GENEVE_REASONS entry,
 * for the emulator's `--malformed` load and for tests. Each variant is made
 * so that both decoders (this codec and native/src/geneve.cc) reject it with
 * exactly that reason: every check before it still passes, it fails.
 *
 * Variants are built from the datagram's own bytes (option reserved bits,
 * unknown options and the inner packet kept where the defect allows), so
 * they look like the traffic they are mixed into.
 */
import { decodeGeneve } from './decode';
import { geneveHeaderLength } from './encode';
import type { GeneveReason } from './reasons';
import {
  AWS_OPTION_ATTACHMENT,
  AWS_OPTION_CLASS,
  AWS_OPTION_COOKIE,
  AWS_OPTION_ENI,
  ETHERTYPE_IPV4,
  ETHERTYPE_IPV6,
  GENEVE_FIXED_HEADER_LENGTH,
  GENEVE_OPTION_HEADER_LENGTH,
  type GenevePacket,
} from './types';
import { expected, invalidArg } from '../validate';

/** EtherType of Transparent Ethernet Bridging: a real GENEVE payload, just not one GWLB sends. */
const ETHERTYPE_TEB = 0x6558;
const MAX_OPTION_WORDS = 0x1f;

/** Where one option sits in the datagram. */
interface OptionSpan {
  start: number; // its 4-byte header
  end: number; // one past its data
  optClass: number;
  type: number;
}

interface Layout {
  headerLen: number;
  protocol: number;
  options: OptionSpan[];
}

function layoutOf(p: GenevePacket): Layout {
  const options: OptionSpan[] = [];
  let off = GENEVE_FIXED_HEADER_LENGTH;
  for (const o of p.options) {
    const end = off + GENEVE_OPTION_HEADER_LENGTH + o.data.length;
    options.push({ start: off, end, optClass: o.optClass, type: o.type });
    off = end;
  }
  return { headerLen: geneveHeaderLength(p), protocol: p.protocol, options };
}

const isAws = (type: number) => (o: OptionSpan) => o.optClass === AWS_OPTION_CLASS && o.type === type;

/** Same fixed header (Opt Len recomputed), the given option bytes, same inner packet. */
function withOptionArea(good: Uint8Array, l: Layout, area: Uint8Array[]): Uint8Array {
  const areaLen = area.reduce((n, a) => n + a.length, 0);
  const inner = good.subarray(l.headerLen);
  const out = new Uint8Array(GENEVE_FIXED_HEADER_LENGTH + areaLen + inner.length);
  out.set(good.subarray(0, GENEVE_FIXED_HEADER_LENGTH));
  out[0] = (good[0] & 0xc0) | (areaLen / 4);
  let off = GENEVE_FIXED_HEADER_LENGTH;
  for (const a of area) {
    out.set(a, off);
    off += a.length;
  }
  out.set(inner, off);
  return out;
}

/** Drops every AWS option of `type`: the decoders then find it missing. */
function withoutAws(good: Uint8Array, l: Layout, type: number): Uint8Array {
  const keep = l.options.filter((o) => !isAws(type)(o));
  return withOptionArea(
    good,
    l,
    keep.map((o) => good.subarray(o.start, o.end)),
  );
}

/** Cuts the data of the last AWS option of `type` (the one the decoders use) to `dataLen` bytes. */
function withAwsDataLength(good: Uint8Array, l: Layout, type: number, dataLen: number): Uint8Array {
  const last = l.options.filter(isAws(type)).pop();
  const area = l.options.map((o) => {
    const bytes = good.subarray(o.start, o.end);
    if (o !== last) return bytes;
    const cut = new Uint8Array(bytes.subarray(0, GENEVE_OPTION_HEADER_LENGTH + dataLen));
    cut[3] = (cut[3] & 0xe0) | (dataLen / 4); // keep the R bits, new Length
    return cut;
  });
  return withOptionArea(good, l, area);
}

/** Makes the last option claim more than the option area holds. */
function optionPastArea(good: Uint8Array, l: Layout): Uint8Array {
  const out = new Uint8Array(good);
  const last = l.options[l.options.length - 1];
  if ((out[last.start + 3] & 0x1f) < MAX_OPTION_WORDS) {
    // It ended exactly at the area's end: 31 words now run past it.
    out[last.start + 3] |= MAX_OPTION_WORDS;
  } else {
    // 124 bytes of data already: shrink the area by a word under it instead.
    out[0] = (out[0] & 0xc0) | ((out[0] & 0x3f) - 1);
  }
  return out;
}

function withProtocol(good: Uint8Array, protocol: number): Uint8Array {
  const out = new Uint8Array(good);
  out[2] = protocol >> 8;
  out[3] = protocol & 0xff;
  return out;
}

/**
 * A variant of `good` (a datagram decodeGeneve accepts: a GWLB datagram with
 * an IPv4 or IPv6 inner packet) that both decoders reject with `reason`.
 * Throws ERR_INVALID_ARG when `good` is not valid.
 */
export function malformedDatagram(reason: GeneveReason, good: Uint8Array): Uint8Array {
  const decoded = decodeGeneve(good);
  if (!decoded.ok) expected('a valid GWLB GENEVE datagram', 'good', `one rejected as ${decoded.reason}`);
  const l = layoutOf(decoded.value);
  switch (reason) {
    case 'truncated_header':
      return new Uint8Array(good.subarray(0, GENEVE_FIXED_HEADER_LENGTH - 1));
    case 'bad_version': {
      const out = new Uint8Array(good);
      out[0] = (out[0] & 0x3f) | 0x40; // version 1
      return out;
    }
    case 'options_past_datagram':
      // A valid datagram has >= 32 bytes of options, so this is still >= 8 bytes.
      return new Uint8Array(good.subarray(0, l.headerLen - 4));
    case 'option_past_area':
      return optionPastArea(good, l);
    case 'eni_missing':
      return withoutAws(good, l, AWS_OPTION_ENI);
    case 'eni_bad_length':
      return withAwsDataLength(good, l, AWS_OPTION_ENI, 4);
    case 'attachment_missing':
      return withoutAws(good, l, AWS_OPTION_ATTACHMENT);
    case 'attachment_bad_length':
      return withAwsDataLength(good, l, AWS_OPTION_ATTACHMENT, 4);
    case 'cookie_missing':
      return withoutAws(good, l, AWS_OPTION_COOKIE);
    case 'cookie_bad_length':
      return withAwsDataLength(good, l, AWS_OPTION_COOKIE, 0);
    case 'bad_protocol':
      return withProtocol(good, ETHERTYPE_TEB);
    case 'ip_version_mismatch':
      // The inner version nibble stays; the protocol type now claims the other IP.
      return withProtocol(good, l.protocol === ETHERTYPE_IPV4 ? ETHERTYPE_IPV6 : ETHERTYPE_IPV4);
    case 'inner_truncated':
      // One byte short of the smallest header: the version nibble still agrees.
      return new Uint8Array(good.subarray(0, l.headerLen + (l.protocol === ETHERTYPE_IPV4 ? 19 : 39)));
    default:
      return invalidArg('one of GENEVE_REASONS', 'reason', reason);
  }
}
