/**
 * `gatehouse inspect`: the GWLB target with the policy engine in-process.
 * Wires the native engine (packets, per-flow verdicts), the policy source
 * (file, reloads), the FlowJudge (decisions), the EVE log, verify_dns's name
 * cache and verifier, health and /metrics, and signals:
 *   SIGHUP           reload the policy and reopen the EVE file (logrotate);
 *   SIGTERM, SIGINT  stop (flows still open are logged as EVE flow events).
 * A policy file change reloads too; a file that does not load is refused
 * and the running policy stays.
 */
import { Registry } from 'prom-client';
import { eniIdToEndpointId } from '../geneve';
import { GENEVE_REASONS } from '../geneve/reasons';
import type { InspectEvent } from '../native/binding';
import { startInspect, type Inspect } from '../native/inspect';
import { monotonicMs } from '../native/tunnel';
import { composeHealth, type HealthCheck, type HealthReport } from '../observe/health';
import { startHealthServer, type HealthServer } from '../observe/health-server';
import { createLogger, type Logger } from '../observe/log';
import type { CounterBlockSet } from '../observe/metrics';
import { ReceiveDropWindow, workersHealth } from '../observe/engine-health';
import { runService } from '../cli/service';
import { EveWriter } from './eve';
import { FlowJudge } from './judge';
import { NameAddressCache, NameVerifier } from './names';
import { registerInspectMetrics } from './metrics';
import { INSPECT_HELP, INSPECT_LOG_SECTIONS, parseInspectOptions, type InspectCliOptions, type InspectLogSection } from './options';
import { PolicySource, type Policy, type ReloadResult } from './policy';

/** The engine settings inspect runs with (src/native/binding.ts InspectOptions says what each does). */
export const INSPECT_ENGINE = {
  batch: 64,
  heldPerFlow: 32,
  heldBytes: 32 * 1024 * 1024,
  payloadUpcalls: 8,
  tapPackets: 8,
} as const;

/** How often the name cache drops expired records (ticks of one second). */
const CACHE_PRUNE_TICKS = 60;
const STOP_SIGNALS = ['SIGTERM', 'SIGINT'] as const;

export interface InspectIo {
  stdout: (line: string) => void;
}

export async function runInspectCommand(argv: string[], io: InspectIo): Promise<number> {
  const opts = parseInspectOptions(argv);
  if ('help' in opts) {
    io.stdout(INSPECT_HELP);
    return 0;
  }
  const log = createLogger({ sections: INSPECT_LOG_SECTIONS, config: opts.logLevels, format: opts.logFormat });
  const app = new InspectApp(opts, log);
  await runService(app, log, { stop: STOP_SIGNALS, hangup: () => void app.hangup() });
  return 0;
}

interface LastReload {
  at: Date;
  trigger: string;
  ok: boolean;
  error?: string;
}

/** The running inspect appliance: everything started and stopped together. */
export class InspectApp {
  private source?: PolicySource;
  private engine?: Inspect;
  private judge?: FlowJudge;
  private eve?: EveWriter;
  private server?: HealthServer;
  private timer?: NodeJS.Timeout;
  private counterBlock?: CounterBlockSet;
  private stopped = false;
  private ticks = 0;
  private lastReload?: LastReload;
  private readonly reloadCounts = { ok: 0, refused: 0 };
  private readonly cache = new NameAddressCache();
  private readonly verifier: NameVerifier;
  private readonly metrics = new Registry();
  private readonly drops = new ReceiveDropWindow();

  constructor(
    private readonly opts: InspectCliOptions,
    private readonly log: Logger<InspectLogSection>,
  ) {
    this.verifier = new NameVerifier(this.cache, { timeoutMs: opts.verifyTimeoutMs });
  }

  get healthPort(): number | undefined {
    return this.server?.port;
  }

  get policy(): Policy | undefined {
    return this.judge?.policy;
  }

