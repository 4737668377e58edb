/**
 * The tunnel as tunnel.test.ts runs it inside a namespace (`ip netns exec NS
 * node tunnel-netns-helper.js tunnel <options JSON> <policy JSON>`): a small
 * stand-in for `gatehouse tunnel`'s endpoint lifecycle. On each 'endpoint'
 * event it creates gwi-N / gwo-N (one queue per TUN thread), wires them the
 * way gwlbtun users run a passthrough appliance (tc: everything entering gwi
 * leaves through gwo) and attaches them; or, with policy.rejectFirstMs, it
 * rejects an endpoint's first announcement and attaches the second.
 *
 * JSON lines on stdout (TunnelHelperMessage); commands on stdin:
 *   state            -> {"type":"state", ...}
 *   detach-all       detaches every attached endpoint, then closes its TUNs -> {"type":"detached"}
 *   inject-no-flow N writes N packets of an unknown flow into the first endpoint's gwi -> {"type":"injected"}
 *   stop             stops the tunnel -> {"type":"final", ...}; the process then exits by itself
 *
 * `gwlb-probe <bind> <target> <sourcePort> <hex>...` plays GWLB by hand:
 * sends each GENEVE datagram from bind:sourcePort to target:6081, one at a
 * time, and waits (up to 5 s) for the reply on bind:6081 before the next;
 * prints {"type":"replies", replies: [{ port, hex } | null, ...]}.
 *
 * node --test also runs every file under dist/test/: without a role this
 * does nothing.
 */
