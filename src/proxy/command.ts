/**
 * `gatehouse proxy`: the egress forward proxy. Wires the policy source
 * (reloads), the SSRF-checked resolver, the PROXY protocol reader, the
 * server, the access and decision logs, and the health + /metrics port;
 * SIGHUP reloads and reopens logs, SIGTERM/SIGINT drain and stop.
 */
import { networkInterfaces } from 'node:os';
import { Counter, Gauge, Registry } from 'prom-client';
import { listenerHealth, reloadDetails, type HealthCheck, type HealthReport, type ReloadNote } from '../observe/health';
import { startHealthServer, type HealthServer } from '../observe/health-server';
import { createLogger, type Logger } from '../observe/log';
import { runService } from '../cli/service';
import { ProxyLogs } from './logs';
import { evaluateProxyPolicy, openProxyPolicySource, type ProxyPolicySource, type ReloadResult } from './policy';
import { startProxyServer, type ProxyServer } from './server';
import { cachedLookup, resolveAndCheckNow, systemLookup } from './ssrf';
import type { AccessEntry } from './types';
import { parseProxyOptions, PROXY_HELP, type ProxyCliOptions } from './options';

type RequestLabels = Record<'kind' | 'decision' | 'rule' | 'reason', string>;

export const PROXY_LOG_SECTIONS = ['core', 'policy', 'healthcheck'] as const;
export type ProxyLogSection = (typeof PROXY_LOG_SECTIONS)[number];
const STOP_SIGNALS = ['SIGTERM', 'SIGINT'] as const;

export interface ProxyIo {
  stdout: (text: string) => void;
}

export async function runProxyCommand(argv: string[], io: ProxyIo): Promise<number> {
  const opts = parseProxyOptions(argv);
  if ('help' in opts) {
    io.stdout(PROXY_HELP);
    return 0;
  }
  const config = Object.fromEntries(PROXY_LOG_SECTIONS.map((s) => [s, opts.logLevel])) as Record<ProxyLogSection, typeof opts.logLevel>;
  const log = createLogger({ sections: PROXY_LOG_SECTIONS, config, format: opts.logFormat });
  const app = new ProxyApp(opts, log);
  await runService(app, log, { stop: STOP_SIGNALS, hangup: () => void app.hangup('SIGHUP'), stopping: 'draining' });
  return 0;
}

/** Every address of this host's interfaces: the proxy must never connect to itself. */
function ownAddresses(): string[] {
  return Object.values(networkInterfaces())
    .flat()
    .filter((a) => a !== undefined)
    .map((a) => a.address.replace(/%.*$/, ''));
}

export class ProxyApp {
  private source?: ProxyPolicySource;
  private logs?: ProxyLogs;
  private server?: ProxyServer;
  private health?: HealthServer;
  private stopped = false;
  private lastReload: ReloadNote | null = null;
  readonly metrics = new Registry();
  /**
   * Requests per label set, counted as plain numbers and handed to
   * prom-client when /metrics is read: an inc() there hashes and checks
   * its labels on every call (~0.6 us per request). Label sets are few
   * (rules x decisions x reasons).
   */
  private readonly requestCounts = new Map<string, { labels: RequestLabels; count: number }>();
  private readonly reloads: Counter<'result'>;

  constructor(
    private readonly opts: ProxyCliOptions,
    private readonly log: Logger<ProxyLogSection>,
  ) {
    const requestCounts = this.requestCounts;
    new Counter({
      name: 'gatehouse_proxy_requests_total',
      help: 'requests and CONNECT tunnels, by decision, deciding rule and reason',
      labelNames: ['kind', 'decision', 'rule', 'reason'],
      registers: [this.metrics],
      collect() {
        this.reset();
        for (const { labels, count } of requestCounts.values()) this.inc(labels, count);
      },
    });
    this.reloads = new Counter({
      name: 'gatehouse_proxy_policy_reloads_total',
      help: 'policy reloads by result (ok, refused)',
      labelNames: ['result'],
      registers: [this.metrics],
    });
    // prom-client calls collect() with the metric as `this`: the server is read through this closure.
    const stats = () => this.server?.stats();
    const stat = (name: string, help: string, key: 'connections' | 'tunnels' | 'bytesIn' | 'bytesOut' | 'denied' | 'errors'): void => {
      new Counter({
        name: `gatehouse_proxy_${name}_total`,
        help,
        registers: [this.metrics],
        collect() {
          const s = stats();
          this.reset();
          if (s) this.inc(s[key]);
        },
      });
    };
    stat('connections', 'client connections accepted', 'connections');
    stat('tunnels', 'CONNECT tunnels established', 'tunnels');
    stat('client_bytes_received', 'bytes received from clients', 'bytesIn');
    stat('client_bytes_sent', 'bytes sent to clients', 'bytesOut');
    new Gauge({
      name: 'gatehouse_proxy_connections_active',
      help: 'client connections open now',
      registers: [this.metrics],
      collect() {
        this.set(stats()?.active ?? 0);
      },
    });
  }

