/**
 * Value formats shared by every EVE event: the timestamp, the flow id and
 * the protocol name.
 */

const pad = (n: number, width = 2): string => String(n).padStart(width, '0');

/**
 * Suricata's timestamp, "2026-11-22T02:39:45.123456+0000". Suricata writes
 * local time; we always write UTC (+0000), as AWS Network Firewall does.
 * A Date holds milliseconds, so the last three digits are zeros.
 */
export function eveTimestamp(at: Date): string {
  return (
    `${at.getUTCFullYear()}-${pad(at.getUTCMonth() + 1)}-${pad(at.getUTCDate())}` +
    `T${pad(at.getUTCHours())}:${pad(at.getUTCMinutes())}:${pad(at.getUTCSeconds())}` +
    `.${pad(at.getUTCMilliseconds() * 1000, 6)}+0000`
  );
}

const LOW_51_BITS = (1n << 51n) - 1n;
/** What a flow id that folds to 0 becomes: 2^51, a value the fold never produces. */
const ZERO_FLOW_ID = 2 ** 51;

/**
 * `flow_id` from the engine's 64-bit flow id. Suricata masks its ids to 51
 * bits because JavaScript and many JSON readers lose precision above 2^53.
 * Masking alone would make ids that differ only in their top 13 bits equal,
 * so we fold: the id is taken as an unsigned 64-bit value (a negative bigint
 * as its two's complement), and its top 13 bits are XORed into its low 51.
 * The result is never 0 (0 becomes 2^51), so it is always a positive
 * integer below 2^53. The same bigint always gives the same flow_id, so
 * alert, flow and protocol events of one flow correlate.
 */
export function eveFlowId(flowId: bigint): number {
  const id = BigInt.asUintN(64, flowId);
  const folded = (id & LOW_51_BITS) ^ (id >> 51n);
  return folded === 0n ? ZERO_FLOW_ID : Number(folded);
}

/** Names as in /etc/protocols, which is where Suricata's names come from. */
const PROTOCOL_NAMES: Readonly<Record<number, string>> = {
  1: 'ICMP',
  2: 'IGMP',
  6: 'TCP',
  17: 'UDP',
  47: 'GRE',
  50: 'ESP',
  51: 'AH',
  58: 'IPv6-ICMP',
  132: 'SCTP',
};

/** Suricata's `proto`: the protocol's name, or its number in decimal when it has none. */
export function eveProtoName(protocol: number): string {
  return PROTOCOL_NAMES[protocol] ?? String(protocol);
}

/** Suricata writes ports only for protocols that have them. */
export function hasPorts(protocol: number): boolean {
  return protocol === 6 || protocol === 17 || protocol === 132;
}
