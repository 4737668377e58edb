/**
 * TLS ClientHello reader (RFC 8446 section 4.1.2, RFC 5246 section 7.4.1.2),
 * for deciding on a flow by its SNI before the server answers.
 *
 * The input is the client's TCP payload from the start of the connection. The
 * ClientHello may span several TLS records and the records may be cut
 * anywhere by TCP, so the reader first gathers the handshake message from the
 * records and only then parses it:
 *
 *   record:       type(1)=22 | version(2)=3.x | length(2) <= 2^14 | fragment
 *   handshake:    msg_type(1)=1 | length(3) | body
 *   ClientHello:  legacy_version(2) | random(32) | session_id<0..32>
 *                 | cipher_suites<2..2^16-2> | compression_methods<1..2^8-1>
 *                 | extensions<8..2^16-1>   (absent in some pre-TLS-1.2 hellos)
 *   extension:    type(2) | length(2) | data
 *
 * It never throws: any byte string gives one of the result variants.
 */
import { latin1, u16, u24 } from './bytes';

/** A hello that needs more than this many stream bytes is given up on (malformed 'too-large'). */
export const TLS_HELLO_MAX_BYTES = 64 * 1024;

/** Why bytes that start like TLS are not a usable ClientHello. A closed set: callers may switch on it. */
export const TLS_MALFORMED_REASONS = [
  'bad-record-version', // a later record's major version is not 3
  'unexpected-record-type', // a non-handshake record before the hello is complete
  'empty-record', // a record of length 0 (forbidden for handshake records)
  'record-too-long', // a record longer than 2^14 bytes
  'not-client-hello', // the first handshake message is not a ClientHello
  'too-large', // the hello would need more than TLS_HELLO_MAX_BYTES of stream
  'short-client-hello', // body shorter than version + random + session id length
  'bad-session-id', // session id longer than 32 or past the body
  'bad-cipher-suites', // empty, odd or past the body
  'bad-compression-methods', // empty or past the body
  'bad-extensions-length', // extensions block length disagrees with the body
  'bad-extension-length', // one extension runs past the extensions block
  'duplicate-extension', // the same extension type twice (RFC 8446 4.2)
  'bad-server-name', // server_name list malformed, or a host name we refuse
  'bad-alpn', // ALPN protocol list malformed
  'bad-supported-versions', // supported_versions list malformed
] as const;

export type TlsMalformedReason = (typeof TLS_MALFORMED_REASONS)[number];

/** Which flavour of encrypted ClientHello the client offered, if any. */
export type TlsEchKind = 'none' | 'ech' | 'esni';

export type TlsHelloResult =
  | {
      status: 'complete';
      /** Lowercased host_name without a trailing dot; with ECH this is the outer (public) name. */
      sni: string | null;
      ech: TlsEchKind;
      /** ALPN protocol names in client order, one character per byte. */
      alpn: string[];
      /** legacy_version from the ClientHello (0x0303 for TLS 1.2 and 1.3). */
      tlsVersion: number;
      /** supported_versions extension values in client order (GREASE included), empty when absent. */
      supportedVersions: number[];
    }
  /** More bytes are needed; bytesWanted is a lower bound on how many more. */
  | { status: 'incomplete'; bytesWanted?: number }
  | { status: 'not-tls' }
  | { status: 'malformed'; reason: TlsMalformedReason };

const CONTENT_HANDSHAKE = 0x16;
const HANDSHAKE_CLIENT_HELLO = 0x01;
const RECORD_HEADER_BYTES = 5;
const HANDSHAKE_HEADER_BYTES = 4;
const MAX_RECORD_PAYLOAD = 1 << 14;
const RANDOM_BYTES = 32;
const MAX_SESSION_ID = 32;

const EXT_SERVER_NAME = 0x0000;
const EXT_ALPN = 0x0010;
const EXT_SUPPORTED_VERSIONS = 0x002b;
const EXT_ECH = 0xfe0d;
const EXT_ESNI_DRAFT = 0xffce;
const SERVER_NAME_HOST = 0x00;

type Malformed = { status: 'malformed'; reason: TlsMalformedReason };
const malformed = (reason: TlsMalformedReason): Malformed => ({ status: 'malformed', reason });

/** Reads the ClientHello at the start of a client's TCP stream. */
export function parseTlsClientHello(stream: Uint8Array): TlsHelloResult {
  if (stream.length === 0) return { status: 'incomplete', bytesWanted: RECORD_HEADER_BYTES };
  // Only the first record header decides "is this TLS at all"; later
  // surprises are malformed TLS, not some other protocol.
  if (stream[0] !== CONTENT_HANDSHAKE) return { status: 'not-tls' };
  if (stream.length >= 2 && stream[1] !== 0x03) return { status: 'not-tls' };

  const gathered = gatherHandshake(stream);
  if (gathered.status !== 'gathered') return gathered;
  return parseClientHelloBody(gathered.body);
}

