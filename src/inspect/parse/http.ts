/**
 * HTTP/1.x request head reader (RFC 9112), for deciding on a cleartext flow
 * by the host it asks for.
 *
 *   request-line = method SP request-target SP HTTP-version CRLF
 *   *( field-name ":" OWS field-value OWS CRLF )
 *   CRLF
 *
 * Strict where leniency lets a request look different to us than to the
 * server behind us (RFC 9112 11.2, request smuggling): bare CR or LF, obs-fold,
 * whitespace before the colon, two different Host values, and an absolute-form
 * target naming another host than the Host header are all malformed.
 *
 * It never throws: any byte string gives one of the result variants.
 */
import { isIPv6 } from 'node:net';
import { latin1 } from './bytes';

/** A head that has not ended within this many bytes is given up on (malformed 'head-too-large'). */
export const HTTP_HEAD_MAX_BYTES = 16 * 1024;

/** Why bytes that start like an HTTP request are not a usable request head. A closed set. */
export const HTTP_MALFORMED_REASONS = [
  'head-too-large', // no end of head within HTTP_HEAD_MAX_BYTES
  'bare-lf', // LF without CR before it
  'bare-cr', // CR without LF after it
  'bad-request-line', // not "method SP target SP HTTP/d.d", or bad characters in the target
  'unsupported-version', // HTTP/d.d other than HTTP/1.0 and HTTP/1.1 (e.g. the HTTP/2 preface)
  'obs-fold', // a header line continued on the next line
  'bad-header', // not "name: value", or control characters in the value
  'bad-host', // a Host header or target authority that is not a host[:port]
  'conflicting-host', // two Host headers with different values
  'host-mismatch', // the target's authority and the Host header name different hosts
] as const;

export type HttpMalformedReason = (typeof HTTP_MALFORMED_REASONS)[number];

export type HttpRequestResult =
  | {
      status: 'complete';
      method: string;
      /** The request-target exactly as sent. */
      target: string;
      /** "HTTP/1.0" or "HTTP/1.1". */
      version: string;
      /**
       * Lowercased host without port, trailing dot or IPv6 brackets: from the
       * absolute-form (or CONNECT authority-form) target when there is one,
       * otherwise from the Host header; null when neither names a host.
       */
      host: string | null;
    }
  | { status: 'incomplete' }
  | { status: 'not-http' }
  | { status: 'malformed'; reason: HttpMalformedReason };

/** Longest method we accept as "this looks like HTTP" (longest registered: 17, UPDATEREDIRECTREF). */
const MAX_METHOD_LENGTH = 20;
const CR = 0x0d;
const LF = 0x0a;
const SP = 0x20;

type Malformed = { status: 'malformed'; reason: HttpMalformedReason };
const malformed = (reason: HttpMalformedReason): Malformed => ({ status: 'malformed', reason });

/** Reads the HTTP/1.x request head at the start of a client's TCP stream. */
export function parseHttpRequest(stream: Uint8Array): HttpRequestResult {
  const start = looksLikeRequestLine(stream);
  if (start === 'no') return { status: 'not-http' };

  const scan = findHeadEnd(stream);
  if (typeof scan === 'object') return scan;
  if (scan < 0) {
    if (stream.length >= HTTP_HEAD_MAX_BYTES) return malformed('head-too-large');
    // Reject a bad request line as soon as it is there, not only at the end of the head.
    const firstLineEnd = indexOfCrlf(stream);
    if (firstLineEnd >= 0) {
      const line = parseRequestLine(latin1(stream, 0, firstLineEnd));
      if ('reason' in line) return malformed(line.reason);
    }
    return { status: 'incomplete' };
  }
  if (scan > HTTP_HEAD_MAX_BYTES) return malformed('head-too-large');
  return parseHead(latin1(stream, 0, scan - 4));
}

/**
 * 'yes' when the stream starts with a method (uppercase letters, '-', '_')
 * followed by a space, 'maybe' while it is still a method prefix, 'no'
 * otherwise. Methods are case-sensitive and registered ones are uppercase;
 * requiring that keeps other line protocols ("SSH-2.0-...") out.
 */
function looksLikeRequestLine(stream: Uint8Array): 'yes' | 'maybe' | 'no' {
  let i = 0;
  while (i < stream.length && i <= MAX_METHOD_LENGTH && isMethodByte(stream[i])) i++;
  if (i === stream.length) return i <= MAX_METHOD_LENGTH ? 'maybe' : 'no';
  return i >= 1 && i <= MAX_METHOD_LENGTH && stream[i] === SP ? 'yes' : 'no';
}

function isMethodByte(c: number): boolean {
  return (c >= 0x41 && c <= 0x5a) || c === 0x2d || c === 0x5f;
}

/**
 * Index just past CRLFCRLF, -1 when the head has not ended within the cap, or
 * a malformed result for a bare CR or LF seen on the way.
 */
