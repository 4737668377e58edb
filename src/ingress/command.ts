/**
 * `gatehouse ingress`: the routes source (reloadable), the credential chain
 * and the signer, the server, the access log, and the health + /metrics
 * port, run by the shared service runner: SIGHUP reloads the routes and the
 * certificate and reopens the access log; SIGTERM/SIGINT drain and stop.
 */
import { readFile } from 'node:fs/promises';
import { runService } from '../cli/service';
import { expected } from '../validate';
import { listenerHealth, reloadDetails, type HealthCheck, type HealthReport, type ReloadNote } from '../observe/health';
import { startHealthServer, type HealthServer } from '../observe/health-server';
import { createLogger, type Logger } from '../observe/log';
import { IngressAccessLog } from './logs';
import { IngressMetrics } from './metrics';
import { INGRESS_HELP, parseIngressOptions, type IngressCliOptions } from './options';
import { openRoutesSource, type RoutesSource, type RouteTable } from './routes';
import { startIngressServer, type IngressAccessEntry, type IngressServer, type TlsCredentials } from './server';
import { latticeCredentials, type CredentialsStatus, type LatticeCredentialProvider } from './sigv4/lattice-credentials';
import { createLatticeSigner, resolveRegion, type LatticeSigner } from './sigv4/lattice-signer';

export const INGRESS_LOG_SECTIONS = ['core', 'routes', 'credentials', 'healthcheck'] as const;
export type IngressLogSection = (typeof INGRESS_LOG_SECTIONS)[number];
const STOP_SIGNALS = ['SIGTERM', 'SIGINT'] as const;

/** Credentials are asked for this often until they load, then this often (the provider refreshes them before expiry). */
const CREDENTIALS_RETRY_MS = 1_000;
const CREDENTIALS_CHECK_MS = 10_000;

export interface IngressIo {
  stdout: (text: string) => void;
}

export async function runIngressCommand(argv: string[], io: IngressIo): Promise<number> {
  const opts = parseIngressOptions(argv);
  if ('help' in opts) {
    io.stdout(INGRESS_HELP);
    return 0;
  }
  const config = Object.fromEntries(INGRESS_LOG_SECTIONS.map((s) => [s, opts.logLevel])) as Record<IngressLogSection, typeof opts.logLevel>;
  const log = createLogger({ sections: INGRESS_LOG_SECTIONS, config, format: opts.logFormat });
  const app = new IngressApp(opts, log);
  await runService(app, log, { stop: STOP_SIGNALS, hangup: () => void app.hangup('SIGHUP'), stopping: 'draining' });
  return 0;
}

function signsAny(table: RouteTable): boolean {
  return table.entries.some((e) => e.routes.some((r) => r.sign));
}

function routeCount(table: RouteTable): number {
  return table.entries.reduce((n, e) => n + e.routes.length, 0);
}

async function readTlsFiles(files: { cert: string; key: string }): Promise<TlsCredentials> {
  const [cert, key] = await Promise.all([readFile(files.cert), readFile(files.key)]);
  return { cert, key };
}

export class IngressApp {
  private source?: RoutesSource;
  private credentials?: LatticeCredentialProvider;
  private signer: LatticeSigner | null = null;
  private server?: IngressServer;
  private health?: HealthServer;
  private accessLog?: IngressAccessLog;
  private credentialTimer?: NodeJS.Timeout;
  private credentialsWereLoaded = false;
  private stopped = false;
  private lastReload: ReloadNote | null = null;
  readonly metrics: IngressMetrics;

  constructor(
    private readonly opts: IngressCliOptions,
    private readonly log: Logger<IngressLogSection>,
  ) {
    this.metrics = new IngressMetrics({ server: () => this.server?.stats(), credentials: () => this.credentialsStatus() });
  }

  addresses(): { host: string; port: number }[] {
    return this.server?.addresses() ?? [];
  }

  get healthPort(): number | undefined {
    return this.health?.port;
  }

  private credentialsStatus(): CredentialsStatus | null {
    const table = this.source?.current;
    if (this.credentials === undefined || table === undefined || !signsAny(table)) return null;
    return this.credentials.status();
  }

