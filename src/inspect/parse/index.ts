/**
 * Payload parsers for `gatehouse inspect`: pure functions from the first
 * bytes of a flow to what they say (TLS SNI, HTTP host, DNS names). None of
 * them throws on any input; bad input gives a result that says so.
 */
export {
  TLS_HELLO_MAX_BYTES,
  TLS_MALFORMED_REASONS,
  parseTlsClientHello,
  type TlsEchKind,
  type TlsHelloResult,
  type TlsMalformedReason,
} from './tls';
export {
  HTTP_HEAD_MAX_BYTES,
  HTTP_MALFORMED_REASONS,
  parseHttpRequest,
  type HttpMalformedReason,
  type HttpRequestResult,
} from './http';
export {
  DNS_MALFORMED_REASONS,
  DNS_MAX_POINTERS,
  dnsTypeName,
  parseDnsMessage,
  parseDnsTcpStream,
  type DnsAnswer,
  type DnsMalformedReason,
  type DnsMessageResult,
  type DnsQuestion,
  type DnsTcpStreamResult,
} from './dns';
export { DNS_PORT, classifyPayload, type PayloadFacts } from './payload';
