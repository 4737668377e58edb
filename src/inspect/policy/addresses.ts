/**
 * Addresses as numbers for the policy index. Flow addresses are parsed per
 * flow by hand (no regex, no allocation): IPv4 to one unsigned 32-bit
 * number, IPv6 to four. Rule CIDRs are parsed once, at load, to inclusive
 * bigint ranges.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { bytesToIp } from '../../packet/address';

/** Dotted quad to an unsigned 32-bit number, or -1 when it is not one (leading zeros refused, like net.isIPv4). */
export function parseIPv4(s: string, start = 0): number {
  let value = 0;
  let octets = 0;
  let i = start;
  const n = s.length;
  while (true) {
    const first = i;
    let octet = 0;
    while (i < n) {
      const c = s.charCodeAt(i);
      if (c < 0x30 || c > 0x39) break;
      octet = octet * 10 + (c - 0x30);
      i++;
      if (i - first > 3) return -1;
    }
    if (i === first || octet > 255 || (i - first > 1 && s.charCodeAt(first) === 0x30)) return -1;
    value = value * 256 + octet;
    octets++;
    if (octets === 4) return i === n ? value : -1;
    if (i >= n || s.charCodeAt(i) !== 0x2e) return -1;
    i++;
  }
}

function hexDigit(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x61 + 10;
  if (c >= 0x41 && c <= 0x46) return c - 0x41 + 10;
  return -1;
}

const groups = new Uint16Array(8);

/**
 * IPv6 text (RFC 4291 forms, with "::" and a trailing dotted quad) into
 * four big-endian 32-bit words. Returns false, leaving `out` undefined,
 * for anything else (zone ids included).
 */
export function parseIPv6Into(s: string, out: Uint32Array): boolean {
  const n = s.length;
  if (n < 2 || n > 45) return false;
  let count = 0;
  let gap = -1;
  let i = 0;
  if (s.charCodeAt(0) === 0x3a) {
    if (s.charCodeAt(1) !== 0x3a) return false;
    gap = 0;
    i = 2;
  }
  while (i < n) {
    let j = i;
    let v = 0;
    while (j < n && j - i < 5) {
      const d = hexDigit(s.charCodeAt(j));
      if (d < 0) break;
      v = v * 16 + d;
      j++;
    }
    if (j === i) return false;
    if (j < n && s.charCodeAt(j) === 0x2e) {
      // A dotted quad ends the address and fills two groups.
      if (count > 6) return false;
      const v4 = parseIPv4(s, i);
      if (v4 < 0) return false;
      groups[count++] = v4 >>> 16;
      groups[count++] = v4 & 0xffff;
      break;
    }
    if (j - i > 4 || count === 8) return false;
    groups[count++] = v;
    if (j === n) break;
    if (s.charCodeAt(j) !== 0x3a) return false;
    if (j + 1 < n && s.charCodeAt(j + 1) === 0x3a) {
      if (gap >= 0) return false;
      gap = count;
      i = j + 2;
    } else {
      if (j + 1 === n) return false;
      i = j + 1;
    }
  }
  if (gap < 0 ? count !== 8 : count > 7) return false;
  // Expand "::": groups before the gap stay, the rest move to the end.
  const zeros = 8 - count;
  for (let w = 0; w < 4; w++) {
    const hi = groupAt(2 * w, gap, zeros, count);
    const lo = groupAt(2 * w + 1, gap, zeros, count);
    out[w] = ((hi << 16) | lo) >>> 0;
  }
  return true;
}

function groupAt(k: number, gap: number, zeros: number, count: number): number {
  if (gap < 0 || k < gap) return groups[k];
  if (k < gap + zeros) return 0;
  const src = k - zeros;
  return src < count ? groups[src] : 0;
}

export interface CidrRange {
  readonly family: 4 | 6;
  readonly lo: bigint;
  readonly hi: bigint;
  /** Normalised text: "192.0.2.0/24", "2001:db8::/32". */
  readonly text: string;
}

function bigintToIp(value: bigint, family: 4 | 6): string {
  const bytes = new Uint8Array(family === 4 ? 4 : 16);
  let v = value;
  for (let i = bytes.length - 1; i >= 0; i--) {
    bytes[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return bytesToIp(bytes);
}

/**
 * "192.0.2.0/24", "2001:db8::/32" or a lone address. Returns the range, or
 * the reason it is not one. Host bits under the prefix must be zero: a
 * CIDR like 192.0.2.1/24 is usually a typo for something else.
 */
export function parseCidr(text: string): { ok: true; range: CidrRange } | { ok: false; problem: string } {
  const slash = text.indexOf('/');
  const addr = slash < 0 ? text : text.slice(0, slash);
  const family: 4 | 6 | 0 = isIPv4(addr) ? 4 : isIPv6(addr) && !addr.includes('%') ? 6 : 0;
  if (family === 0) return { ok: false, problem: 'not an address' };
  const bits = family === 4 ? 32 : 128;
  let prefix = bits;
  if (slash >= 0) {
    const p = text.slice(slash + 1);
    prefix = /^\d{1,3}$/.test(p) ? Number(p) : NaN;
    if (!(prefix >= 0 && prefix <= bits)) return { ok: false, problem: `a prefix length outside 0-${bits}` };
  }
  let value: bigint;
  if (family === 4) {
    value = BigInt(parseIPv4(addr));
  } else {
    const words = new Uint32Array(4);
    parseIPv6Into(addr, words);
    value = words.reduce((acc, w) => (acc << 32n) | BigInt(w), 0n);
  }
  const hostMask = (1n << BigInt(bits - prefix)) - 1n;
  if ((value & hostMask) !== 0n) {
    return { ok: false, problem: `host bits set (did you mean ${bigintToIp(value & ~hostMask, family)}/${prefix}?)` };
  }
  return { ok: true, range: { family, lo: value, hi: value | hostMask, text: `${bigintToIp(value, family)}/${prefix}` } };
}