function findHeadEnd(stream: Uint8Array): number | Malformed {
  const limit = Math.min(stream.length, HTTP_HEAD_MAX_BYTES + 1);
  for (let i = 0; i < limit; i++) {
    const c = stream[i];
    if (c === LF) {
      if (i === 0 || stream[i - 1] !== CR) return malformed('bare-lf');
      if (i >= 3 && stream[i - 2] === LF && stream[i - 3] === CR) return i + 1;
    } else if (c === CR && i + 1 < stream.length && stream[i + 1] !== LF) {
      return malformed('bare-cr');
    }
  }
  return -1;
}

function indexOfCrlf(stream: Uint8Array): number {
  for (let i = 0; i + 1 < stream.length; i++) if (stream[i] === CR && stream[i + 1] === LF) return i;
  return -1;
}

type RequestLine = { method: string; target: string; version: string } | { reason: HttpMalformedReason };

// The target: visible ASCII only (RFC 9112 3.2; no spaces, no controls, no obs-text).
const REQUEST_LINE = /^([A-Z_-]{1,20}) ([\x21-\x7e]+) (HTTP\/\d\.\d)$/;

function parseRequestLine(line: string): RequestLine {
  const m = REQUEST_LINE.exec(line);
  if (!m) return { reason: 'bad-request-line' };
  const [, method, target, version] = m;
  if (version !== 'HTTP/1.1' && version !== 'HTTP/1.0') return { reason: 'unsupported-version' };
  return { method, target, version };
}

const FIELD_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** Controls other than HTAB have no place in a field value. */
function hasControl(value: string): boolean {
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if ((c < 0x20 && c !== 0x09) || c === 0x7f) return true;
  }
  return false;
}

function parseHead(head: string): HttpRequestResult {
  const lines = head.split('\r\n');
  const requestLine = parseRequestLine(lines[0]);
  if ('reason' in requestLine) return malformed(requestLine.reason);

  let hostHeader: string | null | undefined; // undefined: no Host header line at all
  for (const line of lines.slice(1)) {
    if (line.startsWith(' ') || line.startsWith('\t')) return malformed('obs-fold');
    const colon = line.indexOf(':');
    if (colon < 0) return malformed('bad-header');
    const name = line.slice(0, colon);
    const value = line.slice(colon + 1).replace(/^[ \t]+|[ \t]+$/g, '');
    if (!FIELD_NAME.test(name) || hasControl(value)) return malformed('bad-header');
    if (name.toLowerCase() !== 'host') continue;
    const host = normalizeHost(value);
    if (host === 'bad') return malformed('bad-host');
    if (hostHeader !== undefined && hostHeader !== host) return malformed('conflicting-host');
    hostHeader = host;
  }

  const targetHost = hostFromTarget(requestLine.method, requestLine.target);
  if (targetHost === 'bad') return malformed('bad-host');
  if (targetHost !== undefined && typeof hostHeader === 'string' && hostHeader !== targetHost) {
    return malformed('host-mismatch');
  }
  return { status: 'complete', ...requestLine, host: targetHost ?? hostHeader ?? null };
}

const ABSOLUTE_FORM = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/([^/?#]*)/;

/**
 * The host an absolute-form target (proxy requests) or a CONNECT
 * authority-form target names; undefined for origin-form and "*".
 */
function hostFromTarget(method: string, target: string): string | undefined | 'bad' {
  if (method === 'CONNECT') return normalizeHost(target) ?? 'bad';
  const m = ABSOLUTE_FORM.exec(target);
  if (!m) return undefined;
  const authority = m[1].slice(m[1].lastIndexOf('@') + 1); // drop any userinfo
  return normalizeHost(authority) ?? 'bad';
}

const HOST_NAME = /^[a-z0-9_-]+(\.[a-z0-9_-]+)*$/;

/**
 * host[:port] or [IPv6][:port] -> lowercased host without port, brackets or
 * trailing dot; null for an empty value (allowed when the target has no
 * authority); 'bad' for anything else, including percent-encoding and
 * characters outside letters, digits, '-', '_' and '.'.
 */
function normalizeHost(value: string): string | null | 'bad' {
  if (value === '') return null;
  let host: string;
  let port: string;
  if (value.startsWith('[')) {
    const close = value.indexOf(']');
    if (close < 0) return 'bad';
    host = value.slice(1, close).toLowerCase();
    const rest = value.slice(close + 1);
    if (rest !== '' && !rest.startsWith(':')) return 'bad';
    port = rest.slice(1);
    if (!isIPv6(host)) return 'bad';
  } else {
    const colon = value.indexOf(':');
    host = (colon < 0 ? value : value.slice(0, colon)).toLowerCase();
    port = colon < 0 ? '' : value.slice(colon + 1);
    if (host.endsWith('.')) host = host.slice(0, -1);
    if (!HOST_NAME.test(host)) return 'bad';
  }
  if (!/^\d{0,5}$/.test(port) || Number(port) > 65535) return 'bad';
  return host;
}
