/**
 * An HTTP/1.1 request head in wire form. The pieces come from a parsed
 * client request and from the proxy itself; a CR, LF or NUL in any of them
 * would let one request become two, so the head is refused instead.
 */
import { GatehouseError } from '../errors';

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
