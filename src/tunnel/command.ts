/**
 * `gatehouse tunnel`: the GWLB target. Wires the native core (packets), the
 * endpoint registry (TUNs, hooks, idle timers), health and /metrics, and
 * logging; shuts down cleanly on SIGTERM / SIGINT (DESTROY hooks run,
 * interfaces removed).
 */
import { Counter, Registry } from 'prom-client';
import { eniIdToEndpointId } from '../geneve';
import { GENEVE_REASONS } from '../geneve/reasons';
import { monotonicMs, startTunnel, type Tunnel } from '../native/tunnel';
import type { HealthCheck, HealthReport } from '../observe/health';
import { startHealthServer, type HealthServer } from '../observe/health-server';
import { createLogger, TUNNEL_LOG_SECTIONS, type Logger, type TunnelLogSection } from '../observe/log';
import { CounterBlockSet, registerCounterBlock } from '../observe/metrics';
import { ReceiveDropWindow, workersHealth } from '../observe/engine-health';
import { EndpointRegistry } from './endpoints';
import { parseTunnelOptions, TUNNEL_HELP, type TunnelCliOptions } from './options';
import { runService } from '../cli/service';
import { readTunTxDropped } from './tun-drops';

const PENDING_QUEUE = 1024;
// All pending endpoints together: a slow CREATE hook for many endpoints at
// once must not hold hundreds of MB of packets (1024 x 8500 B each).
const PENDING_BYTES = 32 * 1024 * 1024;
const SHUTDOWN_SIGNALS = ['SIGTERM', 'SIGINT', 'SIGHUP'] as const;
const RETRY_AFTER_MS = 5_000;

export interface TunnelIo {
  stdout: (line: string) => void;
}

export async function runTunnelCommand(argv: string[], io: TunnelIo): Promise<number> {
  const opts = parseTunnelOptions(argv);
  if ('help' in opts) {
    io.stdout(TUNNEL_HELP);
    return 0;
  }
  const log = createLogger({ sections: TUNNEL_LOG_SECTIONS, config: opts.logLevels, format: opts.logFormat });
  const app = new TunnelApp(opts, log);
  // Endpoints (and their CREATE hooks) can appear while starting; a second
  // signal during shutdown is logged, so the remaining DESTROY hooks run.
  // gwlbtun stops on SIGHUP too.
  await runService(app, log, { stop: SHUTDOWN_SIGNALS });
  return 0;
}

/** The running tunnel: everything that has to be started and stopped together. */
export class TunnelApp {
  private tunnel?: Tunnel;
  private registry?: EndpointRegistry;
  private server?: HealthServer;
  private timer?: NodeJS.Timeout;
  private readonly metrics = new Registry();
  private endpointMetrics?: CounterBlockSet<'endpoint'>;
  /** Endpoint ids whose metrics are exported (removed when the endpoint goes). */
  private exported = new Set<string>();
  private readonly drops = new ReceiveDropWindow();

  constructor(
    private readonly opts: TunnelCliOptions,
    private readonly log: Logger<TunnelLogSection>,
  ) {}

  async start(): Promise<void> {
    const o = this.opts;
    const tunnel = startTunnel({
      bind: o.bind,
      port: 6081,
      udpThreads: o.udpThreads,
      udpAffinity: o.udpAffinity,
      tunThreads: o.tunThreads,
      tunAffinity: o.tunAffinity,
      rcvbuf: o.rcvbuf,
      sndbuf: o.sndbuf,
      batch: 64,
      flowIdleMs: o.flowIdleTimeoutS * 1000,
      maxEndpoints: o.maxEndpoints,
      pendingQueue: PENDING_QUEUE,
      pendingBytes: PENDING_BYTES,
      maxFlows: o.maxFlows,
      allowedSources: o.gwlbCidrs,
      hexdump: o.hexDump,
      onEvents: (events) => {
        for (const e of events) this.registry?.onEndpointSeen(e);
      },
    });
    this.tunnel = tunnel;
    this.registry = new EndpointRegistry(
      tunnel,
      {
        createScript: o.createScript,
        destroyScript: o.destroyScript,
        hookTimeoutMs: o.hookTimeoutS * 1000,
        idleTimeoutMs: o.endpointIdleTimeoutS * 1000,
        tunQueues: o.tunThreads,
        createPerMinute: o.endpointRatePerMinute,
        retryAfterMs: RETRY_AFTER_MS,
      },
      this.log,
      monotonicMs,
    );
    registerCounterBlock(this.metrics, {
      prefix: 'gatehouse_tunnel_',
      help: 'gatehouse tunnel packet core',
      block: tunnel.counters,
      gauges: ['flows_active'],
    });
    this.endpointMetrics = new CounterBlockSet(this.metrics, {
      prefix: 'gatehouse_tunnel_endpoint_',
      help: 'gatehouse tunnel, per GWLB endpoint',
      labelNames: ['endpoint'],
    });
    const registry = this.registry;
    new Counter({
      name: 'gatehouse_tunnel_endpoint_tun_ring_dropped_total',
      help: "packets the kernel dropped because an endpoint's TUN ring was full (the interface's tx_dropped)",
      labelNames: ['endpoint', 'interface'],
      registers: [this.metrics],
      collect() {
        this.reset();
        for (const ep of registry.list()) {
          for (const name of [ep.gwi, ep.gwo]) this.inc({ endpoint: ep.endpointId, interface: name }, readTunTxDropped(name));
        }
      },
    });
    if (o.healthPort !== undefined) {
      this.server = await startHealthServer({
        port: o.healthPort,
        format: !o.healthDetails ? 'status' : o.healthJson ? 'json' : 'text',
        checks: this.healthChecks(),
        registry: this.metrics,
        log: this.log,
      });
    }
    this.timer = setInterval(() => void this.tick(), 1000);
    this.log.important('core', 'started', {
      bind: `${o.bind}:6081`,
      udp_threads: o.udpThreads,
      tun_threads: o.tunThreads,
      health_port: this.server?.port ?? 'off',
      create_hook: o.createScript ?? 'none',
      destroy_hook: o.destroyScript ?? 'none',
      endpoint_idle_s: o.endpointIdleTimeoutS,
      flow_idle_s: o.flowIdleTimeoutS,
      max_flows: o.maxFlows,
    });
    if (o.gwlbCidrs.length === 0) {
      // The limits bound what a stranger can make us create, but a stranger
      // who keeps re-sending made-up endpoint ids keeps their slots.
      this.log.warning('core', 'GENEVE is accepted from any address: set --gwlb-cidr to the GWLB subnet so only GWLB can create endpoints', {
        max_endpoints: o.maxEndpoints,
      });
    }
  }

