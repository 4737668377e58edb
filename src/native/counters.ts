/**
 * The native engines' counter names, in the order binding.ts documents, and
 * a reader that turns a live counter block into a plain record. The engine
 * wrappers compare these tables with the names the addon reports at start,
 * so an addon built from other sources fails loudly instead of mislabelling.
 */
import type { NativeCounters } from './binding';
import { GENEVE_REASONS } from '../geneve/reasons';
import { GatehouseError } from '../errors';

const perReason = <P extends string>(prefix: P) => GENEVE_REASONS.map((r) => `${prefix}${r}` as const);

export const REFLECTOR_COUNTER_NAMES = [
  'rx_packets',
  'rx_bytes', // GENEVE datagram bytes (outer headers not included)
  'tx_packets',
  'tx_bytes', // likewise, so that tx_bytes == rx_bytes when everything was reflected
  'tx_errors', // datagrams that could not be sent back (or arrived truncated)
  'rx_overflow', // datagrams the kernel dropped because a socket buffer was full
  'dropped_malformed', // validate: malformed GENEVE, dropped
  ...perReason('malformed_'),
] as const;
export type ReflectorCounterName = (typeof REFLECTOR_COUNTER_NAMES)[number];

export const GENERATOR_COUNTER_NAMES = [
  'sent', // datagrams sent, good and malformed
  'sent_bytes',
  'sent_malformed',
  'send_errors',
  'received', // every reply is counted in exactly one of the counters from `valid` on
  'received_bytes',
  'valid',
  'invalid_not_from_target', // wrong source address, or a source port none of our flows uses
  'invalid_geneve', // (+ invalid_geneve_<reason>)
  'invalid_unknown_flow', // no stamp of this run, or a sequence number never sent
  'invalid_header_mismatch', // GENEVE header (or reply source port) differs from the flow's
  'invalid_inner_mismatch',
  'invalid_duplicate',
  'rx_overflow',
  'sender_done', // 1 once the sender finished (count or duration reached)
  ...perReason('sent_malformed_'),
  ...perReason('returned_malformed_'),
  ...perReason('invalid_geneve_'),
] as const;
export type GeneratorCounterName = (typeof GENERATOR_COUNTER_NAMES)[number];

/** A counter block whose names are known to TypeScript (the engine wrappers return these). */
export interface NamedCounters<N extends string> extends NativeCounters {
  readonly names: readonly N[];
}

/**
 * Snapshot of a counter block by name (its own names, so it serves every
 * engine). Each value is exact; values read while the engine runs are not
 * one consistent instant.
 */
export function readCounters<N extends string>(counters: NamedCounters<N>): Record<N, number> {
  const out = {} as Record<N, number>;
  counters.names.forEach((name, i) => {
    out[name] = Number(counters.values[i]);
  });
  return out;
}

/** Returns `counters` typed by `expected`; throws unless the addon reports exactly those names, in order. */
export function checkCounterNames<N extends string>(
  engine: string,
  counters: NativeCounters,
  expected: readonly N[],
): NamedCounters<N> {
  const got = counters.names;
  const same =
    got.length === expected.length && counters.values.length === expected.length && got.every((n, i) => n === expected[i]);
  if (!same) {
    throw new GatehouseError(
      'ERR_NATIVE_CONTRACT',
      `Expected the counters of binding.ts [${expected.join(', ')}] for ${engine}.counters but received [${got.join(', ')}] (rebuild the addon: npm run build:native)`,
    );
  }
  return counters as NamedCounters<N>;
}

/**
 * Worker threads' liveness from an engine's workers block, whose counters
 * come in pairs per thread: `<worker>_heartbeat_ms`, `<worker>_packets`.
 */
export function workerStatusOf(workers: NamedCounters<string>): Array<{ name: string; heartbeatMs: number; packets: number }> {
  const out = [];
  for (let i = 0; i + 1 < workers.names.length; i += 2) {
    out.push({ name: workers.names[i].replace(/_heartbeat_ms$/, ''), heartbeatMs: Number(workers.values[i]), packets: Number(workers.values[i + 1]) });
  }
  return out;
}
