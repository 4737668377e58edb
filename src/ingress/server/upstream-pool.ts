/**
 * Keep-alive connections to upstreams for the ingress: plain TCP or TLS
 * (verified against the system CAs or a route's CA file, SNI set to the
 * upstream's name), to names resolved by the system resolver when a
 * connection is made. One exchange at a time per connection, each run by
 * the proxy's UpstreamConnection (src/proxy/server/upstream-pool.ts: strict
 * response heads, RFC 9112 framing, the chunked coding, from src/http1)
 * instead of node:http's Agent and ClientRequest, which cost more CPU per
 * request than everything else on this path.
 *
 * This subclass owns the bookkeeping (the base pool dials IP literals only,
 * behind the egress proxy's SSRF check; the ingress dials the names its
 * routes produce). Idle connections close after `idleMs`, which stays under
 * Lattice's 60 s: a connection Lattice has already closed would otherwise be
 * picked for the next request. While an exchange runs, the connection's
 * inactivity limit is the route's timeout.
 */
import { readFileSync } from 'node:fs';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { UpstreamConnection, UpstreamPool, type UpstreamTarget } from '../../proxy/server/upstream-pool';
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

function poolKey(e: UpstreamEndpoint): string {
  const t = e.tls;
  const mode = !t.enabled ? 'tcp' : !t.verify ? 'tls-unverified' : t.caFile === null ? 'tls' : `tls-ca:${t.caFile}`;
  return `${mode}|${e.host}|${e.port}`;
}

export class IngressUpstreamPool extends UpstreamPool {
  private readonly idleByKey = new Map<string, UpstreamConnection[]>();
  private readonly open = new Set<UpstreamConnection>();
  /** CA bundles read once per pool generation; renew() drops them so a reload reads the files again. */
  private cas = new Map<string, Buffer>();

  constructor(private readonly idleMs: number) {
    super({ idleTimeoutMs: idleMs, connectTimeoutMs: UPSTREAM_CONNECT_TIMEOUT_MS, maxHeadBytes: MAX_RESPONSE_HEAD_BYTES });
  }

  /** A kept-alive connection to `e` (LIFO: the least likely to have been closed far away), or with `fresh` (or none idle) a new one. Throws when a CA file cannot be read. */
  acquireFor(e: UpstreamEndpoint, fresh: boolean): UpstreamConnection {
    const key = poolKey(e);
    const idle = fresh ? undefined : this.idleByKey.get(key);
    const kept = idle?.pop();
    if (kept !== undefined) {
      if (idle?.length === 0) this.idleByKey.delete(key);
      return kept;
    }
    const conn = new UpstreamConnection(this.dial(e), key, this, true);
    this.open.add(conn);
    return conn;
  }

  private dial(e: UpstreamEndpoint): net.Socket {
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

  /** The base pool's entry point, for callers that hold an address: plain TCP. */
  override acquire(target: UpstreamTarget, fresh = false): UpstreamConnection {
    return this.acquireFor({ host: target.address, port: target.port, tls: { enabled: false, verify: true, caFile: null } }, fresh);
  }

  override release(conn: UpstreamConnection): void {
    let idle = this.idleByKey.get(conn.key);
    if (idle === undefined) {
      idle = [];
      this.idleByKey.set(conn.key, idle);
    }
    if (idle.length >= this.opts.maxIdlePerTarget) {
      conn.socket.destroy();
      return;
    }
    // Back to the pool's idle limit (an exchange ran under its route's timeout).
    conn.socket.setTimeout(this.idleMs);
    idle.push(conn);
  }

  override forget(conn: UpstreamConnection): void {
    this.open.delete(conn);
    const idle = this.idleByKey.get(conn.key);
    if (idle === undefined) return;
    const i = idle.indexOf(conn);
    if (i >= 0) idle.splice(i, 1);
    if (idle.length === 0) this.idleByKey.delete(conn.key);
  }

  override idleCount(): number {
    let n = 0;
    for (const list of this.idleByKey.values()) n += list.length;
    return n;
  }

  /** After a routes reload: CA files are read again for new connections. */
  renew(): void {
    this.cas = new Map();
  }

  override close(): void {
    for (const conn of this.open) conn.socket.destroy();
    this.open.clear();
    this.idleByKey.clear();
  }
}
