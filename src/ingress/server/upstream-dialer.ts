/**
 * How the ingress reaches its upstreams, for the shared keep-alive pool
 * (src/http1/upstream-pool.ts): plain TCP or TLS (verified against the
 * system CAs or a route's CA file, SNI set to the upstream's name), to the
 * names its routes produce, resolved by the system resolver when a
 * connection is made (the egress proxy's dialer, by contrast, takes only
 * SSRF-checked addresses). Idle connections close after the pool's idle
 * time, which stays under Lattice's 60 s: a connection Lattice has already
 * closed would otherwise be picked for the next request. While an exchange
 * runs, the connection's inactivity limit is the route's timeout.
 */
import { readFileSync } from 'node:fs';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { UpstreamPool, type UpstreamDialer } from '../../http1';
import type { TlsOptions } from '../routes';

export const DEFAULT_UPSTREAM_IDLE_MS = 50_000;
/** A new upstream connection must be up (TCP) within this. */
export const UPSTREAM_CONNECT_TIMEOUT_MS = 10_000;
/** Largest response head accepted from an upstream. */
export const MAX_RESPONSE_HEAD_BYTES = 64 * 1024;

export interface UpstreamEndpoint {
  /** A name or an IP literal (no brackets). */
  readonly host: string;
  readonly port: number;
  readonly tls: TlsOptions;
}

/** Connections to the routes' upstreams: TCP, or TLS verified as the route says, to names resolved when dialled. */
export class IngressUpstreamDialer implements UpstreamDialer<UpstreamEndpoint> {
  /** CA bundles read once per routes generation; renew() drops them so a reload reads the files again. */
  private cas = new Map<string, Buffer>();

  keyOf(e: UpstreamEndpoint): string {
    const t = e.tls;
    const mode = !t.enabled ? 'tcp' : !t.verify ? 'tls-unverified' : t.caFile === null ? 'tls' : `tls-ca:${t.caFile}`;
    return `${mode}|${e.host}|${e.port}`;
  }

  /** Throws when a CA file cannot be read. */
  dial(e: UpstreamEndpoint): net.Socket {
    if (!e.tls.enabled) return net.connect({ host: e.host, port: e.port, noDelay: true });
    const socket = tls.connect({
      host: e.host,
      port: e.port,
      rejectUnauthorized: e.tls.verify,
      ALPNProtocols: ['http/1.1'],
      ...(net.isIP(e.host) === 0 ? { servername: e.host } : {}),
      ...(e.tls.caFile === null ? {} : { ca: this.ca(e.tls.caFile) }),
    });
    socket.setNoDelay(true);
    return socket;
  }

  private ca(file: string): Buffer {
    let pem = this.cas.get(file);
    if (pem === undefined) {
      pem = readFileSync(file);
      this.cas.set(file, pem);
    }
    return pem;
  }

  /** After a routes reload: CA files are read again for new connections. */
  renew(): void {
    this.cas = new Map();
  }
}

/** The ingress's keep-alive pool: idle connections close after `idleMs` (under Lattice's 60 s). */
export function ingressUpstreamPool(idleMs: number, dialer: IngressUpstreamDialer): UpstreamPool<UpstreamEndpoint> {
  return new UpstreamPool({ idleTimeoutMs: idleMs, connectTimeoutMs: UPSTREAM_CONNECT_TIMEOUT_MS, maxHeadBytes: MAX_RESPONSE_HEAD_BYTES }, dialer);
}
