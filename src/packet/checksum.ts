/**
 * The Internet checksum (RFC 1071): one's-complement sum of 16-bit words.
 * `initial` is an unfolded partial sum to start from (e.g. a pseudo-header).
 */
export function internetChecksum(bytes: Uint8Array, initial = 0): number {
  let sum = initial;
  const n = bytes.length & ~1;
  for (let i = 0; i < n; i += 2) sum += (bytes[i] << 8) | bytes[i + 1];
  if (bytes.length & 1) sum += bytes[bytes.length - 1] << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  return ~sum & 0xffff;
}

/** The unfolded sum of the TCP/UDP/ICMPv6 pseudo-header (RFC 9293 3.1, RFC 8200 8.1), for internetChecksum's `initial`. */
export function pseudoHeaderSum(src: Uint8Array, dst: Uint8Array, protocol: number, length: number): number {
  let sum = 0;
  for (const a of [src, dst]) for (let i = 0; i < a.length; i += 2) sum += (a[i] << 8) | a[i + 1];
  return sum + protocol + (length >>> 16) + (length & 0xffff);
}
