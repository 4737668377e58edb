/**
 * The lab's Gateway Load Balancer engine (native/src/gateway.cc): validates
 * options, starts it, checks that its counters are the ones this file knows,
 * and reads them by name. See GatewayOptions in binding.ts for what it does.
 */
import { loadNative } from './addon';
import type { GatewayFlowEvent, GatewayOptions, NativeCounters, NativeGateway } from './binding';
import { checkCounterNames, readCounters, type NamedCounters } from './counters';
import { checkInteger, checkInterfaceName, checkIPv4, checkU64, invalidArg } from './validate';
import { GatehouseError } from '../errors';
import { GENEVE_REASONS } from '../geneve/reasons';

/** The native gateway's counters, in its order (binding.ts NativeGateway). */
export const GATEWAY_COUNTER_NAMES = [
  'tun_rx_packets', // inner packets read from the TUN
  'tun_rx_bytes',
  'encap_tx_packets', // GENEVE datagrams sent to the target
  'encap_tx_bytes', // outer IPv4 packet bytes
  'tx_errors', // datagrams the kernel refused, inner packets too big to encapsulate, TUN writes that failed
  'udp_rx_packets', // datagrams received on bind:port, valid or not
  'udp_rx_bytes',
  'tun_tx_packets', // inner packets of valid replies written back to the TUN
  'tun_tx_bytes',
  'flows_active', // a gauge
  'flows_created',
  'flows_expired',
  'drop_unparsable_inner', // from the TUN or inside a reply: no flow key
  'drop_not_from_target',
  'drop_unknown_flow', // the cookie is not a live flow's
  'drop_option_mismatch', // ENI or attachment id differ from ours
  'drop_tuple_mismatch', // the inner packet belongs to another flow than its cookie's
  'drop_not_routed', // multicast or unspecified source from the TUN (not in tun_rx_*): never reaches a GWLB endpoint
  'drop_wrong_port', // a reply not from the UDP port we sent its flow from (targets mirror ports)
  'rx_overflow', // datagrams the kernel dropped on our socket (cumulative)
  ...GENEVE_REASONS.map((r) => `malformed_${r}` as const),
] as const;
export type GatewayCounterName = (typeof GATEWAY_COUNTER_NAMES)[number];

/** The lowest outer source port a flow may get: GWLB never uses well-known ports. */
export const MIN_SOURCE_PORT = 1024;
/** Longest flow idle time accepted: a day (GWLB's own maximum is 6000 s). */
export const MAX_FLOW_IDLE_MS = 86_400_000;

export interface Gateway {
  /** Live view of the native counters (names in GATEWAY_COUNTER_NAMES order). */
  readonly counters: NativeCounters;
  /** Snapshot of every counter by name. */
  readCounters(): Record<GatewayCounterName, number>;
  counter(name: GatewayCounterName): number;
  /**
   * Stops the threads and closes the sockets and TUN queue at once; the
   * promise settles when the last flow events have been delivered.
   * Idempotent.
   */
  stop(): Promise<void>;
}

/** Throws ERR_INVALID_ARG for the first option that is out of range. */
export function validateGatewayOptions(opts: GatewayOptions): void {
  if (typeof opts !== 'object' || opts === null) invalidArg('an options object', 'options', opts);
  checkInterfaceName('tunName', opts.tunName);
  checkIPv4('bind', opts.bind);
  checkIPv4('target', opts.target);
  checkInteger('port', opts.port, 1, 65535);
  checkU64('eni', opts.eni);
  checkU64('attachment', opts.attachment);
  checkInteger('sourcePortLow', opts.sourcePortLow, MIN_SOURCE_PORT, 65535);
  checkInteger('sourcePortHigh', opts.sourcePortHigh, opts.sourcePortLow, 65535);
  checkInteger('flowIdleMs', opts.flowIdleMs, 1, MAX_FLOW_IDLE_MS);
  if (typeof opts.onFlowEvents !== 'function') invalidArg('function', 'onFlowEvents', opts.onFlowEvents);
}

/**
 * Starts the gateway: creates or attaches to the TUN (and brings it up),
 * binds bind:port, opens the raw socket. Flow events arrive in batches on
 * opts.onFlowEvents.
 */
export function startGateway(opts: GatewayOptions): Gateway {
  validateGatewayOptions(opts);
  const addon = loadNative();
  let engine: NativeGateway;
  try {
    engine = addon.startGateway({
      tunName: opts.tunName,
      bind: opts.bind,
      target: opts.target,
      port: opts.port,
      eni: opts.eni,
      attachment: opts.attachment,
      sourcePortLow: opts.sourcePortLow,
      sourcePortHigh: opts.sourcePortHigh,
      flowIdleMs: opts.flowIdleMs,
      onFlowEvents: (events: GatewayFlowEvent[]) => opts.onFlowEvents(events),
    });
  } catch (err) {
    throw new GatehouseError('ERR_NATIVE_START', `starting the gateway on ${opts.tunName}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  let counters: NamedCounters<GatewayCounterName>;
  try {
    counters = checkCounterNames('gateway', engine.counters, GATEWAY_COUNTER_NAMES);
  } catch (err) {
    engine.stop();
    throw err;
  }
  return {
    counters,
    readCounters: () => readCounters(counters),
    counter(name) {
      return Number(counters.values[GATEWAY_COUNTER_NAMES.indexOf(name)]);
    },
    stop() {
      engine.stop();
      return engine.closed;
    },
  };
}
