/**
 * `gatehouse ingress` in Prometheus terms: requests by route and status,
 * upstream latency (to the response head) by route, signing failures,
 * credentials (loaded, seconds to expiry), reloads, connections. Per-request
 * series are looked up once per route and status and kept, so a request
 * costs two increments, not a label hash each.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { IngressAccessEntry, IngressServerStats } from './server';
import type { CredentialsStatus } from './sigv4/lattice-credentials';

const NO_ROUTE = '-';
/** Seconds: from a cached-connection millisecond to a slow Lattice target. */
const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export interface IngressMetricSources {
  server: () => IngressServerStats | undefined;
  /** Null when no route signs (no credentials are loaded). */
  credentials: () => CredentialsStatus | null;
}

interface RouteSeries {
  byStatus: Map<number, Counter.Internal>;
  latency: Histogram.Internal<'route'>;
}

export class IngressMetrics {
  readonly registry = new Registry();
  private readonly requests: Counter<'route' | 'status'>;
  private readonly latency: Histogram<'route'>;
  private readonly signingFailures: Counter;
  private readonly reloads: Counter<'what' | 'result'>;
  private readonly series = new Map<string, RouteSeries>();

  constructor(sources: IngressMetricSources) {
    const registers = [this.registry];
    this.requests = new Counter({ name: 'gatehouse_ingress_requests_total', help: 'finished requests by route and status sent (0: none)', labelNames: ['route', 'status'], registers });
    this.latency = new Histogram({
      name: 'gatehouse_ingress_upstream_seconds',
      help: 'time from sending a request upstream to its response head, by route',
      labelNames: ['route'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.signingFailures = new Counter({ name: 'gatehouse_ingress_signing_failures_total', help: 'requests that could not be signed (no credentials)', registers });
    this.reloads = new Counter({ name: 'gatehouse_ingress_reloads_total', help: 'reloads of the routes and of the TLS certificate, by result (ok, refused)', labelNames: ['what', 'result'], registers });
    new Gauge({
      name: 'gatehouse_ingress_credentials_loaded',
      help: '1 while AWS credentials for signing are held and unexpired',
      registers,
      collect() {
        const s = sources.credentials();
        this.set(s === null || s.loaded ? 1 : 0);
      },
    });
    new Gauge({
      name: 'gatehouse_ingress_credentials_expiry_seconds',
      help: 'seconds until the signing credentials expire (absent for long-term keys)',
      registers,
      collect() {
        const expiration = sources.credentials()?.expiration;
        this.reset();
        if (expiration !== undefined) this.set((expiration.getTime() - Date.now()) / 1000);
      },
    });
    new Gauge({
      name: 'gatehouse_ingress_connections_active',
      help: 'client connections open now',
      registers,
      collect() {
        this.set(sources.server()?.active ?? 0);
      },
    });
    new Counter({
      name: 'gatehouse_ingress_connections_total',
      help: 'client connections accepted',
      registers,
      collect() {
        this.reset();
        this.inc(sources.server()?.connections ?? 0);
      },
    });
    new Counter({
      name: 'gatehouse_ingress_requests_repeated_total',
      help: 'requests the native relay routed (and signed) on the route of the request decided before them on their connection, without TypeScript',
      registers,
      collect() {
        this.reset();
        this.inc(sources.server()?.repeated ?? 0);
      },
    });
    new Counter({
      name: 'gatehouse_ingress_connections_handed_over_total',
      help: 'connections the native relay handed to node:http (TLS upstream, WebSocket upgrade, Expect)',
      registers,
      collect() {
        this.reset();
        this.inc(sources.server()?.handedOver ?? 0);
      },
    });
  }

  private routeSeries(route: string): RouteSeries {
    let s = this.series.get(route);
    if (s === undefined) {
      s = { byStatus: new Map(), latency: this.latency.labels(route) };
      this.series.set(route, s);
    }
    return s;
  }

  /** An IngressAccessSink. */
  readonly record = (e: IngressAccessEntry): void => {
    const s = this.routeSeries(e.route ?? NO_ROUTE);
    let counter = s.byStatus.get(e.status);
    if (counter === undefined) {
      counter = this.requests.labels(e.route ?? NO_ROUTE, String(e.status));
      s.byStatus.set(e.status, counter);
    }
    counter.inc();
    if (e.upstreamMs !== null) s.latency.observe(e.upstreamMs / 1000);
    if (e.reason !== null && e.reason.startsWith('signing:')) this.signingFailures.inc();
  };

  reloaded(what: 'routes' | 'tls', ok: boolean): void {
    this.reloads.inc({ what, result: ok ? 'ok' : 'refused' });
  }
}
