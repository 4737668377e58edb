/**
 * HTTP/1.1 wire format for the proxies' upstream connections: strict
 * response heads and body framing, the chunked coding, request heads.
 * Pure functions and one state machine; sockets live with the callers.
 */
export { parseResponseHead, responseFraming, type BodyFraming, type FramingResult, type ResponseHead, type ResponseHeadResult } from './response-head';
export { ChunkedDecoder, encodeChunk, LAST_CHUNK, type ChunkedResult } from './chunked';
export { serializeRequestHead } from './request-head';
