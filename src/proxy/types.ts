/**
 * What the pieces of `gatehouse proxy` hand each other: the facts a policy
 * decision is made on, and the record of one request or tunnel that the
 * access log (Squid's native format), the JSON decision log and the metrics
 * are written from.
 */

/** One request (or CONNECT) as the policy sees it. */
export interface ProxyRequestFacts {
  /** The client's address: from the PROXY protocol header when there is one, else the TCP peer. */
  client: string;
  /** The consumer's VPC endpoint id (PROXY v2 AWS TLV 0xEA), e.g. "vpce-0123456789abcdef0"; null without one. */
  endpoint: string | null;
  /** Destination host: a normalised name (lowercase, no trailing dot) or an IP address in canonical text. */
  host: string;
  port: number;
  /** Uppercase method; "CONNECT" for tunnels. */
  method: string;
}

/** One finished request or tunnel. */
export interface AccessEntry {
  start: Date;
  durationMs: number;
  client: string;
  clientPort: number;
  endpoint: string | null;
  method: string;
  /** The absolute URL for HTTP; "host:port" for CONNECT. */
  url: string;
  host: string;
  port: number;
  /** HTTP status sent to the client (200 for an established CONNECT); 0 if none was sent. */
  status: number;
  /** Squid's result code: TCP_MISS, TCP_TUNNEL, TCP_DENIED, NONE ... (the %Ss field). */
  squidResult: string;
  /** Bytes sent to the client (%<st), and received from it. */
  bytesToClient: number;
  bytesFromClient: number;
  /** Squid's hierarchy code: HIER_DIRECT when an upstream connection was made, else HIER_NONE. */
  hierarchy: 'HIER_DIRECT' | 'HIER_NONE';
  /** The address actually connected to, or null. */
  upstreamAddress: string | null;
  /** The response's Content-Type, or null. */
  contentType: string | null;
  /** The deciding rule's id, or null (the default, or an error before any decision). */
  rule: string | null;
  decision: 'allow' | 'deny' | 'error';
  /** Why: 'rule', 'default', 'port', 'ssrf:<class>', 'fronting', 'upstream', 'timeout', 'limit', ... */
  reason: string | null;
  /** Every address the name resolved to (checked ones). */
  resolvedAddresses: string[];
  /** Time to resolve and to connect upstream, ms (null when not done). */
  resolveMs: number | null;
  connectMs: number | null;
}
