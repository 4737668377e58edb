/**
 * The life of each GWLB endpoint on this appliance, off the packet path:
 *
 *   first packet (native 'endpoint' event, packets held in a bounded queue)
 *     -> rate limit -> create gwi-<X> and gwo-<X> (MTU 8500, up)
 *     -> CREATE hook (timeout) -> attach: the core flushes the queue and serves it
 *   no packet in either direction for -t seconds, SIGTERM/SIGINT, or exit
 *     -> detach (the core lets go of the fds) -> DESTROY hook -> TUNs removed
 *
 * A failure (TUN not creatable, hook failed or timed out) rejects the
 * endpoint for a while: its packets are dropped and counted, the next one
 * after the back-off tries again, and health reports the failure until a try
 * succeeds.
 */
import { eniIdToString, eniIdToEndpointId } from '../geneve';
import type { NativeCounters, TunnelEndpointEvent, TunnelEndpointInfo } from '../native/binding';
import { createTun, type Tun } from '../native/tun';
import { runHook, type HookResult } from './hooks';
import { interfaceNames } from './interface-names';

/** GWLB's endpoint MTU; the TUNs carry inner packets of up to this size. */
export const ENDPOINT_MTU = 8500;

export interface EndpointCore {
  attachEndpoint(eni: bigint, gwi: number[], gwo: number[]): NativeCounters;
  rejectEndpoint(eni: bigint, retryAfterMs: number): void;
  detachEndpoint(eni: bigint): void;
  endpoints(): TunnelEndpointInfo[];
}

export interface EndpointLog {
  info(section: string, msg: string, fields?: Record<string, unknown>): void;
  warning(section: string, msg: string, fields?: Record<string, unknown>): void;
  error(section: string, msg: string, fields?: Record<string, unknown>): void;
  debug(section: string, msg: string, fields?: Record<string, unknown>): void;
}

export interface EndpointSettings {
  createScript?: string;
  destroyScript?: string;
  hookTimeoutMs: number;
  /** -t: destroy an endpoint after this long without a packet either way; 0 = never. */
  idleTimeoutMs: number;
  tunQueues: number;
  /** New endpoints allowed per minute (token bucket, burst of the same size). */
  createPerMinute: number;
  /** How long a failed or rate-limited endpoint is refused before the next try. */
  retryAfterMs: number;
}

export interface EndpointState {
  eni: bigint;
  endpointId: string;
  gwi: string;
  gwo: string;
  since: Date;
  counters: NativeCounters;
}

export interface EndpointFailure {
  eni: bigint;
  stage: 'tun' | 'create-hook' | 'attach' | 'rate-limit';
  reason: string;
  at: Date;
}

interface Prepared {
  gwiTun: Tun;
  gwoTun: Tun;
}

interface Live extends EndpointState, Prepared {
  attachedAtMs: number;
}

export interface EndpointRegistryHealth {
  healthy: boolean;
  reasons: string[];
  endpoints: number;
  hookFailures: number;
  tunFailures: number;
  rateLimited: number;
}

export class EndpointRegistry {
  private readonly live = new Map<bigint, Live>();
  /** Endpoints whose last try failed, until a try succeeds. */
  private readonly failing = new Map<bigint, EndpointFailure>();
  private readonly busy = new Map<bigint, Promise<void>>();
  private readonly retries = new Map<bigint, NodeJS.Timeout>();
  /** TUNs made and CREATE hook run by a retry, waiting for the endpoint's next packet. */
  private readonly prepared = new Map<bigint, Prepared>();
  private readonly wanted = new Set<bigint>();
  private tokens: number;
  private lastRefill: number;
  private closing = false;
  private sweeping = false;
  hookFailures = 0;
  tunFailures = 0;
  rateLimited = 0;

  constructor(
    private readonly core: EndpointCore,
    private readonly settings: EndpointSettings,
    private readonly log: EndpointLog,
    private readonly nowMs: () => number,
  ) {
    this.tokens = settings.createPerMinute;
    this.lastRefill = nowMs();
  }

  /** The core saw a new endpoint: bring it up (one at a time per endpoint). */
  onEndpointSeen(event: TunnelEndpointEvent): void {
    if (this.closing || this.live.has(event.eni)) return;
    if (this.busy.has(event.eni)) {
      // A retry is preparing it right now: attach when that is done.
      this.wanted.add(event.eni);
      return;
    }
    this.start(event, true);
  }

  private start(event: TunnelEndpointEvent, attach: boolean): void {
    clearTimeout(this.retries.get(event.eni));
    this.retries.delete(event.eni);
    const job = this.bringUp(event, attach)
      .catch((err: unknown) => {
        // A bug or an unexpected core error must not take the appliance down.
        this.log.error('endpoint', 'bringing up the endpoint failed', { eni: eniIdToString(event.eni), error: (err as Error).message });
      })
      .finally(() => {
        this.busy.delete(event.eni);
        if (this.wanted.delete(event.eni)) this.onEndpointSeen(event);
      });
    this.busy.set(event.eni, job);
  }

