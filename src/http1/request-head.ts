/**
 * An HTTP/1.1 request head in wire form. The pieces come from a parsed
 * client request and from the proxy itself; a CR, LF or NUL in any of them
 * would let one request become two, so the head is refused instead.
 */
import { GatehouseError } from '../errors';
import { readFieldLines } from './fields';
import type { RequestBodyFraming } from './upstream-pool';

const SPLITTING = /[\r\n\0]/;

function checked(piece: string, what: string): string {
  if (SPLITTING.test(piece)) throw new GatehouseError('ERR_INVALID_ARG', `Expected no CR, LF or NUL for the request's ${what} but received ${JSON.stringify(piece)}`);
  return piece;
}

/** `method target HTTP/1.1`, then every field of `rawHeaders` (`[name, value, ...]`) in order. */
export function serializeRequestHead(method: string, target: string, rawHeaders: readonly string[]): string {
  let head = `${checked(method, 'method')} ${checked(target, 'target')} HTTP/1.1\r\n`;
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) head += `${checked(rawHeaders[i], 'field name')}: ${checked(rawHeaders[i + 1], 'field value')}\r\n`;
  return `${head}\r\n`;
}

export interface RequestHead {
  readonly method: string;
  /** The request target as sent (absolute-form, authority-form or origin-form). */
  readonly target: string;
  readonly minorVersion: 0 | 1;
  /** Field lines as `[name, value, ...]`, names as sent, values trimmed of OWS. */
  readonly rawHeaders: string[];
  /** The Transfer-Encoding list (joined), when there is one; then it ends in chunked and there is no Content-Length. */
  readonly transferEncoding: string | undefined;
  /** The one Content-Length value (a list of equal values is one value). */
  readonly contentLength: string | undefined;
  /** Whether the client allows another request on the connection (HTTP/1.1 unless `close`; 1.0 only with `keep-alive`). */
  readonly keepAlive: boolean;
}

export type RequestHeadResult = { readonly ok: true; readonly head: RequestHead } | { readonly ok: false; readonly reason: string };

const REQUEST_LINE = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+) ([\x21-\x7e]+) HTTP\/1\.([01])$/;
const LENGTH = /^\d{1,15}$/;

/**
 * Reads a complete request head (latin1 text ending with its CRLF CRLF, as
 * the relay frames it) strictly, the way response-head.ts reads responses:
 * no obs-fold, no bare LF, no control characters, and the framing
 * ambiguities of RFC 9112 section 6.3 refused (both Transfer-Encoding and
 * Content-Length, a Transfer-Encoding not ending in chunked, disagreeing
 * Content-Lengths): a proxy that reads a body's length differently from
 * its upstream is how requests are smuggled.
 */
export function parseRequestHead(head: string): RequestHeadResult {
  if (!head.endsWith('\r\n\r\n')) return { ok: false, reason: 'incomplete' };
  const text = head.slice(0, -4);
  const lineEnd = text.indexOf('\r\n');
  const requestLine = lineEnd < 0 ? text : text.slice(0, lineEnd);
  const line = REQUEST_LINE.exec(requestLine);
  if (line === null) return { ok: false, reason: /^\S+ \S+ HTTP\/\d/.test(requestLine) ? 'version' : 'request-line' };
  const minorVersion = line[3] === '1' ? 1 : 0;
  const rawHeaders: string[] = [];
  const bad = lineEnd < 0 ? null : readFieldLines(text, lineEnd + 2, rawHeaders);
  if (bad !== null) return { ok: false, reason: bad };
  let transferEncoding: string | undefined;
  let contentLength: string | undefined;
  let close = minorVersion === 0;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i];
    // Only the three framing names are lowercased: 17, 14 and 10 letters.
    if (name.length !== 17 && name.length !== 14 && name.length !== 10) continue;
    const value = rawHeaders[i + 1];
    const lower = name.toLowerCase();
    if (lower === 'transfer-encoding') {
      transferEncoding = transferEncoding === undefined ? value : `${transferEncoding}, ${value}`;
    } else if (lower === 'content-length') {
      for (const part of value.split(',')) {
        const text = part.trim();
        if (!LENGTH.test(text) || (contentLength !== undefined && Number(contentLength) !== Number(text))) return { ok: false, reason: 'content-length' };
        contentLength = String(Number(text));
      }
    } else if (lower === 'connection') {
      for (const token of value.split(',')) {
        const t = token.trim().toLowerCase();
        if (t === 'close') close = true;
        else if (t === 'keep-alive' && minorVersion === 0) close = false;
      }
    }
  }
  if (transferEncoding !== undefined) {
    if (contentLength !== undefined) return { ok: false, reason: 'transfer-encoding-and-content-length' };
    const codings = transferEncoding.split(',').map((c) => c.trim().toLowerCase());
    if (codings[codings.length - 1] !== 'chunked') return { ok: false, reason: 'transfer-encoding' };
  }
  return { ok: true, head: { method: line[1], target: line[2], minorVersion, rawHeaders, transferEncoding, contentLength, keepAlive: !close } };
}

/**
 * How a request body goes upstream, and the one
 * framing field that says so. The upstream head carries exactly this field:
 * the client's own Content-Length and Transfer-Encoding are never copied
 * (whatever its Connection header names), so the length the upstream reads
 * is always the length the proxy sends. The head's reader (Node's parser,
 * or parseRequestHead) has already refused a request with both, or with a
 * Transfer-Encoding not ending in chunked.
 */
export interface RequestFraming {
  readonly body: RequestBodyFraming;
  /** `['Content-Length', n]`, `['Transfer-Encoding', 'chunked']` or nothing. */
  readonly fields: readonly string[];
}

/** Field names the framing decides; drop them from a request's headers before adding `fields`. */
export const REQUEST_FRAMING_FIELDS: readonly string[] = ['content-length', 'transfer-encoding'];

export function requestFraming(transferEncoding: string | undefined, contentLength: string | undefined): RequestFraming {
  if (transferEncoding !== undefined) return { body: 'chunked', fields: ['Transfer-Encoding', 'chunked'] };
  if (contentLength === undefined) return { body: 'none', fields: [] };
  return { body: contentLength === '0' ? 'none' : 'length', fields: ['Content-Length', contentLength] };
}
