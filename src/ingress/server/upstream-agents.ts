/**
 * Keep-alive connection pools toward upstreams, one per TLS setting (plain,
 * TLS verified against the system CAs, TLS against a route's CA file, TLS
 * unverified). Node keys a pool's connections by host, port and TLS options,
 * so upstreams never share a connection.
 *
 * Idle pooled connections close after `idleMs`, which must stay under
 * Lattice's 60 s idle timeout: a connection Lattice has already closed would
 * otherwise be picked for the next request and fail it.
 */
import { readFileSync } from 'node:fs';
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import type { Route } from '../routes';

export const DEFAULT_UPSTREAM_IDLE_MS = 50_000;

export class UpstreamAgents {
  private readonly plain: HttpAgent;
  private readonly byTls = new Map<string, HttpsAgent>();
  /** Per route object: the lookup a request makes (routes are frozen and replaced whole on reload). */
  private readonly byRoute = new WeakMap<Route, HttpAgent>();

  constructor(private readonly idleMs: number) {
    this.plain = new HttpAgent(this.agentOptions());
  }

  private agentOptions(): { keepAlive: true; timeout: number; scheduling: 'lifo'; maxFreeSockets: number } {
    // lifo: the most recently used connection is the least likely to have been closed by the far end.
    return { keepAlive: true, timeout: this.idleMs, scheduling: 'lifo', maxFreeSockets: 256 };
  }

  /** The pool for a route's upstream; throws when its CA file cannot be read. */
  forRoute(route: Route): HttpAgent {
    const known = this.byRoute.get(route);
    if (known !== undefined) return known;
    const tls = route.tls;
    let agent: HttpAgent = this.plain;
    if (tls.enabled) {
      const key = !tls.verify ? 'unverified' : tls.caFile === null ? 'system' : `ca:${tls.caFile}`;
      let https = this.byTls.get(key);
      if (https === undefined) {
        https = new HttpsAgent({
          ...this.agentOptions(),
          rejectUnauthorized: tls.verify,
          // Read once per pool; a reload of the routes makes new pools (and reads the file again).
          ...(tls.caFile === null ? {} : { ca: readFileSync(tls.caFile) }),
        });
        this.byTls.set(key, https);
      }
      agent = https;
    }
    this.byRoute.set(route, agent);
    return agent;
  }

  /**
   * After a routes reload: new TLS pools from now on (a CA file may have
   * changed). The old pools finish what they carry; their idle connections
   * close after idleMs and are unref'd meanwhile.
   */
  renew(): void {
    this.byTls.clear();
  }

  destroy(): void {
    this.plain.destroy();
    for (const agent of this.byTls.values()) agent.destroy();
  }
}