  private takeToken(): boolean {
    const now = this.nowMs();
    const perMs = this.settings.createPerMinute / 60_000;
    this.tokens = Math.min(this.settings.createPerMinute, this.tokens + (now - this.lastRefill) * perMs);
    this.lastRefill = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  private fail(event: TunnelEndpointEvent, stage: EndpointFailure['stage'], reason: string): void {
    const eni = event.eni;
    this.rejectInCore(eni);
    if (stage === 'rate-limit') return; // the endpoint's next packet after the back-off tries again
    this.failing.set(eni, { eni, stage, reason, at: new Date() });
    // Try again after the back-off even if no packet comes: GWLB sends no new
    // flows to an unhealthy target, so waiting for traffic could wait forever.
    const timer = setTimeout(() => {
      this.retries.delete(eni);
      if (!this.closing && !this.busy.has(eni) && !this.live.has(eni)) this.start(event, false);
    }, this.settings.retryAfterMs);
    timer.unref();
    this.retries.set(eni, timer);
  }

  /** Drops the endpoint's queued packets; the core refuses when nothing is pending (a retry without traffic). */
  private rejectInCore(eni: bigint): void {
    const pending = this.core.endpoints().some((e) => e.eni === eni && e.state === 'pending');
    if (pending) this.core.rejectEndpoint(eni, this.settings.retryAfterMs);
  }

  /**
   * Makes the endpoint's TUNs and runs its CREATE hook, then attaches it to
   * the core (a packet is waiting) or keeps it prepared (a retry after a
   * failure, so health recovers without waiting for GWLB to send again).
   */
  private async bringUp(event: TunnelEndpointEvent, attach: boolean): Promise<void> {
    const eni = event.eni;
    const { gwi, gwo } = interfaceNames(eni);
    const fields = { eni: eniIdToString(eni), endpoint: eniIdToEndpointId(eni), gwi, gwo, gwlb: event.source };
    let tuns = this.prepared.get(eni);
    this.prepared.delete(eni);
    if (!tuns) {
      if (attach && !this.takeToken()) {
        this.rateLimited++;
        this.log.warning('endpoint', 'new endpoint refused: creation rate limit', { ...fields, per_minute: this.settings.createPerMinute });
        this.fail(event, 'rate-limit', `more than ${this.settings.createPerMinute} new endpoints per minute`);
        return;
      }
      const made = await this.prepare(event, fields);
      if (!made) return;
      tuns = made;
    }
    if (!attach) {
      this.prepared.set(eni, tuns);
      this.log.info('endpoint', 'prepared after a failed try; waiting for its traffic', fields);
      return;
    }
    let counters: NativeCounters;
    try {
      counters = this.core.attachEndpoint(eni, [...tuns.gwiTun.fds], [...tuns.gwoTun.fds]);
    } catch (err) {
      this.log.error('endpoint', 'attaching the endpoint to the packet core failed', { ...fields, error: (err as Error).message });
      await this.undo(eni, tuns);
      this.fail(event, 'attach', (err as Error).message);
      return;
    }
    this.live.set(eni, {
      eni,
      endpointId: fields.endpoint,
      gwi,
      gwo,
      since: new Date(),
      counters,
      gwiTun: tuns.gwiTun,
      gwoTun: tuns.gwoTun,
      attachedAtMs: this.nowMs(),
    });
    this.log.info('endpoint', 'created', fields);
  }

  /** TUNs + CREATE hook; on failure everything made is undone, the endpoint rejected, and undefined returned. */
  private async prepare(event: TunnelEndpointEvent, fields: Record<string, string>): Promise<Prepared | undefined> {
    const eni = event.eni;
    const { gwi, gwo } = interfaceNames(eni);
    let gwiTun: Tun | undefined;
    let gwoTun: Tun | undefined;
    try {
      gwiTun = createTun({ name: gwi, queues: this.settings.tunQueues, mtu: ENDPOINT_MTU });
      gwoTun = createTun({ name: gwo, queues: this.settings.tunQueues, mtu: ENDPOINT_MTU });
    } catch (err) {
      gwiTun?.close();
      this.tunFailures++;
      const reason = `could not create ${gwiTun ? gwo : gwi}: ${(err as Error).message}`;
      this.log.error('endpoint', 'TUN creation failed', { ...fields, reason });
      this.fail(event, 'tun', reason);
      return undefined;
    }
    if (this.settings.createScript) {
      const r = await this.hook('CREATE', this.settings.createScript, eni, gwi, gwo);
      if (!r.ok) {
        // What a failed CREATE left half done is the DESTROY hook's to undo.
        await this.undo(eni, { gwiTun, gwoTun });
        this.hookFailures++;
        this.fail(event, 'create-hook', describeHookFailure(r));
        return undefined;
      }
      if (this.closing) {
        await this.undo(eni, { gwiTun, gwoTun });
        return undefined;
      }
    }
    this.failing.delete(eni);
    return { gwiTun, gwoTun };
  }

  private async hook(action: 'CREATE' | 'DESTROY', script: string, eni: bigint, gwi: string, gwo: string): Promise<HookResult> {
    const r = await runHook({ script, action, gwi, gwo, eni, timeoutMs: this.settings.hookTimeoutMs });
    const fields = {
      action,
      script,
      eni: eniIdToString(eni),
      exit: r.code,
      signal: r.signal,
      timed_out: r.timedOut,
      duration_ms: r.durationMs,
      stdout: r.stdout.trimEnd(),
      stderr: r.stderr.trimEnd(),
    };
    if (r.ok) this.log.info('hook', `${action} hook done`, fields);
    else this.log.error('hook', `${action} hook failed: ${describeHookFailure(r)}`, fields);
    return r;
  }

  /** For TUNs made (and CREATE run, when there is one) but not attached: DESTROY hook if CREATE ran, then the TUNs go. */
  private async undo(eni: bigint, tuns: Prepared): Promise<void> {
    const { gwi, gwo } = interfaceNames(eni);
    if (this.settings.createScript && this.settings.destroyScript) {
      await this.hook('DESTROY', this.settings.destroyScript, eni, gwi, gwo);
    }
    tuns.gwiTun.close();
    tuns.gwoTun.close();
  }

  /**
   * Destroys endpoints idle (no packet in either direction) for longer than
   * -t. Call about once a second; a call while the previous one still runs
   * (a slow DESTROY hook) returns at once.
   */
  async sweepIdle(): Promise<void> {
    if (this.settings.idleTimeoutMs <= 0 || this.closing || this.sweeping) return;
    this.sweeping = true;
    try {
      await this.sweepIdleOnce();
    } finally {
      this.sweeping = false;
    }
  }

  private async sweepIdleOnce(): Promise<void> {
    const now = this.nowMs();
    const infos = new Map(this.core.endpoints().map((e) => [e.eni, e]));
    for (const ep of [...this.live.values()]) {
      const info = infos.get(ep.eni);
      const last = Math.max(ep.attachedAtMs, info?.lastInMs ?? 0, info?.lastOutMs ?? 0);
      if (now - last > this.settings.idleTimeoutMs && this.live.get(ep.eni) === ep && !this.closing) {
        this.log.info('endpoint', 'idle: destroying', { eni: eniIdToString(ep.eni), idle_ms: now - last });
        await this.destroy(ep);
      }
    }
  }

  private async destroy(ep: Live): Promise<void> {
    this.live.delete(ep.eni);
    this.core.detachEndpoint(ep.eni);
    if (this.settings.destroyScript) await this.hook('DESTROY', this.settings.destroyScript, ep.eni, ep.gwi, ep.gwo);
    ep.gwiTun.close();
    ep.gwoTun.close();
    this.log.info('endpoint', 'destroyed', { eni: eniIdToString(ep.eni), gwi: ep.gwi, gwo: ep.gwo });
  }

  /** SIGTERM / SIGINT / exit: wait for endpoints being created, then destroy all (DESTROY hooks run). */
  async shutdown(): Promise<void> {
    this.closing = true;
    for (const t of this.retries.values()) clearTimeout(t);
    this.retries.clear();
    await Promise.allSettled([...this.busy.values()]);
    for (const ep of [...this.live.values()]) await this.destroy(ep);
    for (const [eni, tuns] of [...this.prepared]) {
      this.prepared.delete(eni);
      await this.undo(eni, tuns);
    }
  }

  list(): EndpointState[] {
    return [...this.live.values()].map(({ eni, endpointId, gwi, gwo, since, counters }) => ({ eni, endpointId, gwi, gwo, since, counters }));
  }

  failures(): EndpointFailure[] {
    return [...this.failing.values()];
  }

  /** Unhealthy while any endpoint's last try failed to create a TUN or run its CREATE hook. */
  health(): EndpointRegistryHealth {
    const reasons = this.failures()
      .filter((f) => f.stage !== 'rate-limit')
      .map((f) => `endpoint ${eniIdToString(f.eni)}: ${STAGE_NAMES[f.stage]} failed on the last try: ${f.reason}`);
    return {
      healthy: reasons.length === 0,
      reasons,
      endpoints: this.live.size,
      hookFailures: this.hookFailures,
      tunFailures: this.tunFailures,
      rateLimited: this.rateLimited,
    };
  }
}

const STAGE_NAMES: Record<EndpointFailure['stage'], string> = {
  tun: 'TUN',
  'create-hook': 'CREATE hook',
  attach: 'attaching to the packet core',
  'rate-limit': 'rate limit',
};

/** runHook words every failure itself (reason is set exactly when ok is false). */
function describeHookFailure(r: HookResult): string {
  return r.reason ?? 'failed';
}
