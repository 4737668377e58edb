/**
 * The native inner flow key parser (native/src/flow_key.h), for tests and
 * tools: what flow an inner IPv4/IPv6 packet belongs to, the same key for
 * both directions. The packet engines use the same C++ code per packet.
 */
import { loadNative } from './addon';
import type { NativeFlowKeyResult, NativeFragmentTracker } from './binding';
import { GatehouseError } from '../errors';

/**
 * Why bytes have no flow key. Same names, same order as FlowKeyReason in
 * native/src/flow_key.h.
 */
export const FLOW_KEY_REASONS = [
  'empty', // zero bytes
  'bad_version', // version nibble neither 4 nor 6
  'ipv4_truncated', // < 20 bytes, or shorter than its total length
  'ipv4_bad_header_length', // IHL < 5, or total length < IHL * 4
  'ipv6_truncated', // < 40 bytes, or shorter than 40 + payload length
  'extension_truncated', // an IPv6 extension header or AH runs past the packet
  'l4_truncated', // too short for the ports (TCP, UDP, SCTP, DCCP, UDP-Lite) or the 8-byte ICMP header
] as const;
export type FlowKeyReason = (typeof FLOW_KEY_REASONS)[number];

export type FlowKey = Extract<NativeFlowKeyResult, { ok: true }>;
export type FlowKeyResult = FlowKey | { ok: false; reason: FlowKeyReason };

/**
 * Remembers the ports of first fragments so later fragments of the same
 * datagram get the same key (1024 slots, 30 s). One per packet stream.
 */
export class FragmentTracker {
  /** @internal */
  readonly native: NativeFragmentTracker = loadNative().newFragmentTracker();
}

/** Parses `packet`; never throws on bad bytes (the reason says what is wrong). */
export function parseFlowKey(packet: Uint8Array, tracker?: FragmentTracker): FlowKeyResult {
  const r = loadNative().parseFlowKey(packet, tracker?.native);
  if (r.ok) return r;
  if (!(FLOW_KEY_REASONS as readonly string[]).includes(r.reason)) {
    throw new GatehouseError(
      'ERR_NATIVE_CONTRACT',
      `Expected one of [${FLOW_KEY_REASONS.join(', ')}] for parseFlowKey().reason but received '${r.reason}' (rebuild the addon: npm run build:native)`,
    );
  }
  return { ok: false, reason: r.reason as FlowKeyReason };
}