  /** Loads the policy (ERR_POLICY: file:line:col: reason), opens the EVE log, starts the engine and the health server. */
  async start(): Promise<void> {
    const o = this.opts;
    const source = await PolicySource.open(o.policyFile);
    this.source = source;
    this.lastReload = { at: new Date(), trigger: 'start', ok: true };
    if (o.eve !== undefined) this.eve = await EveWriter.open(o.eve, o.eveWrap === undefined ? {} : { wrap: o.eveWrap });
    // The engine calls back only on later event-loop turns, but the judge
    // reaches it through this indirection so nothing reaches a stopped engine.
    const port = {
      setVerdicts: (v: Parameters<Inspect['setVerdicts']>[0]) => (this.stopped || !this.engine ? 0 : this.engine.setVerdicts(v)),
      inject: (flow: bigint, handle: Uint8Array, packets: readonly Uint8Array[]) =>
        this.stopped || !this.engine ? 0 : this.engine.inject(flow, handle, packets),
    };
    this.judge = new FlowJudge({
      policy: source.current,
      port,
      eve: this.eve,
      names: { cache: this.cache, verifier: this.verifier },
      log: this.log,
      payloadUpcalls: INSPECT_ENGINE.payloadUpcalls,
      tapPackets: INSPECT_ENGINE.tapPackets,
    });
    this.engine = startInspect({
      bind: o.bind,
      port: 6081,
      udpThreads: o.udpThreads,
      rcvbuf: o.rcvbuf,
      sndbuf: o.sndbuf,
      ...INSPECT_ENGINE,
      flowIdleMs: o.flowIdleTimeoutS * 1000,
      maxEndpoints: o.maxEndpoints,
      maxFlows: o.maxFlows,
      allowedSources: o.gwlbCidrs,
      onEvents: (events) => this.onEvents(events),
    });
    this.counterBlock = registerInspectMetrics(this.metrics, { engine: this.engine, judge: this.judge, eve: this.eve, reloads: this.reloadCounts });
    if (o.healthPort !== undefined) {
      this.server = await startHealthServer({
        port: o.healthPort,
        format: !o.healthDetails ? 'status' : o.healthJson ? 'json' : 'text',
        checks: this.healthChecks(),
        registry: this.metrics,
        log: this.log,
      });
    }
    source.watch((result) => this.reloaded(result, 'file change'));
    this.timer = setInterval(() => this.tick(), 1000);
    const policy = source.current;
    this.log.important('core', 'started', {
      bind: `${o.bind}:6081`,
      udp_threads: o.udpThreads,
      health_port: this.server?.port ?? 'off',
      policy: o.policyFile,
      digest: policy.digest.slice(0, 12),
      rules: policy.rules.length,
      eve: o.eve ?? 'off',
      flow_idle_s: o.flowIdleTimeoutS,
      endpoint_idle_s: o.endpointIdleTimeoutS,
    });
  }

  private onEvents(events: InspectEvent[]): void {
    for (const e of events) {
      if (e.type === 'endpoint') this.log.info('endpoint', 'new endpoint', { endpoint: eniIdToEndpointId(e.eni), attachment: e.attachment.toString(16), source: e.source });
    }
    this.judge?.handle(events);
  }

  /** SIGHUP: the policy is read again and the EVE file reopened (logrotate's postrotate). */
  async hangup(): Promise<void> {
    await Promise.all([
      this.reload('SIGHUP'),
      this.eve?.reopen().catch((err: Error) => this.log.error('eve', 'could not reopen the EVE log; still writing to the old file', { error: err.message })),
    ]);
  }

  /** Reads the policy file again; a bad file is refused and the running policy stays. */
  async reload(trigger: string): Promise<ReloadResult | undefined> {
    if (!this.source || this.stopped) return undefined;
    const result = await this.source.reload();
    this.reloaded(result, trigger);
    return result;
  }

  private reloaded(result: ReloadResult, trigger: string): void {
    if (this.stopped || !this.judge) return;
    const running = this.judge.policy;
    if (result.ok) {
      this.reloadCounts.ok++;
      this.lastReload = { at: new Date(), trigger, ok: true };
      this.judge.setPolicy(result.policy);
      const changed = result.policy.digest !== running.digest;
      this.log.log(changed ? 'important' : 'info', 'policy', changed ? 'policy loaded' : 'policy reloaded, unchanged', {
        trigger,
        file: result.policy.source,
        digest: result.policy.digest.slice(0, 12),
        rules: result.policy.rules.length,
      });
    } else {
      this.reloadCounts.refused++;
      this.lastReload = { at: new Date(), trigger, ok: false, error: result.error.message };
      this.log.error('policy', 'policy refused; the running policy stays', { trigger, error: result.error.message, running: running.digest.slice(0, 12) });
    }
  }

