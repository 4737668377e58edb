/**
 * The ingress routing table: public host names (exact or `*.` wildcard) to
 * upstreams, with path-prefix routes under each host. Built once when the
 * routes file loads (parse.ts); read per request by resolve.ts.
 */

export const ROUTES_SCHEMA_VERSION = 1;

export const WEBSOCKET_MODES = ['reject', 'passthrough'] as const;
export type WebSocketMode = (typeof WEBSOCKET_MODES)[number];

/** How a wildcard route derives its upstream host from the request's host. */
export type RewriteRule =
  /** The seed's rule: billing.apps.example.com -> billing-service.apps.example.com. */
  | { readonly kind: 'first-dot-to-service' }
  /** a.example.org -> a.svc.internal for suffix `.example.org`, to `.svc.internal`. */
  | { readonly kind: 'suffix'; readonly suffix: string; readonly to: string };

export type UpstreamSpec =
  /** An explicit VPC Lattice service DNS name. */
  | { readonly kind: 'service'; readonly host: string; readonly port: number }
  /** An explicit URL; `lattice` is true when its host is a Lattice-generated service name. */
  | { readonly kind: 'url'; readonly host: string; readonly port: number; readonly pathPrefix: string | null; readonly lattice: boolean }
  /** The upstream host computed from the request's host (always a Lattice service). */
  | { readonly kind: 'rewrite'; readonly rule: RewriteRule; readonly port: number };

export interface TlsOptions {
  readonly enabled: boolean;
  /** Verify the upstream's certificate (against the system CAs, or `caFile`). */
  readonly verify: boolean;
  /** Absolute path of a PEM bundle to verify against instead of the system CAs. */
  readonly caFile: string | null;
}

export interface Route {
  /** The host pattern as written, normalised: `api.example.com` or `*.example.com`. */
  readonly host: string;
  /** The path prefix this route serves; `/` for a host-wide upstream. */
  readonly prefix: string;
  readonly upstream: UpstreamSpec;
  /** Sign requests with SigV4 (service vpc-lattice-svcs). */
  readonly sign: boolean;
  readonly timeoutMs: number;
  readonly tls: TlsOptions;
  readonly websocket: WebSocketMode;
  /** Drop the client's Authorization header before forwarding. */
  readonly stripAuthorization: boolean;
  /** Where the route is written (the path entry, or the host entry). */
  readonly line: number;
  readonly column: number;
}

export interface HostEntry {
  readonly pattern: { readonly kind: 'exact' | 'subdomains'; readonly name: string };
  /** Longest prefix first. */
  readonly routes: readonly Route[];
  /** Where the host entry is written. */
  readonly line: number;
  readonly column: number;
}

export interface RouteTable {
  readonly version: typeof ROUTES_SCHEMA_VERSION;
  readonly file: string;
  /** By exact host name (lowercase, no trailing dot). */
  readonly exact: ReadonlyMap<string, HostEntry>;
  /** By the domain under the `*.` (lowercase, no trailing dot). */
  readonly wildcards: ReadonlyMap<string, HostEntry>;
  /** Every host entry in file order. */
  readonly entries: readonly HostEntry[];
}

export interface ResolvedUpstream {
  /** The host to connect to (no brackets for IPv6). */
  readonly host: string;
  readonly port: number;
  readonly tls: boolean;
  /** Prepended to the request path (a URL upstream's path, without a trailing slash). */
  readonly pathPrefix?: string;
}

export type RouteResolution =
  | {
      readonly ok: true;
      readonly route: Route;
      readonly upstream: ResolvedUpstream;
      readonly signHost: string;
      /** Every path of the host under the route's prefix takes this route (no longer prefix of the host comes first). */
      readonly wholePrefix: boolean;
    }
  | { readonly ok: false; readonly status: 421 | 404; readonly reason: string };