  private async tick(): Promise<void> {
    if (!this.tunnel || !this.registry) return;
    this.drops.sample(this.tunnel.readCounters().rx_overflow);
    const live = new Set<string>();
    for (const ep of this.registry.list()) {
      live.add(ep.endpointId);
      this.endpointMetrics?.add({ endpoint: ep.endpointId }, ep.counters);
    }
    for (const id of this.exported) if (!live.has(id)) this.endpointMetrics?.remove({ endpoint: id });
    this.exported = live;
    try {
      await this.registry.sweepIdle();
    } catch (err) {
      this.log.error('endpoint', 'idle sweep failed', { error: (err as Error).message });
    }
  }
  /** Health is the composition of: the workers, the receive path, the endpoints. */
  healthChecks(): HealthCheck[] {
    return [
      { name: 'workers', check: () => this.workersHealth() },
      { name: 'receive', check: () => this.receiveHealth() },
      { name: 'endpoints', check: () => this.endpointsHealth() },
    ];
  }

  private workersHealth(): HealthReport {
    return workersHealth(this.tunnel?.workerStatus() ?? [], monotonicMs());
  }

  private receiveHealth(): HealthReport {
    const c = this.tunnel?.readCounters();
    if (!c) return { healthy: false, reason: 'not started' };
    const recentDrops = this.drops.recent(c.rx_overflow);
    const malformed: Record<string, number> = {};
    for (const r of GENEVE_REASONS) if (c[`malformed_${r}` as keyof typeof c] > 0) malformed[r] = c[`malformed_${r}` as keyof typeof c];
    const drops: Record<string, number> = {};
    for (const [k, v] of Object.entries(c)) if ((k.startsWith('drop_') || k === 'queue_dropped' || k === 'tun_write_errors') && v > 0) drops[k] = v;
    let ringDropped = 0;
    for (const ep of this.registry?.list() ?? []) ringDropped += readTunTxDropped(ep.gwi) + readTunTxDropped(ep.gwo);
    if (ringDropped > 0) drops.tun_ring_dropped = ringDropped;
    return {
      healthy: ReceiveDropWindow.reason(recentDrops) === undefined,
      reason: ReceiveDropWindow.reason(recentDrops),
      details: {
        rx_packets: c.rx_packets,
        rx_bytes: c.rx_bytes,
        tx_packets: c.tx_packets,
        tx_bytes: c.tx_bytes,
        tx_errors: c.tx_errors,
        socket_drops_total: c.rx_overflow,
        socket_drops_recent: recentDrops,
        flows_active: c.flows_active,
        flows_created: c.flows_created,
        flows_expired: c.flows_expired,
        endpoints_seen: c.endpoints_seen,
        dropped_malformed: c.dropped_malformed,
        malformed_by_reason: malformed,
        drops_by_reason: drops,
      },
    };
  }

  private endpointsHealth(): HealthReport {
    const reg = this.registry;
    if (!reg) return { healthy: false, reason: 'not started' };
    const h = reg.health();
    const infos = new Map((this.tunnel?.endpoints() ?? []).map((e) => [e.eni, e]));
    return {
      healthy: h.healthy,
      reason: h.reasons.join('; ') || undefined,
      details: { endpoints: h.endpoints, hook_failures: h.hookFailures, tun_failures: h.tunFailures, rate_limited: h.rateLimited },
      children: [
        ...reg.list().map((ep) => {
          const values: Record<string, number> = {};
          ep.counters.names.forEach((n, i) => (values[n] = Number(ep.counters.values[i])));
          return {
            name: ep.endpointId,
            healthy: true,
            details: {
              gwi: ep.gwi,
              gwo: ep.gwo,
              since: ep.since.toISOString(),
              flows: infos.get(ep.eni)?.flows ?? 0,
              ...values,
              gwi_ring_dropped: readTunTxDropped(ep.gwi),
              gwo_ring_dropped: readTunTxDropped(ep.gwo),
            },
          };
        }),
        ...reg.failures().map((f) => ({
          name: eniIdToEndpointId(f.eni),
          healthy: f.stage === 'rate-limit',
          reason: `${f.stage}: ${f.reason}`,
          details: { at: f.at.toISOString() },
        })),
      ],
    };
  }

  /** DESTROY hooks for every endpoint, then the core, then the health server. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.registry?.shutdown();
    this.tunnel?.stop();
    await this.server?.close();
    this.endpointMetrics?.close();
    this.log.important('core', 'stopped');
  }
}