  private tick(): void {
    const engine = this.engine;
    if (!engine || this.stopped) return;
    this.drops.sample(engine.readCounters().rx_overflow);
    this.judge?.sweep();
    if (++this.ticks % CACHE_PRUNE_TICKS === 0) this.cache.prune(Date.now());
    const idleMs = this.opts.endpointIdleTimeoutS * 1000;
    if (idleMs === 0) return;
    const now = monotonicMs();
    for (const ep of engine.endpoints()) {
      if (now - ep.lastSeenMs <= idleMs) continue;
      this.log.info('endpoint', 'endpoint idle: forgotten with its flows', { endpoint: eniIdToEndpointId(ep.eni), idle_s: Math.floor((now - ep.lastSeenMs) / 1000), flows: ep.flows });
      engine.forgetEndpoint(ep.eni);
    }
  }

  /** Health: the workers, the receive path, the endpoints, the policy. */
  healthChecks(): HealthCheck[] {
    return [
      { name: 'workers', check: () => this.workersHealth() },
      { name: 'receive', check: () => this.receiveHealth() },
      { name: 'endpoints', check: () => this.endpointsHealth() },
      { name: 'policy', check: () => this.policyHealth() },
    ];
  }

  health(): ReturnType<typeof composeHealth> {
    return composeHealth(this.healthChecks());
  }

  private workersHealth(): HealthReport {
    return workersHealth(this.engine?.workerStatus() ?? [], monotonicMs());
  }

  private receiveHealth(): HealthReport {
    const c = this.engine?.readCounters();
    if (!c) return { healthy: false, reason: 'not started' };
    const recentDrops = this.drops.recent(c.rx_overflow);
    const malformed: Record<string, number> = {};
    for (const r of GENEVE_REASONS) if (c[`malformed_${r}`] > 0) malformed[r] = c[`malformed_${r}`];
    const drops: Record<string, number> = {};
    for (const [k, v] of Object.entries(c)) if ((k.startsWith('drop_') || k === 'held_dropped' || k === 'upcalls_dropped') && v > 0) drops[k] = v;
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
        flows_ended: c.flows_ended,
        flows_inspecting: this.judge?.stats().inspecting ?? 0,
        upcalls: c.upcalls,
        held: c.held,
        endpoints_seen: c.endpoints_seen,
        dropped_malformed: c.dropped_malformed,
        malformed_by_reason: malformed,
        drops_by_reason: drops,
      },
    };
  }

  private endpointsHealth(): HealthReport {
    const engine = this.engine;
    if (!engine) return { healthy: false, reason: 'not started' };
    const now = monotonicMs();
    const endpoints = engine.endpoints();
    return {
      healthy: true,
      details: { endpoints: endpoints.length, max_endpoints: this.opts.maxEndpoints, idle_timeout_s: this.opts.endpointIdleTimeoutS },
      children: endpoints.map((ep) => ({
        name: eniIdToEndpointId(ep.eni),
        healthy: true,
        details: { flows: ep.flows, rx_packets: ep.rxPackets, tx_packets: ep.txPackets, last_seen_ms_ago: now - ep.lastSeenMs },
      })),
    };
  }

  /** Always healthy while a policy runs: a refused reload leaves the last good one in force, and says so. */
  private policyHealth(): HealthReport {
    const policy = this.judge?.policy;
    if (!policy) return { healthy: false, reason: 'no policy loaded' };
    const last = this.lastReload;
    return {
      healthy: true,
      reason: last && !last.ok ? `last reload refused (${last.error ?? 'unknown error'}); running the previous policy` : undefined,
      details: {
        file: policy.source,
        digest: policy.digest,
        rules: policy.rules.length,
        default: policy.defaultAction,
        midstream: policy.midstream,
        last_reload: last ? { at: last.at.toISOString(), trigger: last.trigger, result: last.ok ? 'ok' : 'refused', ...(last.error ? { error: last.error } : {}) } : null,
        reloads_ok: this.reloadCounts.ok,
        reloads_refused: this.reloadCounts.refused,
        dns_names_cached: this.cache.size,
      },
    };
  }

  /** Stops the engine (its open flows become EVE flow events), then the log, the watcher and the health server. Idempotent. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    clearInterval(this.timer);
    this.source?.close();
    const open = this.engine?.stop() ?? [];
    this.stopped = true;
    this.judge?.handle(open);
    await this.judge?.settled();
    await this.eve?.close();
    await this.server?.close();
    this.counterBlock?.close();
    if (this.engine) this.log.important('core', 'stopped', { flows_logged: open.length });
  }
}
