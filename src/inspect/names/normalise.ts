/**
 * One spelling per name and per address, so that what a DNS answer said and
 * what a flow shows compare equal: names lowercase, without the trailing
 * dot, IDNs as punycode; IPv6 in RFC 5952 form (lowercase, longest zero run
 * compressed); IPv4-mapped IPv6 (::ffff:192.0.2.1) as the IPv4 address it
 * is, because a dual-stack socket connecting to it really connects there.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { domainToASCII } from 'node:url';
import { bytesToIp, ipv6ToBytes } from '../../packet/address';

/** The name in canonical form, or null when nothing is left of it. */
export function normaliseName(name: string): string | null {
  let n = name.trim().toLowerCase();
  if (n.endsWith('.')) n = n.slice(0, -1);
  // eslint-disable-next-line no-control-regex
  if (/[^\x00-\x7f]/.test(n)) n = domainToASCII(n); // '' when it is not a valid IDN
  return n === '' ? null : n;
}

/** The address in canonical form, or null when it is not an IP address. A zone (%eth0) is dropped. */
export function normaliseAddress(address: string): string | null {
  let a = address.trim();
  if (a.startsWith('[') && a.endsWith(']')) a = a.slice(1, -1);
  if (isIPv4(a)) return a;
  const zone = a.indexOf('%');
  if (zone >= 0) a = a.slice(0, zone);
  if (!isIPv6(a)) return null;
  const bytes = ipv6ToBytes(a);
  if (isIpv4Mapped(bytes)) return bytesToIp(bytes.subarray(12));
  return bytesToIp(bytes);
}

function isIpv4Mapped(b: Uint8Array): boolean {
  for (let i = 0; i < 10; i++) if (b[i] !== 0) return false;
  return b[10] === 0xff && b[11] === 0xff;
}
