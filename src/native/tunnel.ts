/**
 * gatehouse tunnel's packet core (native/src/tunnel.cc), the GWLB target:
 * validates its options, starts it, checks that the addon reports the
 * counter tables below, and reads them by name. What the engine does is
 * described once, in binding.ts (TunnelOptions, NativeTunnel).
 */
import { loadNative } from './addon';
import type { Ipv4Prefix, NativeCounters, NativeTunnel, TunnelEndpointInfo, TunnelEvent, TunnelOptions } from './binding';
import { checkCounterNames, readCounters, workerStatusOf, type NamedCounters } from './counters';
import { checkBoolean, checkInteger, checkIPv4, checkU64, invalidArg, MAX_SOCKET_BUFFER } from './validate';
import { GatehouseError } from '../errors';
import { GENEVE_REASONS } from '../geneve/reasons';

/** The engine's global counters, in its order (binding.ts NativeTunnel). */
export const TUNNEL_COUNTER_NAMES = [
  'rx_packets', // datagrams received on bind:port, valid or not
  'rx_bytes', // their UDP payload (GENEVE) bytes
  'tx_packets', // datagrams sent back to GWLB
  'tx_bytes', // their GENEVE bytes (outer headers not included): equals rx_bytes when everything came back
  'tx_errors', // datagrams the kernel refused to send (e.g. larger than the route's MTU)
  'rx_overflow', // datagrams the kernel dropped because a socket buffer was full
  'drop_source_not_allowed', // not from allowedSources
  'drop_endpoint_limit', // a new endpoint while maxEndpoints were known
  'drop_endpoint_rejected', // for a rejected endpoint before its retry time
  'queue_dropped', // a pending endpoint's queue was full, or dropped by reject/detach
  'drop_unparsable_inner', // no flow key in the inner packet (either direction)
  'drop_no_flow', // read from a TUN, no flow to send it back on
  'tun_write_errors', // writes to gwi that failed, and datagrams too large to be written whole
  'flows_active', // a gauge
  'flows_created',
  'flows_expired',
  'endpoints_seen', // 'endpoint' events: new endpoints, and rejected ones announced again
  'dropped_malformed', // malformed GENEVE (the sum of the malformed_<reason> counters)
  'drop_flow_limit', // a new flow while maxFlows flows were known
  ...GENEVE_REASONS.map((r) => `malformed_${r}` as const),
] as const;
export type TunnelCounterName = (typeof TUNNEL_COUNTER_NAMES)[number];

/** Each attached endpoint's counters (returned by attachEndpoint). */
export const TUNNEL_ENDPOINT_COUNTER_NAMES = [
  'rx_packets', // datagrams from GWLB for this endpoint with a parsable inner packet (written or queued)
  'rx_bytes', // their GENEVE bytes
  'tx_packets', // datagrams sent back to GWLB from its TUNs
  'tx_bytes', // their GENEVE bytes
  'drop_no_flow',
  'tun_write_errors',
  'queue_dropped',
] as const;
export type TunnelEndpointCounterName = (typeof TUNNEL_ENDPOINT_COUNTER_NAMES)[number];

/** Worker counter names for the given thread counts: `<worker>_heartbeat_ms`, `<worker>_packets` per thread. */
export function tunnelWorkerCounterNames(udpThreads: number, tunThreads: number): string[] {
  const workers = [
    ...Array.from({ length: udpThreads }, (_, i) => `udp${i}`),
    ...Array.from({ length: tunThreads }, (_, i) => `tun${i}`),
  ];
  return workers.flatMap((w) => [`${w}_heartbeat_ms`, `${w}_packets`]);
}

export const MAX_TUNNEL_THREADS = 64;
/** CPU numbers the kernel's affinity masks take (CPU_SETSIZE). */
export const MAX_CPU = 1023;
/** Longest flow idle time: a week (GWLB's own maximum is 6000 s; the engine keeps 32-bit ms times). */
export const MAX_TUNNEL_FLOW_IDLE_MS = 7 * 86_400_000;
export const MAX_ENDPOINTS = 65_536;
/** Packets held per pending endpoint (each up to 8500 bytes). */
export const MAX_PENDING_QUEUE = 16_384;
/** Bytes all pending queues may hold together: 1 GiB. */
export const MAX_PENDING_BYTES = 2 ** 30;
/** Flows the engine may hold (2^32: far beyond memory anyway). */
export const MAX_FLOWS = 2 ** 32;
/** Longest time a rejected endpoint stays rejected: a day. */
export const MAX_RETRY_AFTER_MS = 86_400_000;

