/**
 * IP address text <-> bytes, for building and reading packets. Node parses
 * addresses (net.isIPv4/isIPv6) but offers no byte form, so this is the one
 * place that converts.
 */
import { isIPv4, isIPv6 } from 'node:net';

export function ipv4ToBytes(addr: string): Uint8Array {
  if (!isIPv4(addr)) throw new TypeError(`Expected an IPv4 address but received ${JSON.stringify(addr)}`);
  return Uint8Array.from(addr.split('.').map(Number));
}

export function ipv6ToBytes(addr: string): Uint8Array {
  if (!isIPv6(addr)) throw new TypeError(`Expected an IPv6 address but received ${JSON.stringify(addr)}`);
  let text = addr;
  // A trailing dotted quad (::ffff:192.0.2.1) becomes two hex groups.
  const quad = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (quad) {
    const b = ipv4ToBytes(quad[1]);
    text = text.slice(0, quad.index) + ((b[0] << 8) | b[1]).toString(16) + ':' + ((b[2] << 8) | b[3]).toString(16);
  }
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined];
  const headGroups = head ? head.split(':') : [];
  const tailGroups = tail ? tail.split(':') : [];
  const fill = tail === undefined ? [] : new Array<string>(8 - headGroups.length - tailGroups.length).fill('0');
  const groups = [...headGroups, ...fill, ...tailGroups];
  const out = new Uint8Array(16);
  groups.forEach((g, i) => {
    const v = parseInt(g, 16);
    out[i * 2] = v >> 8;
    out[i * 2 + 1] = v & 0xff;
  });
  return out;
}

export function bytesToIp(b: Uint8Array): string {
  if (b.length === 4) return Array.from(b).join('.');
  if (b.length !== 16) throw new TypeError(`Expected 4 or 16 address bytes but received ${b.length}`);
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((b[i] << 8) | b[i + 1]);
  // RFC 5952: compress the longest run (>= 2) of zero groups.
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}
