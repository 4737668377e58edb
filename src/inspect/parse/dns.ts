/**
 * DNS message reader (RFC 1035 4.1), for logging and deciding on the names a
 * client asks for and the addresses it is told.
 *
 *   header:   id(2) | QR(1) opcode(4) AA TC RD RA Z AD CD rcode(4) (2)
 *             | qdcount(2) | ancount(2) | nscount(2) | arcount(2)
 *   question: name | type(2) | class(2)
 *   record:   name | type(2) | class(2) | ttl(4) | rdlength(2) | rdata
 *   name:     labels of length(1) <= 63, ending in a 0 byte or a pointer
 *             (two bytes, top bits 11, 14-bit offset into the message)
 *
 * Reads the header, the questions and the answer section; authority and
 * additional records are not read. Compression pointers must point strictly
 * before where the current run of labels began (so every jump goes backwards
 * and no loop is possible) and at most DNS_MAX_POINTERS of them are followed
 * per name. It never throws: any byte string gives one of the result variants.
 */
import { bytesToIp } from '../../packet/address';
import { u16, u32 } from './bytes';

/** Most compression pointers followed while reading one name. */
export const DNS_MAX_POINTERS = 32;

/** Why bytes are not a readable DNS message. A closed set. */
export const DNS_MALFORMED_REASONS = [
  'short-header', // fewer than 12 bytes
  'name-past-end', // a name runs past the end of the message
  'bad-label-type', // a label length byte with top bits 01 or 10 (RFC 6891 extended labels)
  'bad-pointer', // a compression pointer that does not point backwards
  'too-many-pointers', // more than DNS_MAX_POINTERS pointers in one name
  'name-too-long', // a name longer than 255 bytes in wire form
  'question-past-end', // fewer questions in the message than qdcount says
  'record-past-end', // fewer answer records in the message than ancount says
  'bad-rdata', // A/AAAA rdata of the wrong length, CNAME rdata that is not one name
] as const;

export type DnsMalformedReason = (typeof DNS_MALFORMED_REASONS)[number];

export interface DnsQuestion {
  /** Lowercased, no trailing dot ("" for the root); odd bytes escaped as in zone files (\. \\ \DDD). */
  name: string;
  type: number;
}

export interface DnsAnswer {
  name: string;
  type: number;
  ttl: number;
  /** A and AAAA: the address as text (IPv6 in RFC 5952 form). */
  address?: string;
  /** CNAME: the canonical name, in the same form as `name`. */
  target?: string;
}

export type DnsMessageResult =
  | {
      status: 'complete';
      id: number;
      /** QR bit: true for a response. */
      response: boolean;
      opcode: number;
      /** Header RCODE (4 bits; the EDNS extended bits are not read). */
      rcode: number;
      questions: DnsQuestion[];
      answers: DnsAnswer[];
    }
  | { status: 'malformed'; reason: DnsMalformedReason };

export interface DnsTcpStreamResult {
  /** Every complete length-prefixed message at the start of the stream, in order. */
  messages: DnsMessageResult[];
  /** True when bytes of a further message have started but not all arrived. */
  incomplete: boolean;
}

const HEADER_BYTES = 12;
const MAX_NAME_WIRE_BYTES = 255;
export const DNS_TYPE_A = 1;
export const DNS_TYPE_CNAME = 5;
export const DNS_TYPE_AAAA = 28;

const TYPE_NAMES: ReadonlyMap<number, string> = new Map([
  [1, 'A'],
  [2, 'NS'],
  [5, 'CNAME'],
  [6, 'SOA'],
  [12, 'PTR'],
  [13, 'HINFO'],
  [15, 'MX'],
  [16, 'TXT'],
  [28, 'AAAA'],
  [29, 'LOC'],
  [33, 'SRV'],
  [35, 'NAPTR'],
  [39, 'DNAME'],
  [41, 'OPT'],
  [43, 'DS'],
  [44, 'SSHFP'],
  [46, 'RRSIG'],
  [47, 'NSEC'],
  [48, 'DNSKEY'],
  [50, 'NSEC3'],
  [52, 'TLSA'],
  [64, 'SVCB'],
  [65, 'HTTPS'],
  [99, 'SPF'],
  [251, 'IXFR'],
  [252, 'AXFR'],
  [255, 'ANY'],
  [256, 'URI'],
  [257, 'CAA'],
]);

/** Mnemonic of an RR type, or "TYPE<n>" (RFC 3597, as Suricata logs it) for others. */
export function dnsTypeName(type: number): string {
  return TYPE_NAMES.get(type) ?? `TYPE${type}`;
}

type Malformed = { status: 'malformed'; reason: DnsMalformedReason };
const malformed = (reason: DnsMalformedReason): Malformed => ({ status: 'malformed', reason });

