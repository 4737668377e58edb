/**
 * What `startIngressServer` is given. Routes come through a function (called
 * per request, so a reload takes effect at once); the signer and the access
 * sink are injected, so the server can be tested on its own.
 */
import { checkInteger, expected, invalidArg } from '../../validate';
import type { RouteTable } from '../routes';
import type { LatticeSigner } from '../sigv4/lattice-signer';
import type { IngressAccessSink } from './access';
import { DEFAULT_UPSTREAM_IDLE_MS } from './upstream-dialer';

export interface ListenAddress {
  host: string;
  /** 0 picks a free port (tests). */
  port: number;
}

/** PEM contents of the listener's certificate (chain) and private key. */
export interface TlsCredentials {
  cert: string | Buffer;
  key: string | Buffer;
}

export interface IngressServerOptions {
  listen: ListenAddress[];
  /** Serve HTTPS with these; null: plain HTTP. */
  tls: TlsCredentials | null;
  /** Every connection starts with a PROXY protocol v1/v2 header (an NLB's); the client address comes from it. */
  proxyProtocol: boolean;
  routes: () => RouteTable;
  signer: LatticeSigner | null;
  onAccess: IngressAccessSink;
  /** Idle pooled upstream connections close after this (default 50 s, under Lattice's 60 s). */
  upstreamIdleMs?: number;
  /** The PROXY header, the TLS handshake and the request head must each arrive within this (default 10 s). */
  headerTimeoutMs?: number;
  /** Idle client keep-alive connections close after this (default 65 s, over an ALB/NLB's usual 60 s). */
  idleTimeoutMs?: number;
  /** Largest request head (431 beyond; default 16 KiB). */
  maxHeaderBytes?: number;
  /**
   * What serves a plain-HTTP listener: 'relay' (default), the native relay,
   * handing what it does not speak (TLS upstreams, upgrades, Expect) to
   * node:http per connection; or 'node', node:http for everything. A TLS
   * listener is always node:http.
   */
  engine?: IngressEngine;
}

export const INGRESS_ENGINES = ['relay', 'node'] as const;
export type IngressEngine = (typeof INGRESS_ENGINES)[number];

export type CheckedIngressServerOptions = Required<IngressServerOptions>;

export const INGRESS_SERVER_DEFAULTS = {
  upstreamIdleMs: DEFAULT_UPSTREAM_IDLE_MS,
  headerTimeoutMs: 10_000,
  idleTimeoutMs: 65_000,
  maxHeaderBytes: 16 * 1024,
  engine: 'relay',
} as const;

/** Lattice closes idle connections to targets after 60 s; a pool must let go of them first. */
const LATTICE_IDLE_MS = 60_000;

export function checkIngressServerOptions(o: IngressServerOptions): CheckedIngressServerOptions {
  if (!Array.isArray(o.listen) || o.listen.length === 0) expected('at least one address', 'listen', JSON.stringify(o.listen));
  o.listen.forEach((l, i) => checkInteger(`listen[${i}].port`, l.port, 0, 65535));
  const checked: CheckedIngressServerOptions = { ...INGRESS_SERVER_DEFAULTS, ...o };
  checkInteger('upstreamIdleMs', checked.upstreamIdleMs, 1, LATTICE_IDLE_MS - 1);
  checkInteger('headerTimeoutMs', checked.headerTimeoutMs, 1, 3_600_000);
  checkInteger('idleTimeoutMs', checked.idleTimeoutMs, 1, 86_400_000);
  checkInteger('maxHeaderBytes', checked.maxHeaderBytes, 1024, 1024 * 1024);
  if (!(INGRESS_ENGINES as readonly string[]).includes(checked.engine)) invalidArg(`one of ${INGRESS_ENGINES.join(', ')}`, 'engine', checked.engine);
  return checked;
}