  /** Where clients connect (the real ports when 0 was asked for). */
  addresses(): { host: string; port: number }[] {
    return this.server?.addresses() ?? [];
  }

  get healthPort(): number | undefined {
    return this.health?.port;
  }

  async start(): Promise<void> {
    const o = this.opts;
    const source = await openProxyPolicySource(o.policy);
    this.source = source;
    this.logs = await ProxyLogs.open({ accessLog: o.accessLog, decisionLog: o.decisionLog });
    // Frozen: the SSRF check compiles a frozen list once, not per request.
    const own = Object.freeze(ownAddresses());
    const lookup = cachedLookup(systemLookup, { ttlMs: o.dnsCacheTtlMs });
    this.server = await startProxyServer({
      listen: o.listen,
      proxyProtocol: o.proxyProtocol,
      decide: (facts) => evaluateProxyPolicy(source.current, facts),
      resolve: (host, allow) => resolveAndCheckNow(host, { lookup, allow, own, timeoutMs: o.resolveTimeoutMs }),
      onAccess: (entry) => this.record(entry),
      maxConnections: o.maxConnections,
      maxConnectionsPerClient: o.maxClientConnections,
      maxHeaderBytes: o.maxHeaderBytes,
      headerTimeoutMs: o.headerTimeoutMs,
      idleTimeoutMs: o.idleTimeoutMs,
      connectTimeoutMs: o.connectTimeoutMs,
      via: o.via,
      xForwardedFor: o.xForwardedFor,
      fronting: { nonTls: o.nonTlsConnect },
      frontingTimeoutMs: o.headerTimeoutMs,
      // A route is repeated at most a second, and never longer than the DNS answer it was checked against is reused.
      keptRouteMs: Math.min(1000, o.dnsCacheTtlMs),
    });
    if (o.healthPort !== 0) {
      this.health = await startHealthServer({
        port: o.healthPort,
        host: o.healthBind,
        format: 'json',
        checks: this.healthChecks(),
        registry: this.metrics,
        log: this.log,
      });
    }
    source.watch((result) => this.reloaded(result, 'file change'));
    this.log.important('core', 'started', {
      listen: this.addresses()
        .map((a) => (a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`))
        .join(','),
      proxy_protocol: o.proxyProtocol,
      health_port: this.health?.port ?? 'off',
      policy: source.current.source,
      rules: source.current.rules.length,
      digest: source.current.digest.slice(0, 12),
    });
  }

  private record(entry: AccessEntry): void {
    this.logs?.record(entry);
    const kind = entry.method === 'CONNECT' ? 'connect' : 'http';
    const rule = entry.rule ?? (entry.decision === 'deny' && entry.reason === 'default' ? ':default' : '');
    const reason = entry.reason ?? '';
    const key = `${kind}\n${entry.decision}\n${rule}\n${reason}`;
    const seen = this.requestCounts.get(key);
    if (seen !== undefined) seen.count++;
    else this.requestCounts.set(key, { labels: { kind, decision: entry.decision, rule, reason }, count: 1 });
  }

  /** SIGHUP: reload the policy (connections in flight are untouched) and reopen the logs (logrotate). */
  async hangup(trigger: string): Promise<void> {
    if (!this.source || this.stopped) return;
    this.reloaded(await this.source.reload(), trigger);
    try {
      await this.logs?.reopen();
    } catch (err) {
      this.log.error('core', 'could not reopen a log; writing on to the old file', { error: (err as Error).message });
    }
  }

  private reloaded(result: ReloadResult<unknown>, trigger: string): void {
    if (this.stopped || !this.source) return;
    if (result.ok) {
      this.server?.policyChanged();
      this.reloads.inc({ result: 'ok' });
      this.lastReload = { at: new Date(), trigger, ok: true };
      this.log.important('policy', 'policy loaded', { trigger, digest: this.source.current.digest.slice(0, 12), rules: this.source.current.rules.length });
    } else {
      this.reloads.inc({ result: 'refused' });
      this.lastReload = { at: new Date(), trigger, ok: false, error: result.error.message };
      this.log.error('policy', 'policy refused; the running policy stays', { trigger, error: result.error.message });
    }
  }

  healthChecks(): HealthCheck[] {
    return [
      { name: 'listener', check: () => listenerHealth(this.server?.stats(), this.stopped, this.addresses()) },
      { name: 'policy', check: () => this.policyHealth() },
    ];
  }

  private policyHealth(): HealthReport {
    const p = this.source?.current;
    if (!p) return { healthy: false, reason: 'no policy loaded' };
    return {
      healthy: true,
      details: {
        file: p.source,
        digest: p.digest,
        rules: p.rules.length,
        last_reload: reloadDetails(this.lastReload),
      },
    };
  }

  /** Stops accepting (health says 503 at once, so the NLB stops sending), drains, closes. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await this.server?.close({ drainMs: this.opts.drainTimeoutMs });
    await this.health?.close();
    await this.logs?.close();
    this.source?.close();
  }
}