type Gathered = { status: 'gathered'; body: Uint8Array } | { status: 'incomplete'; bytesWanted: number } | Malformed;

/**
 * Concatenates handshake record fragments until the whole ClientHello is
 * there. Returns its body (without the 4-byte handshake header).
 */
function gatherHandshake(stream: Uint8Array): Gathered {
  // The handshake bytes can never outnumber the stream bytes, so this buffer
  // always has room; the cap keeps a hostile stream from costing more.
  const view = stream.length > TLS_HELLO_MAX_BYTES ? stream.subarray(0, TLS_HELLO_MAX_BYTES) : stream;
  const message = new Uint8Array(view.length);
  let collected = 0;
  let needed = HANDSHAKE_HEADER_BYTES; // grows to the full message once its header is read
  let headerRead = false;
  let pos = 0;

  const incomplete = (bytesWanted: number): Gathered =>
    view.length + bytesWanted > TLS_HELLO_MAX_BYTES ? malformed('too-large') : { status: 'incomplete', bytesWanted };

  while (collected < needed) {
    if (view.length - pos < RECORD_HEADER_BYTES) {
      // Validate what there is of the next record header before waiting.
      if (pos > 0 && view.length > pos && view[pos] !== CONTENT_HANDSHAKE) return malformed('unexpected-record-type');
      if (pos > 0 && view.length > pos + 1 && view[pos + 1] !== 0x03) return malformed('bad-record-version');
      return incomplete(pos + RECORD_HEADER_BYTES - view.length + (needed - collected));
    }
    if (view[pos] !== CONTENT_HANDSHAKE) return malformed('unexpected-record-type');
    if (view[pos + 1] !== 0x03) return malformed('bad-record-version');
    const recordLength = u16(view, pos + 3);
    if (recordLength === 0) return malformed('empty-record');
    if (recordLength > MAX_RECORD_PAYLOAD) return malformed('record-too-long');

    const fragmentStart = pos + RECORD_HEADER_BYTES;
    const recordEnd = fragmentStart + recordLength;
    const availableEnd = Math.min(recordEnd, view.length);
    message.set(view.subarray(fragmentStart, availableEnd), collected);
    collected += availableEnd - fragmentStart;

    if (collected >= 1 && message[0] !== HANDSHAKE_CLIENT_HELLO) return malformed('not-client-hello');
    if (!headerRead && collected >= HANDSHAKE_HEADER_BYTES) {
      headerRead = true;
      needed = HANDSHAKE_HEADER_BYTES + u24(message, 1);
      // The smallest stream that could carry it: one record header plus the message.
      if (RECORD_HEADER_BYTES + needed > TLS_HELLO_MAX_BYTES) return malformed('too-large');
    }

    if (recordEnd > view.length) {
      if (collected >= needed) break; // the hello ends inside this partial record
      const restOfRecord = recordEnd - view.length;
      const stillNeeded = needed - collected;
      return incomplete(
        stillNeeded <= restOfRecord ? stillNeeded : restOfRecord + RECORD_HEADER_BYTES + (stillNeeded - restOfRecord),
      );
    }
    pos = recordEnd;
  }
  return { status: 'gathered', body: message.subarray(HANDSHAKE_HEADER_BYTES, needed) };
}

function parseClientHelloBody(body: Uint8Array): TlsHelloResult {
  const end = body.length;
  let p = 2 + RANDOM_BYTES;
  if (end < p + 1) return malformed('short-client-hello');
  const tlsVersion = u16(body, 0);

  const sessionIdLength = body[p];
  if (sessionIdLength > MAX_SESSION_ID || p + 1 + sessionIdLength > end) return malformed('bad-session-id');
  p += 1 + sessionIdLength;

  if (p + 2 > end) return malformed('bad-cipher-suites');
  const suitesLength = u16(body, p);
  if (suitesLength < 2 || suitesLength % 2 !== 0 || p + 2 + suitesLength > end) return malformed('bad-cipher-suites');
  p += 2 + suitesLength;

  if (p + 1 > end) return malformed('bad-compression-methods');
  const compressionLength = body[p];
  if (compressionLength < 1 || p + 1 + compressionLength > end) return malformed('bad-compression-methods');
  p += 1 + compressionLength;

  const facts: Extract<TlsHelloResult, { status: 'complete' }> = {
    status: 'complete',
    sni: null,
    ech: 'none',
    alpn: [],
    tlsVersion,
    supportedVersions: [],
  };
  if (p === end) return facts; // a hello without extensions (allowed before TLS 1.3)

  if (p + 2 > end || p + 2 + u16(body, p) !== end) return malformed('bad-extensions-length');
  p += 2;
  const seen = new Set<number>();
  while (p < end) {
    if (p + 4 > end) return malformed('bad-extension-length');
    const type = u16(body, p);
    const length = u16(body, p + 2);
    const dataStart = p + 4;
    if (dataStart + length > end) return malformed('bad-extension-length');
    if (seen.has(type)) return malformed('duplicate-extension');
    seen.add(type);
    const data = body.subarray(dataStart, dataStart + length);
    const problem = readExtension(type, data, facts);
    if (problem) return malformed(problem);
    p = dataStart + length;
  }
  return facts;
}