import { execFileSync } from 'node:child_process';
import { createSocket, type RemoteInfo } from 'node:dgram';
import { writeSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { createTun, type Tun } from '../../src/native/tun';
import { monotonicMs, startTunnel, type Tunnel, type TunnelWorkerStatus } from '../../src/native/tunnel';
import { readCounters, type NamedCounters } from '../../src/native/counters';
import type { TunnelOptions } from '../../src/native/binding';

export type TunnelHelperOptions = Omit<TunnelOptions, 'onEvents'>;

export interface TunnelHelperPolicy {
  /** Reject each endpoint's first announcement for this long (then attach the next); absent: attach at once. */
  rejectFirstMs?: number;
  /** Attach this long after the announcement (packets meanwhile wait in the pending queue); absent: at once. */
  attachDelayMs?: number;
  tunMtu: number;
}

export interface EndpointSnapshot {
  eni: string; // hex
  state: string;
  lastInMs: number;
  lastOutMs: number;
  flows: number;
  queued: number;
}

export interface TunnelSnapshot {
  counters: Record<string, number>;
  endpoints: EndpointSnapshot[];
  endpointCounters: Record<string, Record<string, number>>; // by ENI (hex), detached ones included
  workers: TunnelWorkerStatus[];
  monotonicMs: number;
}

export type TunnelHelperMessage =
  | { type: 'ready' }
  | { type: 'endpoint'; eni: string; attachment: string; source: string; action: 'attached' | 'rejected' | 'failed'; detail: string }
  | ({ type: 'state' } & TunnelSnapshot)
  | ({ type: 'final' } & TunnelSnapshot)
  | { type: 'detached'; enis: string[] }
  | { type: 'injected'; count: number }
  | { type: 'replies'; replies: Array<{ port: number; hex: string } | null> }
  | { type: 'error'; message: string };

function emit(m: TunnelHelperMessage): void {
  process.stdout.write(`${JSON.stringify(m)}\n`);
}

const hex = (n: bigint): string => n.toString(16).padStart(16, '0');

interface Attached {
  gwi: Tun;
  gwo: Tun;
  counters: NamedCounters<string>;
}

/** An IPv4/UDP packet 198.51.100.200:9 -> 203.0.113.200:9 that no GWLB flow carries. */
function strayPacket(): Buffer {
  const p = Buffer.alloc(20 + 8 + 4);
  p.set([0x45, 0, 0, p.length, 0, 1, 0x40, 0, 64, 17, 0, 0, 198, 51, 100, 200, 203, 0, 113, 200]);
  p.writeUInt16BE(9, 20);
  p.writeUInt16BE(9, 22);
  p.writeUInt16BE(12, 24);
  return p;
}

function runTunnel(optionsJson: string, policyJson: string): void {
  const options = JSON.parse(optionsJson) as TunnelHelperOptions;
  const policy = JSON.parse(policyJson) as TunnelHelperPolicy;
  const attached = new Map<bigint, Attached>();
  const detachedCounters: Record<string, Record<string, number>> = {};
  const rejectedOnce = new Set<bigint>();
  let next = 0;

  const attach = (eni: bigint): string => {
    const n = next++;
    const gwi = createTun({ name: `gwi-${n}`, queues: options.tunThreads, mtu: policy.tunMtu });
    const gwo = createTun({ name: `gwo-${n}`, queues: options.tunThreads, mtu: policy.tunMtu });
    try {
      execFileSync('tc', ['qdisc', 'add', 'dev', gwi.name, 'ingress']);
      execFileSync('tc', ['filter', 'add', 'dev', gwi.name, 'parent', 'ffff:', 'protocol', 'all', 'prio', '2', 'u32', 'match', 'u32', '0', '0', 'flowid', '1:1', 'action', 'mirred', 'egress', 'redirect', 'dev', gwo.name]);
      const counters = tunnel.attachEndpoint(eni, gwi.fds, gwo.fds);
      attached.set(eni, { gwi, gwo, counters });
    } catch (err) {
      gwi.close();
      gwo.close();
      throw err;
    }
    return `${gwi.name}/${gwo.name}`;
  };

  const tunnel: Tunnel = startTunnel({
    ...options,
    onEvents: (events) => {
      for (const e of events) {
        const base = { eni: hex(e.eni), attachment: hex(e.attachment), source: e.source };
        try {
          if (policy.rejectFirstMs !== undefined && !rejectedOnce.has(e.eni)) {
            rejectedOnce.add(e.eni);
            tunnel.rejectEndpoint(e.eni, policy.rejectFirstMs);
            emit({ type: 'endpoint', ...base, action: 'rejected', detail: `${policy.rejectFirstMs} ms` });
          } else if (policy.attachDelayMs !== undefined) {
            setTimeout(() => {
              try {
                emit({ type: 'endpoint', ...base, action: 'attached', detail: attach(e.eni) });
              } catch (err) {
                emit({ type: 'endpoint', ...base, action: 'failed', detail: (err as Error).message });
              }
            }, policy.attachDelayMs);
          } else {
            emit({ type: 'endpoint', ...base, action: 'attached', detail: attach(e.eni) });
          }
        } catch (err) {
          emit({ type: 'endpoint', ...base, action: 'failed', detail: (err as Error).message });
        }
      }
    },
  });


  const snapshot = (type: 'state' | 'final'): TunnelHelperMessage => {
    const endpointCounters: Record<string, Record<string, number>> = { ...detachedCounters };
    for (const [eni, a] of attached) endpointCounters[hex(eni)] = readCounters(a.counters);
    return {
      type,
      counters: tunnel.readCounters(),
      endpoints: tunnel.endpoints().map((e) => ({ ...e, eni: hex(e.eni) })),
      endpointCounters,
      workers: tunnel.workerStatus(),
      monotonicMs: monotonicMs(),
    };
  };

  const rl = createInterface({ input: process.stdin });
  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    process.removeListener('SIGTERM', stop);
    rl.close();
    process.stdin.destroy();
    tunnel.stop();
    emit(snapshot('final'));
    for (const a of attached.values()) {
      a.gwi.close();
      a.gwo.close();
    }
  };
  process.on('SIGTERM', stop);
  rl.on('line', (raw) => {
    const [cmd, arg] = raw.trim().split(/\s+/);
    try {
      if (cmd === 'stop') stop();
      else if (cmd === 'state') emit(snapshot('state'));
      else if (cmd === 'detach-all') {
        const enis = [...attached.keys()];
        for (const eni of enis) {
          const a = attached.get(eni)!;
          tunnel.detachEndpoint(eni);
          detachedCounters[hex(eni)] = readCounters(a.counters);
          attached.delete(eni);
          // Safe now: no tunnel thread uses these fds any more.
          a.gwi.close();
          a.gwo.close();
        }
        emit({ type: 'detached', enis: enis.map(hex) });
      } else if (cmd === 'inject-no-flow') {
        const first = attached.values().next().value as Attached;
        const count = Number(arg);
        const p = strayPacket();
        for (let i = 0; i < count; i++) writeSync(first.gwi.fds[0], p);
        emit({ type: 'injected', count });
      }
    } catch (err) {
      emit({ type: 'error', message: `${cmd}: ${(err as Error).message}` });
    }
  });
  emit({ type: 'ready' });
}

async function runProbe(bind: string, target: string, sourcePort: number, hexes: string[]): Promise<void> {
  const replies = createSocket('udp4');
  const sender = createSocket('udp4');
  await new Promise<void>((resolve) => replies.bind(6081, bind, resolve));
  await new Promise<void>((resolve) => sender.bind(sourcePort, bind, resolve));
  const got: Array<{ port: number; hex: string } | null> = [];
  for (const hex of hexes) {
    const reply = new Promise<{ port: number; hex: string } | null>((resolve) => {
      const timer = setTimeout(() => resolve(null), 5000);
      replies.once('message', (msg: Buffer, rinfo: RemoteInfo) => {
        clearTimeout(timer);
        resolve({ port: rinfo.port, hex: msg.toString('hex') });
      });
    });
    sender.send(Buffer.from(hex, 'hex'), 6081, target);
    got.push(await reply);
  }
  replies.close();
  sender.close();
  emit({ type: 'replies', replies: got });
}

function main(argv: string[]): void {
  const [role, ...args] = argv;
  if (role === 'tunnel') runTunnel(args[0], args[1]);
  if (role === 'gwlb-probe') void runProbe(args[0], args[1], Number(args[2]), args.slice(3));
  // Without a role (as node --test runs it): nothing to do.
}

if (require.main === module) main(process.argv.slice(2));
