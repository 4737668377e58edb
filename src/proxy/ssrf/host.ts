/**
 * A destination host as a client wrote it (CONNECT authority, absolute URL,
 * Host header) -> an IP address in canonical text, a normalised name, or a
 * refusal. SSRF filters are classically bypassed by writing one address in
 * a notation the filter does not know but the resolver does (2130706433,
 * 0x7f.1, 0177.0.0.1, [::ffff:7f00:1], full-width digits), so every
 * notation that inet_aton(3) or the WHATWG URL parser reads as IPv4 is
 * read here as IPv4 too, before any check.
 *
 * IPv4 follows the WHATWG URL "IPv4 parser": 1 to 4 dot-separated parts,
 * each decimal, 0x-hex or 0-octal; the last part fills the remaining bytes.
 * A host whose last label is a number is an address or nothing (WHATWG
 * "ends in a number"): `1.2.3.4.5` and `example.123` are refused rather
 * than looked up, as a resolver might read them as addresses.
 */
import { domainToASCII } from 'node:url';
import { parseIPv6Into } from '../../inspect/policy/addresses';
import { parseNamePattern } from '../../inspect/policy/names';
import { bytesToIp } from '../../packet/address';

export type DestinationHost =
  | { kind: 'ip'; address: string; family: 4 | 6 }
  | { kind: 'name'; name: string }
  | { kind: 'invalid'; reason: string };

/** Longer input is refused before any work (a name is at most 253 characters; IPv4 notations may pad with zeros). */
const MAX_INPUT = 1024;
const MAX_U32 = 0xffffffff;

function invalid(reason: string): DestinationHost {
  return { kind: 'invalid', reason };
}

function hasNonAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7e) return true;
  return false;
}

export function ipv4Text(value: number): string {
  return `${value >>> 24}.${(value >>> 16) & 255}.${(value >>> 8) & 255}.${value & 255}`;
}

/** Four big-endian 32-bit words -> RFC 5952 text. */
export function ipv6Text(words: Uint32Array): string {
  const bytes = new Uint8Array(16);
  for (let w = 0; w < 4; w++) {
    bytes[4 * w] = words[w] >>> 24;
    bytes[4 * w + 1] = (words[w] >>> 16) & 255;
    bytes[4 * w + 2] = (words[w] >>> 8) & 255;
    bytes[4 * w + 3] = words[w] & 255;
  }
  return bytesToIp(bytes);
}

function digitValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x61 + 10;
  if (c >= 0x41 && c <= 0x46) return c - 0x41 + 10;
  return 99;
}

/** One WHATWG IPv4 part: decimal, 0x-hex ("0x" alone is 0) or 0-octal; -1 when it is not one, -2 above 2^32-1. */
function parseIPv4Part(part: string): number {
  if (part.length === 0) return -1;
  let radix = 10;
  let i = 0;
  if (part.length >= 2 && part.charCodeAt(0) === 0x30 && (part.charCodeAt(1) | 0x20) === 0x78) {
    radix = 16;
    i = 2;
  } else if (part.length >= 2 && part.charCodeAt(0) === 0x30) {
    radix = 8;
    i = 1;
  }
  let value = 0;
  for (; i < part.length; i++) {
    const d = digitValue(part.charCodeAt(i));
    if (d >= radix) return -1;
    value = value * radix + d;
    // Keep reading digits: "0x1g" must be "not a number", not "too big".
    if (value > MAX_U32) value = MAX_U32 + 1;
  }
  return value > MAX_U32 ? -2 : value;
}

/** WHATWG "ends in a number": the last label is all digits, or 0x and hex digits. */
function endsInNumber(parts: readonly string[]): boolean {
  const last = parts[parts.length - 1];
  if (last.length === 0) return false;
  let i = 0;
  let hex = false;
  if (last.length >= 2 && last.charCodeAt(0) === 0x30 && (last.charCodeAt(1) | 0x20) === 0x78) {
    hex = true;
    i = 2;
  }
  for (; i < last.length; i++) {
    const d = digitValue(last.charCodeAt(i));
    if (d >= (hex ? 16 : 10)) return false;
  }
  return true;
}

