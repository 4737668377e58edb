/**
 * The PROXY protocol header an NLB puts in front of every connection it
 * hands to a target, as HAProxy's specification (doc/proxy-protocol.txt)
 * defines it, plus AWS's TLV that names the consumer's VPC endpoint.
 *
 * Version 1 (text), one line of at most 107 bytes including CRLF:
 *
 *   "PROXY TCP4 192.0.2.10 198.51.100.1 56324 3128\r\n"
 *   "PROXY TCP6 2001:db8::10 2001:db8::1 56324 3128\r\n"
 *   "PROXY UNKNOWN<anything>\r\n"      (use the real endpoints)
 *
 * Version 2 (binary), what an NLB sends:
 *
 *    0                   1                   2                   3
 *    0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |  signature 0D 0A 0D 0A 00 0D 0A 51 55 49 54 0A (12 bytes)     |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |ver=2  |command|family |transp.|  length of what follows (BE)  |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   | addresses: INET 12 bytes (src, dst, sport, dport),            |
 *   |            INET6 36, UNIX 216, UNSPEC 0                       |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   | TLVs to the end: type (1 byte), length (2 bytes, BE), value   |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *
 * Command LOCAL (0) is a connection the balancer made itself (an NLB health
 * check): the receiver uses the real endpoints and ignores the addresses.
 * AWS's TLV: type 0xEA (PP2_TYPE_AWS), value = subtype 0x01
 * (PP2_SUBTYPE_AWS_VPCE_ID) followed by the endpoint id in ASCII
 * ("vpce-0123456789abcdef0"), present when the client came through
 * PrivateLink. The CRC32C TLV (0x03) is optional to check and is not checked
 * here; it is returned with the other TLVs.
 */
import { isIPv4, isIPv6, SocketAddress, type Socket } from 'node:net';
import { GatehouseError } from '../errors';

export interface ProxyAddress {
  /** Canonical text, as Node prints a socket's remoteAddress. */
  address: string;
  port: number;
}

export interface ProxyTlv {
  type: number;
  value: Uint8Array;
}

export interface ProxyHeader {
  status: 'complete';
  /** Bytes the header takes at the start of the stream; the client's data starts after them. */
  length: number;
  version: 1 | 2;
  command: 'proxy' | 'local';
  /** The client as the balancer saw it; null for LOCAL, v1 UNKNOWN and v2 UNSPEC/UNIX (use the TCP peer). */
  source: ProxyAddress | null;
  /** The address the client connected to (the balancer's listener or endpoint); null as for source. */
  destination: ProxyAddress | null;
  /** The consumer's VPC endpoint id from AWS's TLV 0xEA, or null. */
  vpceId: string | null;
  /** Every v2 TLV in header order (empty for v1), values copied out of the input. */
  tlvs: ProxyTlv[];
}

/** Why bytes are not a PROXY header: a closed set, for logs and counters. */
export type ProxyInvalidReason =
  | 'not-proxy-protocol' // the first bytes match neither signature
  | 'v1-too-long' // no CRLF within 107 bytes
  | 'v1-syntax' // not PROXY SP TCP4|TCP6|UNKNOWN ... CRLF with single spaces
  | 'v1-address' // an address that is not valid text for its family
  | 'v1-port' // not a decimal 0-65535 without leading zeros
  | 'v2-version' // version nibble other than 2
  | 'v2-command' // command nibble other than LOCAL (0) or PROXY (1)
  | 'v2-family' // address family other than UNSPEC, INET, INET6, UNIX
  | 'v2-transport' // transport other than UNSPEC, STREAM, DGRAM
  | 'v2-length' // length shorter than the family's address block
  | 'v2-tlv' // a TLV that runs past the end of the header
  | 'aws-vpce-id'; // a 0xEA/0x01 TLV whose value is not [A-Za-z0-9-]+

export type ProxyHeaderParse = ProxyHeader | { status: 'incomplete' } | { status: 'invalid'; reason: ProxyInvalidReason };

