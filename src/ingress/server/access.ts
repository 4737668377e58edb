/**
 * One access entry per request (and per WebSocket upgrade), filled in as the
 * request goes and handed to the sink exactly once when it ends, however it
 * ends. The JSON and combined log lines and the metrics are all made from it.
 */
import type { IngressErrorCode } from './replies';

export interface IngressAccessEntry {
  /** When the request head arrived. */
  start: Date;
  durationMs: number;
  /** The client: from the PROXY protocol header when there is one, else the TCP peer. */
  client: string;
  clientPort: number;
  method: string;
  /** The host the client asked for, as sent. */
  host: string;
  /** The path as sent, without its query (queries often carry secrets). */
  path: string;
  /** "HTTP/1.1" */
  protocol: string;
  /** Status sent to the client; 0 when none was (the client left, or a body was cut). */
  status: number;
  /** Bytes read from and written to the client connection for this request, heads included. */
  bytesIn: number;
  bytesOut: number;
  /** The route that served it (`host-pattern` + prefix, e.g. "*.example.com/"), or null. */
  route: string | null;
  /** The upstream's authority (after rewriting), or null. */
  upstream: string | null;
  /** Time from sending upstream to the response head, ms; null without a response. */
  upstreamMs: number | null;
  signed: boolean;
  /** The reply's error code when the ingress answered itself; null for upstream responses. */
  error: IngressErrorCode | null;
  reason: string | null;
  userAgent: string;
  referer: string;
  /** Whether the client connection is TLS (the listener's --tls-cert). */
  tls: boolean;
  /** True for a WebSocket upgrade. */
  upgrade: boolean;
}

export type IngressAccessSink = (entry: IngressAccessEntry) => void;

/** The path without its query: "/a?b" -> "/a?" (the "?" says there was one). */
export function pathWithoutQuery(path: string): string {
  const q = path.indexOf('?');
  return q < 0 ? path : path.slice(0, q + 1);
}

export function newAccessEntry(client: string, clientPort: number, method: string, tls: boolean): IngressAccessEntry {
  return {
    start: new Date(),
    durationMs: 0,
    client,
    clientPort,
    method,
    host: '',
    path: '',
    protocol: 'HTTP/1.1',
    status: 0,
    bytesIn: 0,
    bytesOut: 0,
    route: null,
    upstream: null,
    upstreamMs: null,
    signed: false,
    error: null,
    reason: null,
    userAgent: '',
    referer: '',
    tls,
    upgrade: false,
  };
}