  async start(): Promise<void> {
    const o = this.opts;
    const source = await openRoutesSource(o.routes);
    this.source = source;
    // A region is needed only to sign; without one, signed routes answer 503 (and /healthz says why).
    const region = o.region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION;
    if (signsAny(source.current)) {
      if (region === undefined || region === '') expected('an AWS region (--region, AWS_REGION or AWS_DEFAULT_REGION)', `the signed routes of ${o.routes}`, 'none');
      resolveRegion(region);
    }
    const credentials = latticeCredentials();
    this.credentials = credentials;
    if (region !== undefined && region !== '') this.signer = createLatticeSigner({ region, credentials });
    const tls = o.tls === null ? null : await readTlsFiles(o.tls);
    if (o.accessLog !== null) this.accessLog = await IngressAccessLog.open(o.accessLog, o.accessLogFormat);
    this.server = await startIngressServer({
      listen: o.listen,
      tls,
      proxyProtocol: o.proxyProtocol,
      routes: () => source.current,
      signer: this.signer,
      onAccess: (entry) => this.record(entry),
      upstreamIdleMs: o.upstreamIdleMs,
      headerTimeoutMs: o.headerTimeoutMs,
      idleTimeoutMs: o.idleTimeoutMs,
      engine: o.engine,
    });
    if (o.healthPort !== 0) {
      this.health = await startHealthServer({
        port: o.healthPort,
        host: o.healthBind,
        format: 'json',
        checks: this.healthChecks(),
        registry: this.metrics.registry,
        log: this.log,
      });
    }
    this.checkCredentials();
    this.log.important('core', 'started', {
      listen: this.addresses()
        .map((a) => (a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`))
        .join(','),
      tls: tls !== null,
      proxy_protocol: o.proxyProtocol,
      health_port: this.health?.port ?? 'off',
      routes: source.current.file,
      hosts: source.current.entries.length,
      region: this.signer?.region ?? 'none',
    });
  }

  private record(entry: IngressAccessEntry): void {
    this.accessLog?.record(entry);
    this.metrics.record(entry);
  }

  /**
   * Keeps credentials warm without traffic: asks the provider (memoised; it
   * refreshes before expiry) every second until they load, then every 10 s,
   * and logs each change between held and not held.
   */
  private checkCredentials(): void {
    const credentials = this.credentials;
    if (this.stopped || credentials === undefined) return;
    const table = this.source?.current;
    const next = (): void => {
      if (this.stopped) return;
      const loaded = credentials.status().loaded;
      if (loaded !== this.credentialsWereLoaded) {
        const s = credentials.status();
        if (loaded) this.log.important('credentials', 'AWS credentials loaded', { source: s.source, expiration: s.expiration?.toISOString() ?? 'none' });
        else this.log.error('credentials', 'AWS credentials not available; signed routes answer 503', { error: s.lastError ?? 'expired' });
        this.credentialsWereLoaded = loaded;
      }
      this.credentialTimer = setTimeout(() => this.checkCredentials(), loaded ? CREDENTIALS_CHECK_MS : CREDENTIALS_RETRY_MS);
      this.credentialTimer.unref();
    };
    if (table === undefined || !signsAny(table)) {
      next();
      return;
    }
    credentials().then(next, next);
  }

  /** SIGHUP: reload the routes and the certificate (requests in flight are untouched), reopen the access log. */
  async hangup(trigger: string): Promise<void> {
    if (!this.source || this.stopped) return;
    const result = await this.source.reload();
    if (result.ok) {
      this.server?.routesChanged();
      this.metrics.reloaded('routes', true);
      this.lastReload = { at: new Date(), trigger, ok: true };
      this.log.important('routes', 'routes loaded', { trigger, hosts: result.policy.entries.length, routes: routeCount(result.policy) });
    } else {
      this.metrics.reloaded('routes', false);
      this.lastReload = { at: new Date(), trigger, ok: false, error: result.error.message };
      this.log.error('routes', 'routes refused; the running table stays', { trigger, error: result.error.message });
    }
    if (this.opts.tls !== null) {
      try {
        this.server?.setTlsCredentials(await readTlsFiles(this.opts.tls));
        this.metrics.reloaded('tls', true);
        this.log.important('core', 'TLS certificate loaded', { trigger, cert: this.opts.tls.cert });
      } catch (err) {
        this.metrics.reloaded('tls', false);
        this.log.error('core', 'TLS certificate refused; the running one stays', { trigger, error: (err as Error).message });
      }
    }
    try {
      await this.accessLog?.reopen();
    } catch (err) {
      this.log.error('core', 'could not reopen the access log; writing on to the old file', { error: (err as Error).message });
    }
  }

  healthChecks(): HealthCheck[] {
    return [
      { name: 'listener', check: () => listenerHealth(this.server?.stats(), this.stopped, this.addresses()) },
      { name: 'routes', check: () => this.routesHealth() },
      { name: 'credentials', check: () => this.credentialsHealth() },
    ];
  }

  private routesHealth(): HealthReport {
    const table = this.source?.current;
    if (!table) return { healthy: false, reason: 'no routes loaded' };
    return {
      healthy: true,
      details: {
        file: table.file,
        hosts: table.entries.length,
        routes: routeCount(table),
        last_reload: reloadDetails(this.lastReload),
      },
    };
  }

  private credentialsHealth(): HealthReport {
    const status = this.credentialsStatus();
    if (status === null) return { healthy: true, reason: 'no route signs: no credentials needed' };
    if (this.signer === null) return { healthy: false, reason: 'routes sign but no AWS region is configured' };
    const details = {
      source: status.source ?? null,
      expiration: status.expiration?.toISOString() ?? null,
      last_refresh: status.lastRefresh?.toISOString() ?? null,
      last_error: status.lastError ?? null,
      region: this.signer.region,
    };
    if (!status.loaded) return { healthy: false, reason: `AWS credentials not loaded: ${status.lastError ?? 'still loading'}`, details };
    return { healthy: true, details };
  }

  /** Stops accepting (health says 503 at once, so the load balancer stops sending), drains, closes. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearTimeout(this.credentialTimer);
    await this.server?.close({ drainMs: this.opts.drainTimeoutMs });
    await this.health?.close();
    await this.accessLog?.close();
    this.source?.close();
  }
}
