/**
 * The short text answers the proxy gives itself (denials, errors, limits),
 * either through a ServerResponse or, where no HTTP parser is attached (a
 * CONNECT socket, a refused connection), as raw bytes on the socket.
 */
import { STATUS_CODES, type ServerResponse } from 'node:http';

export interface ProxyReply {
  status: number;
  /** One line of explanation; the status text is put in front of it. */
  text: string;
  /** The deciding rule's id, sent as X-Gatehouse-Rule. */
  rule?: string | null;
}

/** Header values come from policy files and clients: keep them to visible ASCII so a header can never be split. */
export function headerSafe(value: string): string {
  const cleaned = value.replace(/[^\x20-\x7e]/g, '?').slice(0, 200);
  return cleaned === '' ? '-' : cleaned;
}

export function replyBody(reply: ProxyReply): string {
  const text = reply.text.replace(/[\r\n]+/g, ' ').slice(0, 500);
  return `${reply.status} ${STATUS_CODES[reply.status] ?? 'Error'}: ${text}\n`;
}

function replyHeaders(reply: ProxyReply, body: string): Record<string, string> {
  const headers: Record<string, string> = {
    'Content-Type': 'text/plain; charset=utf-8',
    'Content-Length': String(Buffer.byteLength(body)),
    'Cache-Control': 'no-store',
  };
  if (reply.rule) headers['X-Gatehouse-Rule'] = headerSafe(reply.rule);
  return headers;
}

/** A complete HTTP/1.1 response, with `Connection: close` unless the connection stays open for another request. */
export function rawReply(reply: ProxyReply, keepAlive = false): string {
  const body = replyBody(reply);
  const lines = [`HTTP/1.1 ${reply.status} ${STATUS_CODES[reply.status] ?? 'Error'}`];
  for (const [name, value] of Object.entries(replyHeaders(reply, body))) lines.push(`${name}: ${value}`);
  if (!keepAlive) lines.push('Connection: close');
  return `${lines.join('\r\n')}\r\n\r\n${body}`;
}

/** Sends the reply through Node's response (keep-alive stays possible unless `close`). */
export function sendReply(res: ServerResponse, reply: ProxyReply, close = false): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = replyBody(reply);
  if (close) res.shouldKeepAlive = false;
  res.writeHead(reply.status, replyHeaders(reply, body));
  res.end(body);
}