/** Fills in what one extension tells us; returns a reason when it is malformed. */
function readExtension(
  type: number,
  data: Uint8Array,
  facts: Extract<TlsHelloResult, { status: 'complete' }>,
): TlsMalformedReason | null {
  switch (type) {
    case EXT_SERVER_NAME: {
      const sni = readServerName(data);
      if (sni === null) return 'bad-server-name';
      facts.sni = sni;
      return null;
    }
    case EXT_ALPN: {
      const alpn = readAlpn(data);
      if (alpn === null) return 'bad-alpn';
      facts.alpn = alpn;
      return null;
    }
    case EXT_SUPPORTED_VERSIONS: {
      const versions = readSupportedVersions(data);
      if (versions === null) return 'bad-supported-versions';
      facts.supportedVersions = versions;
      return null;
    }
    case EXT_ECH:
      facts.ech = 'ech'; // also GREASE ECH (Chrome): indistinguishable on the wire by design
      return null;
    case EXT_ESNI_DRAFT:
      if (facts.ech === 'none') facts.ech = 'esni';
      return null;
    default:
      return null;
  }
}

/**
 * RFC 6066 3: ServerNameList<1..2^16-1> of { name_type(1), HostName<1..2^16-1> }.
 * Returns the host name, or null when the extension is malformed, carries two
 * host names, or a host name with characters outside letters, digits, '-',
 * '_' and '.' (those have no place in a DNS name a policy could match).
 */
function readServerName(data: Uint8Array): string | null {
  if (data.length < 2 || u16(data, 0) !== data.length - 2 || data.length === 2) return null;
  let host: string | null = null;
  let p = 2;
  while (p < data.length) {
    if (p + 3 > data.length) return null;
    const nameType = data[p];
    const length = u16(data, p + 1);
    const start = p + 3;
    if (length === 0 || start + length > data.length) return null;
    if (nameType === SERVER_NAME_HOST) {
      if (host !== null) return null;
      host = normalizeHostName(data, start, start + length);
      if (host === null) return null;
    }
    p = start + length;
  }
  // A list with only unknown name types says nothing about the host.
  return host ?? null;
}

function normalizeHostName(b: Uint8Array, start: number, end: number): string | null {
  for (let i = start; i < end; i++) {
    const c = b[i];
    const letterOrDigit = (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39);
    if (!letterOrDigit && c !== 0x2d && c !== 0x2e && c !== 0x5f) return null;
  }
  let name = latin1(b, start, end).toLowerCase();
  if (name.endsWith('.')) name = name.slice(0, -1);
  if (name === '' || name.startsWith('.') || name.includes('..')) return null;
  return name;
}

/** RFC 7301 3.1: ProtocolNameList<2..2^16-1> of ProtocolName<1..2^8-1>. */
function readAlpn(data: Uint8Array): string[] | null {
  if (data.length < 3 || u16(data, 0) !== data.length - 2) return null;
  const names: string[] = [];
  let p = 2;
  while (p < data.length) {
    const length = data[p];
    if (length === 0 || p + 1 + length > data.length) return null;
    names.push(latin1(data, p + 1, p + 1 + length));
    p += 1 + length;
  }
  return names;
}

/** RFC 8446 4.2.1 (ClientHello form): ProtocolVersion versions<2..254>. */
function readSupportedVersions(data: Uint8Array): number[] | null {
  if (data.length < 3 || data[0] !== data.length - 1 || data[0] % 2 !== 0) return null;
  const versions: number[] = [];
  for (let p = 1; p < data.length; p += 2) versions.push(u16(data, p));
  return versions;
}
