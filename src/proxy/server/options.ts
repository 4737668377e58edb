/**
 * What `startProxyServer` is given. The policy and the SSRF resolver are
 * injected functions rather than imports, so the
 * server can be tested on its own and the command plugs the real ones in
 * (and swaps the policy on reload: `decide` is called per request).
 */
import { GatehouseError } from '../../errors';
import type { DestinationHost, ResolveAndCheckResult } from '../ssrf';
import type { AccessEntry, ProxyRequestFacts } from '../types';

/** The policy's answer for one request (the shape `evaluateProxyPolicy` returns; only these fields are read). */
export interface ProxyDecision {
  action: 'allow' | 'deny';
  rule: { id: string } | null;
  /** 'rule', 'default' or 'port'. */
  reason: string;
  /** Shown to the client in a denial's body. */
  message: string;
  /** The deciding rule's allow_addresses, handed to `resolve`. */
  allowAddresses: readonly string[];
}

/**
 * Resolves a destination host (as the request target parsed it) and checks
 * every address (`resolveAndCheckNow` with the proxy's lookup and own
 * addresses bound); a cached answer may come back at once, without a promise.
 */
export type ResolveDestination = (host: DestinationHost, allowAddresses: readonly string[]) => Promise<ResolveAndCheckResult> | ResolveAndCheckResult;

export interface ListenAddress {
  host: string;
  /** 0 picks a free port (tests). */
  port: number;
}

export interface ProxyServerOptions {
  listen: ListenAddress[];
  /** Expect a PROXY protocol header (v1 or v2) before each connection's first request. */
  proxyProtocol: boolean;
  decide: (facts: ProxyRequestFacts) => ProxyDecision;
  resolve: ResolveDestination;
  onAccess: (entry: AccessEntry) => void;
  /** Open client connections at once; more are answered 503 and closed. */
  maxConnections: number;
  /** Open connections from one client address (the PROXY source when there is one); more are answered 429. */
  maxConnectionsPerClient: number;
  /** Largest request head accepted (431 beyond). Default 16 KiB. */
  maxHeaderBytes?: number;
  /** A request head (and the PROXY header) must be complete this long after it starts, else 408 and close. */
  headerTimeoutMs: number;
  /** Idle keep-alive connections, idle tunnels and idle upstream sockets are closed after this long. */
  idleTimeoutMs: number;
  /** Upstream TCP connect deadline; 504 on expiry. */
  connectTimeoutMs: number;
  /** Value of the Via header added in both directions, e.g. "1.1 gatehouse"; null adds none. */
  via: string | null;
  /** 'add' appends the client's address to X-Forwarded-For; 'off' passes the header through untouched. */
  xForwardedFor: 'add' | 'off';
  /** What to do with a CONNECT tunnel whose first client bytes are not TLS. */
  fronting: { nonTls: 'allow' | 'deny' };
  /** How long a tunnel may wait for the client's first bytes (a complete ClientHello) before it is closed. */
  frontingTimeoutMs: number;
  /**
   * Kept routes (native/src/http_route.h): for this long after a plain GET
   * or HEAD was decided and forwarded, the relay sends the connection's
   * plain repeats of it (same method, same `http://authority`) the same way
   * without asking `decide` and `resolve` again; they are logged as usual.
   * Only for a `decide` that answers the same facts the same way until
   * `policyChanged()` is called, and no longer than a DNS answer is reused.
   * Default 0: every request is decided.
   */
  keptRouteMs?: number;
}

/** The options with defaults filled in and every number checked. */
export type CheckedProxyServerOptions = Required<ProxyServerOptions>;

export const DEFAULT_MAX_HEADER_BYTES = 16 * 1024;

function invalid(name: string, expected: string, value: unknown): GatehouseError {
  return new GatehouseError('ERR_INVALID_ARG', `Expected ${expected} for ${name} but received ${String(value)}`);
}

function positiveInteger(name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0) throw invalid(name, 'a positive integer', value);
  return value;
}

function nonNegativeInteger(name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) throw invalid(name, 'an integer >= 0', value);
  return value;
}

function requireFunction<T>(name: string, value: T | undefined): T {
  if (typeof value !== 'function') throw invalid(name, 'a function', value);
  return value;
}

export function checkProxyServerOptions(opts: ProxyServerOptions): CheckedProxyServerOptions {
  if (!Array.isArray(opts.listen) || opts.listen.length === 0) throw invalid('listen', 'at least one address', opts.listen);
  for (const [i, l] of opts.listen.entries()) {
    if (typeof l?.host !== 'string' || l.host === '') throw invalid(`listen[${i}].host`, 'an address', l?.host);
    if (!Number.isInteger(l.port) || l.port < 0 || l.port > 65535) throw invalid(`listen[${i}].port`, 'a port 0-65535', l.port);
  }
  if (opts.via !== null && (typeof opts.via !== 'string' || !/^[\x21-\x7e][\x20-\x7e]*$/.test(opts.via))) {
    throw invalid('via', 'a printable header value or null', opts.via);
  }
  if (opts.xForwardedFor !== 'add' && opts.xForwardedFor !== 'off') throw invalid('xForwardedFor', '"add" or "off"', opts.xForwardedFor);
  if (opts.fronting?.nonTls !== 'allow' && opts.fronting?.nonTls !== 'deny') {
    throw invalid('fronting.nonTls', '"allow" or "deny"', opts.fronting?.nonTls);
  }
  return {
    listen: opts.listen.map((l) => ({ host: l.host, port: l.port })),
    proxyProtocol: opts.proxyProtocol === true,
    decide: requireFunction('decide', opts.decide),
    resolve: requireFunction('resolve', opts.resolve),
    onAccess: requireFunction('onAccess', opts.onAccess),
    maxConnections: positiveInteger('maxConnections', opts.maxConnections),
    maxConnectionsPerClient: positiveInteger('maxConnectionsPerClient', opts.maxConnectionsPerClient),
    maxHeaderBytes: positiveInteger('maxHeaderBytes', opts.maxHeaderBytes ?? DEFAULT_MAX_HEADER_BYTES),
    headerTimeoutMs: positiveInteger('headerTimeoutMs', opts.headerTimeoutMs),
    idleTimeoutMs: positiveInteger('idleTimeoutMs', opts.idleTimeoutMs),
    connectTimeoutMs: positiveInteger('connectTimeoutMs', opts.connectTimeoutMs),
    via: opts.via,
    xForwardedFor: opts.xForwardedFor,
    fronting: { nonTls: opts.fronting.nonTls },
    frontingTimeoutMs: positiveInteger('frontingTimeoutMs', opts.frontingTimeoutMs),
    keptRouteMs: nonNegativeInteger('keptRouteMs', opts.keptRouteMs ?? 0),
  };
}