export const PROXY_V1_MAX_LENGTH = 107;
export const PROXY_V2_SIGNATURE = Uint8Array.of(0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a);
export const PROXY_V2_FIXED_LENGTH = 16;
/** The largest header there can be: the 16 fixed bytes and a 16-bit length. */
export const PROXY_V2_MAX_LENGTH = PROXY_V2_FIXED_LENGTH + 0xffff;
export const PP2_TYPE_AWS = 0xea;
export const PP2_SUBTYPE_AWS_VPCE_ID = 0x01;

const V1_PREFIX = Uint8Array.from(Buffer.from('PROXY ', 'latin1'));
const CR = 0x0d;
const LF = 0x0a;
const FAMILY_INET = 1;
const FAMILY_INET6 = 2;
const FAMILY_UNIX = 3;
/** Bytes of the address block for each family: UNSPEC, INET, INET6, UNIX. */
const ADDRESS_BLOCK_LENGTH = [0, 12, 36, 216];
const VPCE_ID_SHAPE = /^[A-Za-z0-9-]+$/;

const INCOMPLETE = { status: 'incomplete' } as const;
const invalid = (reason: ProxyInvalidReason): { status: 'invalid'; reason: ProxyInvalidReason } => ({ status: 'invalid', reason });

/** True when the first min(n, sig.length) bytes of `bytes` equal those of `sig`. */
function startsLike(bytes: Uint8Array, sig: Uint8Array): boolean {
  const n = Math.min(bytes.length, sig.length);
  for (let i = 0; i < n; i++) if (bytes[i] !== sig[i]) return false;
  return true;
}

/**
 * Reads a PROXY header (v1 or v2) at the start of `bytes`. Never throws.
 * 'incomplete' means more bytes could still make a valid header; garbage is
 * 'invalid' as soon as its first bytes match neither signature.
 */
export function parseProxyHeader(bytes: Uint8Array): ProxyHeaderParse {
  if (bytes.length === 0) return INCOMPLETE;
  if (startsLike(bytes, V1_PREFIX)) return parseV1(bytes);
  if (startsLike(bytes, PROXY_V2_SIGNATURE)) return parseV2(bytes);
  return invalid('not-proxy-protocol');
}

function parseV1(bytes: Uint8Array): ProxyHeaderParse {
  // The CR of the CRLF may be at index 105 at most (107 bytes in all).
  const scan = Math.min(bytes.length, PROXY_V1_MAX_LENGTH - 1);
  let cr = -1;
  for (let i = V1_PREFIX.length; i < scan; i++) {
    if (bytes[i] === CR) {
      cr = i;
      break;
    }
    if (bytes[i] === LF) return invalid('v1-syntax');
  }
  if (cr < 0) return bytes.length >= PROXY_V1_MAX_LENGTH - 1 ? invalid('v1-too-long') : INCOMPLETE;
  if (cr + 1 >= bytes.length) return INCOMPLETE;
  if (bytes[cr + 1] !== LF) return invalid('v1-syntax');
  const length = cr + 2;
  const line = Buffer.from(bytes.buffer, bytes.byteOffset, cr).toString('latin1');
  const words = line.split(' ');
  const header = (source: ProxyAddress | null, destination: ProxyAddress | null): ProxyHeader => ({
    status: 'complete',
    length,
    version: 1,
    command: 'proxy',
    source,
    destination,
    vpceId: null,
    tlvs: [],
  });
  // "UNKNOWN": the sender speaks the protocol but cannot tell the endpoints; the rest of the line is ignored.
  if (words[1] === 'UNKNOWN') return header(null, null);
  if (words.length !== 6 || (words[1] !== 'TCP4' && words[1] !== 'TCP6')) return invalid('v1-syntax');
  const family = words[1] === 'TCP4' ? 'ipv4' : 'ipv6';
  const src = v1Address(words[2], family);
  const dst = v1Address(words[3], family);
  if (src === null || dst === null) return invalid('v1-address');
  const sport = v1Port(words[4]);
  const dport = v1Port(words[5]);
  if (sport === null || dport === null) return invalid('v1-port');
  return header({ address: src, port: sport }, { address: dst, port: dport });
}

