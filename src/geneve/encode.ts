/**
 * GENEVE encoder: the inverse of decodeGeneve for every packet it accepts
 * (decodeGeneve(encodeGeneve(p)) deep-equals p). Layout in decode.ts.
 * Reserved bits are written as zero. Input that cannot be put on the wire
 * throws ERR_INVALID_ARG; input that can but that GWLB would never send
 * (no AWS options, a non-IP protocol) is encoded as asked, so tests and the
 * emulator can build bad packets on purpose.
 */
import {
  AWS_OPTION_ATTACHMENT,
  AWS_OPTION_CLASS,
  AWS_OPTION_COOKIE,
  AWS_OPTION_ENI,
  GENEVE_FIXED_HEADER_LENGTH,
  GENEVE_MAX_OPTION_DATA,
  GENEVE_MAX_OPTIONS_LENGTH,
  GENEVE_OPTION_HEADER_LENGTH,
  type GeneveOption,
  type GenevePacket,
  type GwlbFields,
} from './types';
import { checkBoolean, checkInteger, checkU64, expected, invalidArg } from '../validate';

/** Bytes the options take on the wire (option headers included). */
export function optionsLength(options: readonly GeneveOption[]): number {
  let total = 0;
  for (const o of options) total += GENEVE_OPTION_HEADER_LENGTH + o.data.length;
  return total;
}

/** Length of the GENEVE header (fixed part + options): where the inner packet starts. */
export function geneveHeaderLength(p: Pick<GenevePacket, 'options'>): number {
  return GENEVE_FIXED_HEADER_LENGTH + optionsLength(p.options);
}

function checkOption(o: GeneveOption, i: number): void {
  const name = `options[${i}]`;
  if (typeof o !== 'object' || o === null) invalidArg('an option object', name, o);
  checkInteger(`${name}.optClass`, o.optClass, 0, 0xffff);
  checkInteger(`${name}.type`, o.type, 0, 0xff);
  if (!(o.data instanceof Uint8Array) || o.data.length % 4 !== 0 || o.data.length > GENEVE_MAX_OPTION_DATA) {
    invalidArg(`a Uint8Array of a multiple of 4 bytes, at most ${GENEVE_MAX_OPTION_DATA}`, `${name}.data`, o.data);
  }
}

function checkPacket(p: GenevePacket): void {
  if (typeof p !== 'object' || p === null) invalidArg('a GENEVE packet object', 'packet', p);
  checkBoolean('oam', p.oam);
  checkBoolean('critical', p.critical);
  checkInteger('protocol', p.protocol, 0, 0xffff);
  checkInteger('vni', p.vni, 0, 0xffffff);
  if (!Array.isArray(p.options)) invalidArg('an array of options', 'options', p.options);
  p.options.forEach(checkOption);
  const total = optionsLength(p.options);
  if (total > GENEVE_MAX_OPTIONS_LENGTH) {
    expected(`at most ${GENEVE_MAX_OPTIONS_LENGTH} bytes of options (headers included)`, 'options', `${total} bytes`);
  }
  if (!(p.inner instanceof Uint8Array)) invalidArg('a Uint8Array', 'inner', p.inner);
}

/** Builds the GENEVE datagram (the UDP payload) for `p`. */
export function encodeGeneve(p: GenevePacket): Buffer {
  checkPacket(p);
  const headerLen = geneveHeaderLength(p);
  const out = Buffer.alloc(headerLen + p.inner.length);
  out[0] = (headerLen - GENEVE_FIXED_HEADER_LENGTH) / 4; // Ver 0 | Opt Len (words)
  out[1] = (p.oam ? 0x80 : 0) | (p.critical ? 0x40 : 0); // O | C | reserved 0
  out.writeUInt16BE(p.protocol, 2);
  out.writeUIntBE(p.vni, 4, 3); // VNI; byte 7 reserved 0
  let off = GENEVE_FIXED_HEADER_LENGTH;
  for (const o of p.options) {
    out.writeUInt16BE(o.optClass, off);
    out[off + 2] = o.type;
    out[off + 3] = o.data.length / 4; // R R R = 0 | Length (words)
    out.set(o.data, off + GENEVE_OPTION_HEADER_LENGTH);
    off += GENEVE_OPTION_HEADER_LENGTH + o.data.length;
  }
  out.set(p.inner, off);
  return out;
}

/** The three options GWLB sends, in the order it sends them: ENI (1), attachment (2), cookie (3). */
export function gwlbOptions(f: GwlbFields): GeneveOption[] {
  checkU64('eni', f.eni);
  checkU64('attachment', f.attachment);
  checkInteger('cookie', f.cookie, 0, 0xffffffff);
  const eni = new Uint8Array(8);
  const attachment = new Uint8Array(8);
  const cookie = new Uint8Array(4);
  new DataView(eni.buffer).setBigUint64(0, f.eni);
  new DataView(attachment.buffer).setBigUint64(0, f.attachment);
  new DataView(cookie.buffer).setUint32(0, f.cookie);
  return [
    { optClass: AWS_OPTION_CLASS, type: AWS_OPTION_ENI, data: eni },
    { optClass: AWS_OPTION_CLASS, type: AWS_OPTION_ATTACHMENT, data: attachment },
    { optClass: AWS_OPTION_CLASS, type: AWS_OPTION_COOKIE, data: cookie },
  ];
}