/**
 * The host as IPv4 (an unsigned 32-bit number), 'name' when it is not an
 * IPv4 notation, or the reason an IPv4-looking host is refused.
 */
function parseIPv4Notation(host: string): number | 'name' | { problem: string } {
  const parts = host.split('.');
  // One trailing dot is allowed ("127.0.0.1." is 127.0.0.1), as in a name.
  if (parts.length > 1 && parts[parts.length - 1] === '') parts.pop();
  if (!endsInNumber(parts)) return 'name';
  if (parts.length > 4) return { problem: 'a host that ends in a number but has more than 4 parts (not an IPv4 address)' };
  const values: number[] = [];
  for (const part of parts) {
    const v = parseIPv4Part(part);
    if (v === -1) return { problem: `a host that ends in a number with the part ${JSON.stringify(part)} (not decimal, 0x-hex or 0-octal)` };
    if (v === -2) return { problem: 'an IPv4 number above 4294967295' };
    values.push(v);
  }
  const last = values.pop() as number;
  if (values.some((v) => v > 255)) return { problem: 'an IPv4 part above 255 before the last part' };
  if (last >= 256 ** (4 - values.length)) return { problem: 'an IPv4 last part too big for the bytes it fills' };
  let address = last;
  values.forEach((v, i) => {
    address += v * 256 ** (3 - i);
  });
  return address;
}

/** The IPv4 an IPv4-mapped (::ffff:a.b.c.d) or IPv4-compatible (::a.b.c.d) address carries, or -1. */
export function embeddedMappedIPv4(words: Uint32Array): number {
  if (words[0] !== 0 || words[1] !== 0) return -1;
  if (words[2] === 0xffff) return words[3];
  // ::/96 is "compatible" except :: and ::1, which are addresses of their own.
  if (words[2] === 0 && words[3] > 1) return words[3];
  return -1;
}

function parseIPv6Literal(text: string): DestinationHost {
  if (text.includes('%')) return invalid('an IPv6 zone id (a link-local scope cannot be a proxy destination)');
  const words = new Uint32Array(4);
  if (!parseIPv6Into(text, words)) return invalid('not an IPv6 address');
  const v4 = embeddedMappedIPv4(words);
  if (v4 >= 0) return { kind: 'ip', address: ipv4Text(v4), family: 4 };
  return { kind: 'ip', address: ipv6Text(words), family: 6 };
}

/**
 * Normalises a destination host. Never throws (the input is the client's).
 * IPv6 may come bracketed or bare; a port must already be removed.
 */
export function parseDestinationHost(raw: string): DestinationHost {
  if (typeof raw !== 'string' || raw.length === 0) return invalid('an empty host');
  if (raw.length > MAX_INPUT) return invalid(`a host longer than ${MAX_INPUT} characters`);
  if (raw.charCodeAt(0) === 0x5b) {
    if (raw.charCodeAt(raw.length - 1) !== 0x5d) return invalid('a "[" without its "]"');
    return parseIPv6Literal(raw.slice(1, -1));
  }
  if (raw.includes(':')) return parseIPv6Literal(raw);
  // IDNA first: full-width digits and ideographic dots become ASCII here, so
  // "１２７。０。０。１" reaches the IPv4 parser as 127.0.0.1.
  let host = raw;
  if (hasNonAscii(host)) {
    host = domainToASCII(host);
    if (host === '') return invalid('an international name that does not convert to punycode');
  } else {
    host = host.toLowerCase();
  }
  const v4 = parseIPv4Notation(host);
  if (typeof v4 === 'number') return { kind: 'ip', address: ipv4Text(v4), family: 4 };
  if (v4 !== 'name') return invalid(v4.problem);
  if (host.charCodeAt(0) === 0x2e || host.charCodeAt(0) === 0x2a) return invalid('a name pattern, not a host name');
  const parsed = parseNamePattern(host);
  if (!parsed.ok) return invalid(parsed.problem);
  return { kind: 'name', name: parsed.pattern.name };
}
