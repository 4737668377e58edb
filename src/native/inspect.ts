/**
 * gatehouse inspect's packet core (native/src/inspect.cc): validates its
 * options, starts it, checks the counter tables it reports, and checks
 * every verdict before it crosses into C++. What the engine does is
 * described once, in binding.ts (InspectOptions, NativeInspect).
 */
import { loadNative } from './addon';
import type { InspectEndpointInfo, InspectEvent, InspectFlowEndEvent, InspectOptions, InspectVerdict, NativeInspect } from './binding';
import { checkCounterNames, readCounters, workerStatusOf, type NamedCounters } from './counters';
import { checkBoolean, checkInteger, checkIPv4, checkU64, invalidArg, MAX_SOCKET_BUFFER } from './validate';
import { checkPrefixes, MAX_ENDPOINTS, MAX_FLOWS, MAX_TUNNEL_FLOW_IDLE_MS, MAX_TUNNEL_THREADS, tunnelWorkerCounterNames } from './tunnel';
import { GatehouseError } from '../errors';
import { GENEVE_REASONS } from '../geneve/reasons';

/** The engine's global counters, in its order (native/src/inspect.cc kInspectCounterNames). */
export const INSPECT_COUNTER_NAMES = [
  'rx_packets', // datagrams received on bind:port, valid or not
  'rx_bytes',
  'tx_packets', // datagrams sent back to GWLB (allowed, released from hold, injected)
  'tx_bytes', // their GENEVE bytes
  'tx_errors',
  'rx_overflow', // datagrams the kernel dropped because a socket buffer was full
  'drop_source_not_allowed',
  'drop_endpoint_limit',
  'drop_unparsable_inner',
  'drop_flow_limit',
  'dropped_malformed', // malformed GENEVE (the sum of the malformed_<reason> counters)
  'flows_active', // a gauge
  'flows_created',
  'flows_ended', // by idle time, forgetEndpoint or shutdown
  'endpoints_seen',
  'upcalls', // packet events handed to TypeScript
  'upcalls_dropped', // events that found the event queue full (the flow asks again with its next packet)
  'held', // packets held waiting for a verdict
  'held_dropped', // packets that found the flow's hold (heldPerFlow) or the byte budget full
  'passed_handshake', // packets without payload passed while a flow was inspected
  'verdict_allow_packets', // packets sent by an allow verdict (including released held ones)
  'verdict_drop_packets', // packets dropped by a drop verdict (including released held ones)
  'injected', // packets sent by inject()
  ...GENEVE_REASONS.map((r) => `malformed_${r}` as const),
] as const;
export type InspectCounterName = (typeof INSPECT_COUNTER_NAMES)[number];

export const MAX_HELD_PER_FLOW = 1024;
export const MAX_HELD_BYTES = 2 ** 30;
export const MAX_PAYLOAD_UPCALLS = 64;
export const MAX_TAP_PACKETS = 1024;
/** The engine's handles are its flow keys (inner 5-tuple and endpoint): 48 bytes. */
export const INSPECT_HANDLE_BYTES = 48;

export interface Inspect {
  readonly counters: NamedCounters<InspectCounterName>;
  readonly workers: NamedCounters<string>;
  readCounters(): Record<InspectCounterName, number>;
  /** Per UDP worker: name, heartbeatMs (monotonicMs of its last turn), packets. */
  workerStatus(): Array<{ name: string; heartbeatMs: number; packets: number }>;
  setVerdicts(verdicts: readonly InspectVerdict[]): number;
  inject(flow: bigint, handle: Uint8Array, packets: readonly Uint8Array[]): number;
  forgetEndpoint(eni: bigint): void;
  endpoints(): InspectEndpointInfo[];
  stop(): InspectFlowEndEvent[];
}