function v1Address(text: string, family: 'ipv4' | 'ipv6'): string | null {
  if (family === 'ipv4') return isIPv4(text) ? text : null;
  // No zone index: it means nothing on another host.
  if (!isIPv6(text) || text.includes('%')) return null;
  return new SocketAddress({ address: text, family }).address;
}

function v1Port(text: string): number | null {
  if (!/^(0|[1-9][0-9]{0,4})$/.test(text)) return null;
  const port = Number(text);
  return port <= 0xffff ? port : null;
}

function parseV2(bytes: Uint8Array): ProxyHeaderParse {
  if (bytes.length < PROXY_V2_FIXED_LENGTH) return INCOMPLETE;
  const version = bytes[12] >> 4;
  const commandBits = bytes[12] & 0x0f;
  const family = bytes[13] >> 4;
  const transport = bytes[13] & 0x0f;
  const bodyLength = (bytes[14] << 8) | bytes[15];
  if (version !== 2) return invalid('v2-version');
  if (commandBits > 1) return invalid('v2-command');
  const command = commandBits === 0 ? 'local' : 'proxy';
  // LOCAL: "the receiver must ... discard the protocol block including the family which is ignored".
  const knownFamily = family <= FAMILY_UNIX;
  if (command === 'proxy') {
    if (!knownFamily) return invalid('v2-family');
    if (transport > 2) return invalid('v2-transport');
    if (bodyLength < ADDRESS_BLOCK_LENGTH[family]) return invalid('v2-length');
  }
  const length = PROXY_V2_FIXED_LENGTH + bodyLength;
  if (bytes.length < length) return INCOMPLETE;

  let source: ProxyAddress | null = null;
  let destination: ProxyAddress | null = null;
  let tlvStart = PROXY_V2_FIXED_LENGTH;
  if (knownFamily && bodyLength >= ADDRESS_BLOCK_LENGTH[family]) {
    tlvStart += ADDRESS_BLOCK_LENGTH[family];
    if (command === 'proxy' && (family === FAMILY_INET || family === FAMILY_INET6)) {
      const size = family === FAMILY_INET ? 4 : 16;
      const at = PROXY_V2_FIXED_LENGTH;
      const ports = at + 2 * size;
      source = { address: addressText(bytes.subarray(at, at + size)), port: (bytes[ports] << 8) | bytes[ports + 1] };
      destination = { address: addressText(bytes.subarray(at + size, ports)), port: (bytes[ports + 2] << 8) | bytes[ports + 3] };
    }
  } else {
    // LOCAL with a family we do not know, or too short for it: nothing in the block is read.
    tlvStart = length;
  }

  const tlvs: ProxyTlv[] = [];
  let vpceId: string | null = null;
  for (let at = tlvStart; at < length; ) {
    if (at + 3 > length) return invalid('v2-tlv');
    const type = bytes[at];
    const valueLength = (bytes[at + 1] << 8) | bytes[at + 2];
    const end = at + 3 + valueLength;
    if (end > length) return invalid('v2-tlv');
    const value = new Uint8Array(bytes.subarray(at + 3, end));
    tlvs.push({ type, value });
    if (type === PP2_TYPE_AWS && vpceId === null && value.length > 0 && value[0] === PP2_SUBTYPE_AWS_VPCE_ID) {
      const id = Buffer.from(value.buffer, value.byteOffset + 1, value.length - 1).toString('latin1');
      if (!VPCE_ID_SHAPE.test(id)) return invalid('aws-vpce-id');
      vpceId = id;
    }
    at = end;
  }
  return { status: 'complete', length, version: 2, command, source, destination, vpceId, tlvs };
}