/** One worker thread's liveness, from the workers counter block. */
export interface TunnelWorkerStatus {
  name: string; // udp0.., tun0..
  heartbeatMs: number; // monotonicMs() of its last loop turn
  /**
   * Packets it moved: a UDP worker counts the datagrams it received and the
   * replies it sent back itself (what the kernel hands back at once, as with
   * a passthrough or routing appliance); a TUN worker what it read from TUNs.
   * At low load every datagram goes to udp0 (see kSpreadAbove in tunnel.cc).
   */
  packets: number;
}

export interface Tunnel {
  /** Live global counters (names in TUNNEL_COUNTER_NAMES order). */
  readonly counters: NamedCounters<TunnelCounterName>;
  /** Live worker counters (names from tunnelWorkerCounterNames). */
  readonly workers: NamedCounters<string>;
  readCounters(): Record<TunnelCounterName, number>;
  workerStatus(): TunnelWorkerStatus[];
  /**
   * The endpoint's TUNs are up: its queued packets go to gwi and it is
   * served from now on. gwi/gwo hold one fd per TUN thread (the TUNs' queues).
   * Returns its live counters. Throws ERR_INVALID_ARG unless it is pending,
   * ERR_NATIVE_START when its fds cannot be used (not TUN queues...).
   */
  attachEndpoint(eni: bigint, gwi: readonly number[], gwo: readonly number[]): NamedCounters<TunnelEndpointCounterName>;
  /** Drops the pending endpoint's queue and its packets until retryAfterMs from now; then it is announced again. */
  rejectEndpoint(eni: bigint, retryAfterMs: number): void;
  /** When this returns no thread uses the endpoint's fds (the caller may close them); its flows are forgotten. */
  detachEndpoint(eni: bigint): void;
  endpoints(): TunnelEndpointInfo[];
  /** Stops and joins every thread, closes the sockets (not the TUN fds); the last events are delivered after. Idempotent. */
  stop(): void;
}

/** CLOCK_MONOTONIC in ms: the clock of heartbeats and lastInMs/lastOutMs. */
export function monotonicMs(): number {
  return loadNative().monotonicMs();
}

function checkAffinity(name: string, value: unknown, threads: number): number[] {
  if (!Array.isArray(value) || (value.length !== 0 && value.length !== threads)) {
    invalidArg(`an empty array or one CPU per thread (${threads})`, name, value);
  }
  return value.map((cpu, i) => checkInteger(`${name}[${i}]`, cpu, 0, MAX_CPU));
}

export function checkPrefixes(value: unknown): Ipv4Prefix[] {
  if (!Array.isArray(value)) invalidArg('an array of IPv4 prefixes', 'allowedSources', value);
  return value.map((p: unknown, i) => {
    if (typeof p !== 'object' || p === null) invalidArg('an IPv4 prefix { address, prefixLength }', `allowedSources[${i}]`, p);
    const { address, prefixLength } = p as Partial<Ipv4Prefix>;
    return {
      address: checkIPv4(`allowedSources[${i}].address`, address),
      prefixLength: checkInteger(`allowedSources[${i}].prefixLength`, prefixLength, 0, 32),
    };
  });
}

/** Every option checked, in a fresh object; throws ERR_INVALID_ARG for the first that is not. */
export function checkTunnelOptions(opts: TunnelOptions): TunnelOptions {
  if (typeof opts !== 'object' || opts === null) invalidArg('an options object', 'options', opts);
  const udpThreads = checkInteger('udpThreads', opts.udpThreads, 1, MAX_TUNNEL_THREADS);
  const tunThreads = checkInteger('tunThreads', opts.tunThreads, 1, MAX_TUNNEL_THREADS);
  if (typeof opts.onEvents !== 'function') invalidArg('function', 'onEvents', opts.onEvents);
  return {
    bind: checkIPv4('bind', opts.bind),
    port: checkInteger('port', opts.port, 1, 65535),
    udpThreads,
    udpAffinity: checkAffinity('udpAffinity', opts.udpAffinity, udpThreads),
    tunThreads,
    tunAffinity: checkAffinity('tunAffinity', opts.tunAffinity, tunThreads),
    rcvbuf: checkInteger('rcvbuf', opts.rcvbuf, 0, MAX_SOCKET_BUFFER),
    sndbuf: checkInteger('sndbuf', opts.sndbuf, 0, MAX_SOCKET_BUFFER),
    batch: checkInteger('batch', opts.batch, 1, 1024),
    flowIdleMs: checkInteger('flowIdleMs', opts.flowIdleMs, 1, MAX_TUNNEL_FLOW_IDLE_MS),
    maxEndpoints: checkInteger('maxEndpoints', opts.maxEndpoints, 1, MAX_ENDPOINTS),
    pendingQueue: checkInteger('pendingQueue', opts.pendingQueue, 0, MAX_PENDING_QUEUE),
    pendingBytes: checkInteger('pendingBytes', opts.pendingBytes, 0, MAX_PENDING_BYTES),
    maxFlows: checkInteger('maxFlows', opts.maxFlows, 1, MAX_FLOWS),
    allowedSources: checkPrefixes(opts.allowedSources),
    hexdump: checkBoolean('hexdump', opts.hexdump),
    onEvents: opts.onEvents,
  };
}