/** Reads one DNS message (one UDP datagram, or one TCP message without its length prefix). */
export function parseDnsMessage(bytes: Uint8Array): DnsMessageResult {
  if (bytes.length < HEADER_BYTES) return malformed('short-header');
  const flags = u16(bytes, 2);
  const questionCount = u16(bytes, 4);
  const answerCount = u16(bytes, 6);

  let p = HEADER_BYTES;
  const questions: DnsQuestion[] = [];
  for (let i = 0; i < questionCount; i++) {
    const name = readName(bytes, p);
    if ('reason' in name) return malformed(name.reason);
    if (name.next + 4 > bytes.length) return malformed('question-past-end');
    questions.push({ name: name.name, type: u16(bytes, name.next) });
    p = name.next + 4;
  }

  const answers: DnsAnswer[] = [];
  for (let i = 0; i < answerCount; i++) {
    const name = readName(bytes, p);
    if ('reason' in name) return malformed(name.reason);
    const fixed = name.next;
    if (fixed + 10 > bytes.length) return malformed('record-past-end');
    const type = u16(bytes, fixed);
    const rdStart = fixed + 10;
    const rdEnd = rdStart + u16(bytes, fixed + 8);
    if (rdEnd > bytes.length) return malformed('record-past-end');
    const answer: DnsAnswer = { name: name.name, type, ttl: u32(bytes, fixed + 4) };
    const problem = readRdata(bytes, type, rdStart, rdEnd, answer);
    if (problem) return malformed(problem);
    answers.push(answer);
    p = rdEnd;
  }

  return {
    status: 'complete',
    id: u16(bytes, 0),
    response: (flags & 0x8000) !== 0,
    opcode: (flags >> 11) & 0x0f,
    rcode: flags & 0x0f,
    questions,
    answers,
  };
}

function readRdata(
  bytes: Uint8Array,
  type: number,
  start: number,
  end: number,
  answer: DnsAnswer,
): DnsMalformedReason | null {
  const length = end - start;
  if (type === DNS_TYPE_A || type === DNS_TYPE_AAAA) {
    if (length !== (type === DNS_TYPE_A ? 4 : 16)) return 'bad-rdata';
    answer.address = bytesToIp(bytes.subarray(start, end));
  } else if (type === DNS_TYPE_CNAME) {
    // The name may point outside the rdata, but its own bytes must fill it exactly.
    const target = readName(bytes, start, end);
    if ('reason' in target) return target.reason === 'name-past-end' ? 'bad-rdata' : target.reason;
    if (target.next !== end) return 'bad-rdata';
    answer.target = target.name;
  }
  return null;
}

type NameRead = { name: string; next: number } | { reason: DnsMalformedReason };

/**
 * Reads the name at `start`. `next` is the offset just after the name's own
 * bytes (after the terminating 0 or the first pointer). `end` bounds the
 * uncompressed part (the rdata end for names inside rdata); pointer targets
 * may be anywhere before it in the message.
 */
function readName(bytes: Uint8Array, start: number, end: number = bytes.length): NameRead {
  const labels: string[] = [];
  let p = start;
  let runStart = start; // where the labels currently being read began
  let next = -1; // set at the first pointer
  let pointers = 0;
  let wireLength = 1; // the terminating zero
  let limit = end;
  for (;;) {
    if (p >= limit) return { reason: 'name-past-end' };
    const length = bytes[p];
    if (length === 0) {
      if (next < 0) next = p + 1;
      return { name: labels.join('.'), next };
    }
    const kind = length & 0xc0;
    if (kind === 0xc0) {
      if (p + 2 > limit) return { reason: 'name-past-end' };
      const target = ((length & 0x3f) << 8) | bytes[p + 1];
      if (target >= runStart) return { reason: 'bad-pointer' };
      if (++pointers > DNS_MAX_POINTERS) return { reason: 'too-many-pointers' };
      if (next < 0) next = p + 2;
      p = runStart = target;
      limit = bytes.length; // earlier names are ordinary message bytes
      continue;
    }
    if (kind !== 0) return { reason: 'bad-label-type' };
    wireLength += 1 + length;
    if (wireLength > MAX_NAME_WIRE_BYTES) return { reason: 'name-too-long' };
    if (p + 1 + length > limit) return { reason: 'name-past-end' };
    labels.push(labelText(bytes, p + 1, p + 1 + length));
    p += 1 + length;
  }
}

/** One label in presentation form: ASCII lowercased, '.' and '\' escaped, other odd bytes as \DDD. */
function labelText(bytes: Uint8Array, start: number, end: number): string {
  let text = '';
  for (let i = start; i < end; i++) {
    const c = bytes[i];
    if (c === 0x2e || c === 0x5c) text += '\\' + String.fromCharCode(c);
    else if (c >= 0x41 && c <= 0x5a) text += String.fromCharCode(c + 0x20);
    else if (c > 0x20 && c < 0x7f) text += String.fromCharCode(c);
    else text += '\\' + String(c).padStart(3, '0');
  }
  return text;
}

/** Reads the length-prefixed messages (RFC 1035 4.2.2) at the start of a DNS-over-TCP stream. */
export function parseDnsTcpStream(stream: Uint8Array): DnsTcpStreamResult {
  const messages: DnsMessageResult[] = [];
  let p = 0;
  while (p < stream.length) {
    if (p + 2 > stream.length) return { messages, incomplete: true };
    const length = u16(stream, p);
    if (p + 2 + length > stream.length) return { messages, incomplete: true };
    messages.push(parseDnsMessage(stream.subarray(p + 2, p + 2 + length)));
    p += 2 + length;
  }
  return { messages, incomplete: false };
}
