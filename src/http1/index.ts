/**
 * HTTP/1.1 for the proxies' upstream side: the wire format (strict response
 * heads and body framing, the chunked coding, request heads: pure functions
 * and one state machine) and the keep-alive connections that use it
 * (upstream-pool.ts; the dialer says where and how to connect).
 */
export { parseResponseHead, readResponseHead, responseFraming, type BodyFraming, type FramingResult, type ResponseHead, type ResponseHeadResult } from './response-head';
export { ChunkedDecoder, encodeChunk, LAST_CHUNK, type ChunkedResult } from './chunked';
export { parseRequestHead, REQUEST_FRAMING_FIELDS, requestFraming, serializeRequestHead, type RequestFraming, type RequestHead, type RequestHeadResult } from './request-head';
export {
  timeoutError,
  UpstreamConnection,
  UpstreamPool,
  type ExchangeHandler,
  type RequestBodyFraming,
  type UpstreamDialer,
  type UpstreamPoolOptions,
} from './upstream-pool';
export { isIdempotent, UpstreamRelay } from './upstream-relay';
