/**
 * Picks the parser for the first payload of a flow.
 *
 * TCP is classified by content, whatever the port, so a protocol cannot hide
 * behind another protocol's port:
 *   1. first byte 0x16 and second byte 0x03 (or not yet there) -> TLS;
 *   2. an HTTP method token and a space (or a prefix of that)  -> HTTP;
 *   3. otherwise, destination port 53 -> DNS over TCP;
 *   4. otherwise unknown.
 * UDP to port 53 is DNS (one datagram, one message); other UDP is unknown.
 *
 * `incomplete` is true when more bytes of the same stream could change the
 * answer: the chosen parser is still waiting, or (empty TCP stream) nothing
 * has been seen yet. It never throws.
 */
import { parseDnsMessage, parseDnsTcpStream, type DnsMessageResult } from './dns';
import { parseHttpRequest, type HttpRequestResult } from './http';
import { parseTlsClientHello, type TlsHelloResult } from './tls';

export const DNS_PORT = 53;

export type PayloadFacts = (
  | { app: 'tls'; hello: TlsHelloResult }
  | { app: 'http'; request: HttpRequestResult }
  /** UDP: exactly one message. TCP: the complete length-prefixed messages so far (maybe none). */
  | { app: 'dns'; transport: 'udp' | 'tcp'; messages: DnsMessageResult[] }
  | { app: 'unknown' }
) & { incomplete: boolean };

/** Classifies and parses the first bytes a client sent (a UDP datagram, or the TCP stream so far). */
export function classifyPayload(protocol: 'tcp' | 'udp', dstPort: number, stream: Uint8Array): PayloadFacts {
  if (protocol === 'udp') {
    if (dstPort === DNS_PORT) {
      return { app: 'dns', transport: 'udp', messages: [parseDnsMessage(stream)], incomplete: false };
    }
    return { app: 'unknown', incomplete: false };
  }
  if (stream.length === 0) return { app: 'unknown', incomplete: true };

  const hello = parseTlsClientHello(stream);
  if (hello.status !== 'not-tls') return { app: 'tls', hello, incomplete: hello.status === 'incomplete' };

  const request = parseHttpRequest(stream);
  if (request.status !== 'not-http') return { app: 'http', request, incomplete: request.status === 'incomplete' };

  if (dstPort === DNS_PORT) {
    const { messages, incomplete } = parseDnsTcpStream(stream);
    return { app: 'dns', transport: 'tcp', messages, incomplete };
  }
  return { app: 'unknown', incomplete: false };
}
