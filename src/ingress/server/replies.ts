/**
 * The answers the ingress gives itself (no route, upstream failures,
 * WebSocket refusals): a small JSON body `{"error": CODE, "reason": TEXT}`
 * with a stable code a client can branch on and a sentence a person can act
 * on. Through a ServerResponse, or as raw bytes where no HTTP response
 * object exists (an upgrade request's socket).
 */
import { STATUS_CODES, type ServerResponse } from 'node:http';

/** The error codes in reply bodies; each goes with one status. */
export const INGRESS_ERRORS = {
  'bad-request': 400,
  'not-found': 404,
  'request-timeout': 408,
  'misdirected-request': 421,
  'head-too-large': 431,
  'internal-error': 500,
  'websocket-unsupported': 501,
  'bad-gateway': 502,
  'signing-unavailable': 503,
  'gateway-timeout': 504,
} as const;

export type IngressErrorCode = keyof typeof INGRESS_ERRORS;

export interface IngressReply {
  error: IngressErrorCode;
  reason: string;
}

const MAX_REASON_CHARS = 500;

/** Answers to a request head that never became a request (both engines; the connection closes after). */
export const CLIENT_ERROR_REPLIES: Readonly<Record<'head-too-large' | 'head-timeout', IngressReply>> = {
  'head-too-large': { error: 'head-too-large', reason: 'the request head is too large' },
  'head-timeout': { error: 'request-timeout', reason: 'the request head did not arrive in time' },
};

export function replyStatus(reply: IngressReply): number {
  return INGRESS_ERRORS[reply.error];
}

export function replyBody(reply: IngressReply): string {
  const reason = reply.reason.length > MAX_REASON_CHARS ? `${reply.reason.slice(0, MAX_REASON_CHARS)}...` : reply.reason;
  return `${JSON.stringify({ error: reply.error, reason })}\n`;
}

function headers(body: string): Record<string, string> {
  return { 'Content-Type': 'application/json', 'Content-Length': String(Buffer.byteLength(body)), 'Cache-Control': 'no-store' };
}

/** Answers through Node's response; a response already under way is cut instead (no second head can be written). */
export function sendReply(res: ServerResponse, reply: IngressReply, close = false): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  if (res.writableEnded || res.destroyed) return;
  const body = replyBody(reply);
  if (close) res.shouldKeepAlive = false;
  res.writeHead(replyStatus(reply), headers(body));
  res.end(body);
}

/** A whole HTTP/1.1 response, to write straight to a socket; `Connection: close` unless `keepAlive`. */
export function rawReply(reply: IngressReply, keepAlive = false): string {
  const status = replyStatus(reply);
  const body = replyBody(reply);
  let head = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\n`;
  for (const [name, value] of Object.entries(headers(body))) head += `${name}: ${value}\r\n`;
  return `${head}${keepAlive ? '' : 'Connection: close\r\n'}\r\n${body}`;
}