/** 4 or 16 bytes -> the text Node gives a socket's remoteAddress (inet_ntop). */
function addressText(b: Uint8Array): string {
  if (b.length === 4) return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((b[i] << 8) | b[i + 1]).toString(16));
  return new SocketAddress({ address: groups.join(':'), family: 'ipv6' }).address;
}

/** What readProxyHeader rejects with: ERR_PROXY_PROTOCOL, and why in a closed set. */
export class ProxyProtocolError extends GatehouseError {
  readonly reason: ProxyInvalidReason | 'timeout' | 'closed';
  constructor(reason: ProxyInvalidReason | 'timeout' | 'closed', message: string) {
    super('ERR_PROXY_PROTOCOL', message);
    this.reason = reason;
  }
}

export interface ReadProxyHeaderOptions {
  /** Reject when the whole header has not arrived this long after the call. */
  timeoutMs: number;
}

/**
 * Reads exactly the PROXY header from the start of `socket`. On success every
 * byte after the header has been put back (unshift) and the socket is left
 * paused in the sense that matters: no 'data' listener and not flowing, so
 * nothing is emitted until the next reader (an HTTP parser, a pipe) attaches
 * and it sees the client's stream from its first byte. (An explicit pause()
 * would be wrong here: a paused stream does not start flowing when a 'data'
 * listener is attached, and node:http does not call resume().) Rejects with a ProxyProtocolError when the bytes are
 * not a header, the peer closes first, or `timeoutMs` passes; the socket is
 * left as it is (the caller destroys it).
 */
export function readProxyHeader(socket: Socket, opts: ReadProxyHeaderOptions): Promise<ProxyHeader> {
  const timeoutMs = opts.timeoutMs;
  if (!Number.isSafeInteger(timeoutMs) || timeoutMs < 1) {
    return Promise.reject(
      new GatehouseError('ERR_INVALID_ARG', `Expected a positive integer for timeoutMs but received ${String(timeoutMs)} of type ${typeof timeoutMs}`),
    );
  }
  const peer = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`;
  const what = `a PROXY protocol v1 or v2 header for the connection from ${peer}`;
  return new Promise<ProxyHeader>((resolve, reject) => {
    let buffered: Buffer = Buffer.alloc(0);
    const finish = (outcome: { header: ProxyHeader } | { error: ProxyProtocolError }): void => {
      clearTimeout(timer);
      socket.off('readable', onReadable);
      socket.off('end', onEnd);
      socket.off('close', onEnd);
      socket.off('error', onError);
      if ('header' in outcome) resolve(outcome.header);
      else reject(outcome.error);
    };
    const onReadable = (): void => {
      // read() hands over what is buffered; stop at the first complete or invalid parse.
      for (let chunk = socket.read() as Buffer | null; chunk !== null; chunk = socket.read() as Buffer | null) {
        buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
        const parsed = parseProxyHeader(buffered);
        if (parsed.status === 'incomplete') continue;
        if (parsed.status === 'invalid') {
          finish({ error: new ProxyProtocolError(parsed.reason, `Expected ${what} but received ${parsed.reason} (${buffered.length} bytes)`) });
          return;
        }
        if (buffered.length > parsed.length) socket.unshift(buffered.subarray(parsed.length));
        finish({ header: parsed });
        return;
      }
    };
    const onEnd = (): void => {
      finish({ error: new ProxyProtocolError('closed', `Expected ${what} but received ${buffered.length} bytes before the peer closed`) });
    };
    const onError = (err: Error): void => {
      finish({ error: new ProxyProtocolError('closed', `Expected ${what} but received ${buffered.length} bytes before a socket error (${err.message})`) });
    };
    const timer = setTimeout(() => {
      finish({ error: new ProxyProtocolError('timeout', `Expected ${what} but received ${buffered.length} bytes in ${timeoutMs} ms`) });
    }, timeoutMs);
    socket.on('readable', onReadable);
    socket.on('end', onEnd);
    socket.on('close', onEnd);
    socket.on('error', onError);
    // Bytes may already sit in the stream's buffer (no new 'readable' for them).
    onReadable();
  });
}