function checkFds(name: string, value: unknown, queues: number): number[] {
  if (!Array.isArray(value) || value.length !== queues) invalidArg(`an array of ${queues} fds (one per TUN thread)`, name, value);
  return value.map((fd, i) => checkInteger(`${name}[${i}]`, fd, 0, 2 ** 31 - 1));
}

/**
 * Runs an endpoint call. The engine refuses an endpoint in the wrong state
 * (unknown, not pending) or a stopped tunnel with a message saying so:
 * ERR_INVALID_ARG. Anything else is the system refusing (a TUN ioctl, epoll):
 * ERR_NATIVE_START.
 */
function endpointCall<T>(eni: bigint, call: () => T): T {
  try {
    return call();
  } catch (err) {
    const message = (err as Error).message;
    if (/: endpoint is |the tunnel is stopped/.test(message)) {
      throw new GatehouseError('ERR_INVALID_ARG', `Expected an endpoint in the right state for eni but received ${eni} of type bigint (${message})`, {
        cause: err,
      });
    }
    throw new GatehouseError('ERR_NATIVE_START', `Could not serve endpoint ${eni}: ${message}`, { cause: err });
  }
}

/** Starts the tunnel's threads on bind:port; throws ERR_INVALID_ARG, ERR_NATIVE_START or ERR_NATIVE_CONTRACT. */
export function startTunnel(opts: TunnelOptions): Tunnel {
  const checked = checkTunnelOptions(opts);
  const addon = loadNative();
  let native: NativeTunnel;
  try {
    native = addon.startTunnel({ ...checked, onEvents: (events: TunnelEvent[]) => checked.onEvents(events) });
  } catch (err) {
    throw new GatehouseError('ERR_NATIVE_START', `Could not start the tunnel on ${checked.bind}:${checked.port}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  let counters: NamedCounters<TunnelCounterName>;
  let workers: NamedCounters<string>;
  try {
    counters = checkCounterNames('tunnel', native.counters, TUNNEL_COUNTER_NAMES);
    workers = checkCounterNames('tunnel.workers', native.workers, tunnelWorkerCounterNames(checked.udpThreads, checked.tunThreads));
  } catch (err) {
    native.stop();
    throw err;
  }
  return {
    counters,
    workers,
    readCounters: () => readCounters(counters),
    workerStatus: () => workerStatusOf(workers),
    attachEndpoint(eni, gwi, gwo) {
      checkU64('eni', eni);
      const gwiFds = checkFds('gwi', gwi, checked.tunThreads);
      const gwoFds = checkFds('gwo', gwo, checked.tunThreads);
      const all = [...gwiFds, ...gwoFds];
      if (new Set(all).size !== all.length) invalidArg('distinct fds', 'gwi and gwo', all.join(','));
      const block: NativeCounters = endpointCall(eni, () => native.attachEndpoint(eni, gwiFds, gwoFds));
      return checkCounterNames('tunnel endpoint', block, TUNNEL_ENDPOINT_COUNTER_NAMES);
    },
    rejectEndpoint(eni, retryAfterMs) {
      checkU64('eni', eni);
      checkInteger('retryAfterMs', retryAfterMs, 0, MAX_RETRY_AFTER_MS);
      endpointCall(eni, () => native.rejectEndpoint(eni, retryAfterMs));
    },
    detachEndpoint(eni) {
      checkU64('eni', eni);
      endpointCall(eni, () => native.detachEndpoint(eni));
    },
    endpoints: () => native.endpoints(),
    stop: () => native.stop(),
  };
}
