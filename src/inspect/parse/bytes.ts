/**
 * Big-endian reads and byte-to-text helpers shared by the payload parsers.
 * Callers check bounds before reading; these never read past what they are
 * told to.
 */

export function u16(b: Uint8Array, at: number): number {
  return (b[at] << 8) | b[at + 1];
}

export function u24(b: Uint8Array, at: number): number {
  return (b[at] << 16) | (b[at + 1] << 8) | b[at + 2];
}

export function u32(b: Uint8Array, at: number): number {
  return ((b[at] << 24) | (b[at + 1] << 16) | (b[at + 2] << 8) | b[at + 3]) >>> 0;
}

/**
 * Bytes [start, end) as a string with one character per byte (ISO 8859-1).
 * Not TextDecoder('latin1'): the WHATWG decoder maps that label to
 * windows-1252, which changes 0x80-0x9f.
 */
export function latin1(b: Uint8Array, start: number, end: number): string {
  return Buffer.from(b.buffer, b.byteOffset + start, end - start).toString('latin1');
}
