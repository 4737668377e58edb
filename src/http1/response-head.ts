/**
 * The head of an HTTP/1.x response, read strictly (RFC 9112): a status line,
 * CRLF-terminated field lines whose names are tokens, no line folding, no
 * control characters in values. What a lenient reader would guess at
 * (obs-fold, bare LF, two different Content-Lengths) is refused: these are
 * the shapes of response splitting and smuggling, and a proxy that guesses
 * differently from the client is the hole.
 */

import { readFieldLines } from './fields';

export interface ResponseHead {
  /** 0 for HTTP/1.0, 1 for HTTP/1.1. */
  readonly minorVersion: 0 | 1;
  readonly statusCode: number;
  readonly statusMessage: string;
  /** Field lines as `[name, value, name, value, ...]`, names as sent, values trimmed of OWS. */
  readonly rawHeaders: string[];
}

export type ResponseHeadResult =
  /** No end of head yet; `scanFrom` is where the next search for it may start. */
  | { readonly kind: 'incomplete'; readonly scanFrom: number }
  | { readonly kind: 'invalid'; readonly reason: string }
  /** `bytes` is the head's length including its final CRLF CRLF. */
  | { readonly kind: 'head'; readonly head: ResponseHead; readonly bytes: number };

// eslint-disable-next-line no-control-regex -- control characters are exactly what a reason phrase may not hold
const STATUS_LINE = /^HTTP\/1\.([01]) ([1-9]\d\d)(?: ([^\x00-\x08\x0a-\x1f\x7f]*))?$/;
const END_OF_HEAD = '\r\n\r\n';

/**
 * Parses the response head at the start of `buf`. `scanFrom` (from a
 * previous 'incomplete') saves searching the same bytes again. A head longer
 * than `maxBytes` is invalid.
 */
export function parseResponseHead(buf: Buffer, maxBytes: number, scanFrom = 0): ResponseHeadResult {
  const end = buf.indexOf(END_OF_HEAD, Math.max(0, scanFrom - 3), 'latin1');
  if (end < 0) {
    if (buf.length > maxBytes) return { kind: 'invalid', reason: 'head-too-large' };
    return { kind: 'incomplete', scanFrom: buf.length };
  }
  if (end + 4 > maxBytes) return { kind: 'invalid', reason: 'head-too-large' };
  const head = readResponseHead(buf.toString('latin1', 0, end));
  return head.kind === 'head' ? { kind: 'head', head: head.head, bytes: end + 4 } : head;
}

/** Reads the lines of a response head (latin1 text, without its final CRLF CRLF). */
export function readResponseHead(text: string): { readonly kind: 'head'; readonly head: ResponseHead } | { readonly kind: 'invalid'; readonly reason: string } {
  const lineEnd = text.indexOf('\r\n');
  const status = STATUS_LINE.exec(lineEnd < 0 ? text : text.slice(0, lineEnd));
  if (status === null) return { kind: 'invalid', reason: 'status-line' };
  const rawHeaders: string[] = [];
  const bad = lineEnd < 0 ? null : readFieldLines(text, lineEnd + 2, rawHeaders);
  if (bad !== null) return { kind: 'invalid', reason: bad };
  const head: ResponseHead = {
    minorVersion: status[1] === '1' ? 1 : 0,
    statusCode: Number(status[2]),
    statusMessage: status[3] ?? '',
    rawHeaders,
  };
  return { kind: 'head', head };
}

export type BodyFraming =
  | { readonly kind: 'none' }
  | { readonly kind: 'length'; readonly length: number }
  | { readonly kind: 'chunked' }
  /** The body runs until the upstream closes the connection. */
  | { readonly kind: 'close' };

export type FramingResult =
  | { readonly ok: true; readonly framing: BodyFraming; /** The connection may carry another request after this response. */ readonly reusable: boolean }
  | { readonly ok: false; readonly reason: string };

const DIGITS = /^\d{1,15}$/;

/**
 * How the response's body is delimited (RFC 9112 section 6.3), given the
 * request's method: no body for HEAD, 1xx, 204 and 304; Transfer-Encoding
 * before Content-Length (and then the connection is not reused); a
 * Content-Length list must agree with itself; transfer codings other than
 * chunked are refused.
 */
export function responseFraming(head: ResponseHead, requestMethod: string): FramingResult {
  let transferCodings: string | null = null;
  let length: number | null = null;
  let connectionClose = head.minorVersion === 0;
  const raw = head.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    // Only the three framing names are lowercased: 17, 14 and 10 letters.
    const nameLength = raw[i].length;
    if (nameLength !== 17 && nameLength !== 14 && nameLength !== 10) continue;
    const name = raw[i].toLowerCase();
    if (name === 'transfer-encoding') {
      transferCodings = transferCodings === null ? raw[i + 1] : `${transferCodings},${raw[i + 1]}`;
    } else if (name === 'content-length') {
      for (const part of raw[i + 1].split(',')) {
        const text = part.trim();
        if (!DIGITS.test(text)) return { ok: false, reason: 'content-length' };
        const n = Number(text);
        if (length !== null && length !== n) return { ok: false, reason: 'content-length' };
        length = n;
      }
    } else if (name === 'connection') {
      for (const token of raw[i + 1].split(',')) {
        const t = token.trim().toLowerCase();
        if (t === 'close') connectionClose = true;
        else if (t === 'keep-alive' && head.minorVersion === 0) connectionClose = false;
      }
    }
  }
  const status = head.statusCode;
  if (requestMethod === 'HEAD' || status < 200 || status === 204 || status === 304) {
    return { ok: true, framing: { kind: 'none' }, reusable: !connectionClose };
  }
  if (transferCodings !== null) {
    const codings = transferCodings.split(',').map((c) => c.trim().toLowerCase()).filter((c) => c !== '');
    // A coding other than chunked (gzip...) is never asked for (TE is hop-by-hop and not
    // forwarded), and removing Transfer-Encoding would hand the client coded bytes as content.
    if (codings.some((c) => c !== 'chunked')) return { ok: false, reason: 'transfer-coding' };
    const chunked = codings.length > 0 && codings[codings.length - 1] === 'chunked';
    // With both headers the message may have been smuggled past someone: read it, then close.
    return { ok: true, framing: chunked ? { kind: 'chunked' } : { kind: 'close' }, reusable: chunked && length === null && !connectionClose };
  }
  if (length !== null) return { ok: true, framing: { kind: 'length', length }, reusable: !connectionClose };
  return { ok: true, framing: { kind: 'close' }, reusable: false };
}