export function checkInspectOptions(opts: InspectOptions): InspectOptions {
  if (typeof opts !== 'object' || opts === null) invalidArg('an options object', 'options', opts);
  if (typeof opts.onEvents !== 'function') invalidArg('function', 'onEvents', opts.onEvents);
  return {
    bind: checkIPv4('bind', opts.bind),
    port: checkInteger('port', opts.port, 1, 65535),
    udpThreads: checkInteger('udpThreads', opts.udpThreads, 1, MAX_TUNNEL_THREADS),
    rcvbuf: checkInteger('rcvbuf', opts.rcvbuf, 0, MAX_SOCKET_BUFFER),
    sndbuf: checkInteger('sndbuf', opts.sndbuf, 0, MAX_SOCKET_BUFFER),
    batch: checkInteger('batch', opts.batch, 1, 1024),
    flowIdleMs: checkInteger('flowIdleMs', opts.flowIdleMs, 1, MAX_TUNNEL_FLOW_IDLE_MS),
    maxEndpoints: checkInteger('maxEndpoints', opts.maxEndpoints, 1, MAX_ENDPOINTS),
    maxFlows: checkInteger('maxFlows', opts.maxFlows, 1, MAX_FLOWS),
    heldPerFlow: checkInteger('heldPerFlow', opts.heldPerFlow, 0, MAX_HELD_PER_FLOW),
    heldBytes: checkInteger('heldBytes', opts.heldBytes, 0, MAX_HELD_BYTES),
    payloadUpcalls: checkInteger('payloadUpcalls', opts.payloadUpcalls, 1, MAX_PAYLOAD_UPCALLS),
    tapPackets: checkInteger('tapPackets', opts.tapPackets, 0, MAX_TAP_PACKETS),
    allowedSources: checkPrefixes(opts.allowedSources),
    onEvents: opts.onEvents,
  };
}

function checkRef(name: string, flow: unknown, handle: unknown): void {
  checkU64(`${name}.flow`, flow);
  if (!(handle instanceof Uint8Array) || handle.length !== INSPECT_HANDLE_BYTES) {
    invalidArg(`a ${INSPECT_HANDLE_BYTES}-byte handle from a packet event`, `${name}.handle`, handle);
  }
}

const VERDICT_ACTIONS: ReadonlySet<string> = new Set(['allow', 'drop', 'inspect']);

/** Starts the inspect engine's threads on bind:port; throws ERR_INVALID_ARG, ERR_NATIVE_START or ERR_NATIVE_CONTRACT. */
export function startInspect(opts: InspectOptions): Inspect {
  const checked = checkInspectOptions(opts);
  let native: NativeInspect;
  try {
    native = loadNative().startInspect({ ...checked, onEvents: (events: InspectEvent[]) => checked.onEvents(events) });
  } catch (err) {
    throw new GatehouseError('ERR_NATIVE_START', `Could not start the inspect engine on ${checked.bind}:${checked.port}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  let counters: NamedCounters<InspectCounterName>;
  let workers: NamedCounters<string>;
  try {
    counters = checkCounterNames('inspect', native.counters, INSPECT_COUNTER_NAMES);
    // The same per-thread pairs as the tunnel's UDP workers (the engine has no TUN threads).
    workers = checkCounterNames('inspect.workers', native.workers, tunnelWorkerCounterNames(checked.udpThreads, 0));
  } catch (err) {
    native.stop();
    throw err;
  }
  return {
    counters,
    workers,
    readCounters: () => readCounters(counters),
    workerStatus: () => workerStatusOf(workers),
    setVerdicts(verdicts) {
      if (!Array.isArray(verdicts)) invalidArg('an array of verdicts', 'verdicts', verdicts);
      verdicts.forEach((v, i) => {
        checkRef(`verdicts[${i}]`, v.flow, v.handle);
        if (!VERDICT_ACTIONS.has(v.action)) invalidArg('allow, drop or inspect', `verdicts[${i}].action`, v.action);
        if (v.tap !== undefined) checkBoolean(`verdicts[${i}].tap`, v.tap);
      });
      return native.setVerdicts(verdicts as InspectVerdict[]);
    },
    inject(flow, handle, packets) {
      checkRef('inject', flow, handle);
      if (!Array.isArray(packets) || packets.some((p) => !(p instanceof Uint8Array) || p.length < 20 || p.length > 9000)) {
        invalidArg('an array of inner IP packets (20 to 9000 bytes each)', 'packets', packets);
      }
      return native.inject(flow, handle, packets as Uint8Array[]);
    },
    forgetEndpoint(eni) {
      checkU64('eni', eni);
      native.forgetEndpoint(eni);
    },
    endpoints: () => native.endpoints(),
    stop: () => native.stop(),
  };
}
