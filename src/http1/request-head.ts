/**
 * An HTTP/1.1 request head in wire form. The pieces come from a parsed
 * client request and from the proxy itself; a CR, LF or NUL in any of them
 * would let one request become two, so the head is refused instead.
 */
import { GatehouseError } from '../errors';
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

/**
 * How a request body that Node's server parsed goes upstream, and the one
 * framing field that says so. The upstream head carries exactly this field:
 * the client's own Content-Length and Transfer-Encoding are never copied
 * (whatever its Connection header names), so the length the upstream reads
 * is always the length the proxy sends. Node's parser has already refused
 * a request with both, or with a Transfer-Encoding not ending in chunked.
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
