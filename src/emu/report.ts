/**
 * The emulator's report: from the generator's counters and latency
 * histogram to the numbers a person reads and the JSON a script parses.
 * Pure functions.
 */
import { GENEVE_REASONS } from '../geneve/reasons';
import { percentileNs } from '../native/latency';

export type CounterRecord = Readonly<Record<string, number>>;

export interface EmuReport {
  sent: number;
  sent_good: number;
  sent_malformed: number;
  received: number;
  valid: number;
  invalid: number;
  invalid_by_reason: Record<string, number>;
  loss_pct: number;
  duration_s: number;
  tx_pps: number;
  rx_pps: number;
  tx_mbps: number;
  rx_mbps: number;
  p50_us: number;
  p99_us: number;
  max_us: number;
  send_errors: number;
  socket_drops: number;
  cpu_pct: number;
  cpu_us_per_packet: number;
  malformed: Record<string, { sent: number; returned: number }>;
  good_all_returned: boolean;
}

const INVALID_KINDS = ['not_from_target', 'geneve', 'unknown_flow', 'header_mismatch', 'inner_mismatch', 'duplicate'] as const;

export interface ReportInput {
  counters: CounterRecord;
  latency: BigUint64Array;
  latencyMaxNs: number;
  /** Seconds from start to the end of sending. */
  sendSeconds: number;
  /** Seconds from start to the end of receiving (after the drain). */
  totalSeconds: number;
  /** CPU seconds this process used (user + system). */
  cpuSeconds: number;
}

export function buildReport(input: ReportInput): EmuReport {
  const c = input.counters;
  const sentMalformed = c.sent_malformed ?? 0;
  const sentGood = c.sent - sentMalformed;
  const invalidByReason: Record<string, number> = {};
  let invalid = 0;
  for (const kind of INVALID_KINDS) {
    const n = c[`invalid_${kind}`] ?? 0;
    invalid += n;
    if (kind === 'geneve') {
      for (const r of GENEVE_REASONS) {
        const m = c[`invalid_geneve_${r}`] ?? 0;
        if (m > 0) invalidByReason[`geneve_${r}`] = m;
      }
    } else if (n > 0) {
      invalidByReason[kind] = n;
    }
  }
  const malformed: Record<string, { sent: number; returned: number }> = {};
  for (const r of GENEVE_REASONS) {
    const sent = c[`sent_malformed_${r}`] ?? 0;
    const returned = c[`returned_malformed_${r}`] ?? 0;
    if (sent > 0 || returned > 0) malformed[r] = { sent, returned };
  }
  const sendS = Math.max(input.sendSeconds, 1e-9);
  const totalS = Math.max(input.totalSeconds, 1e-9);
  const received = c.received;
  return {
    sent: c.sent,
    sent_good: sentGood,
    sent_malformed: sentMalformed,
    received,
    valid: c.valid,
    invalid,
    invalid_by_reason: invalidByReason,
    loss_pct: sentGood > 0 ? round(((sentGood - c.valid) / sentGood) * 100, 3) : 0,
    duration_s: round(input.sendSeconds, 3),
    tx_pps: Math.round(c.sent / sendS),
    rx_pps: Math.round(received / sendS),
    tx_mbps: round((c.sent_bytes * 8) / sendS / 1e6, 2),
    rx_mbps: round((c.received_bytes * 8) / sendS / 1e6, 2),
    p50_us: round(percentileNs(input.latency, 50) / 1000, 1),
    p99_us: round(percentileNs(input.latency, 99) / 1000, 1),
    max_us: round(input.latencyMaxNs / 1000, 1),
    send_errors: c.send_errors,
    socket_drops: c.rx_overflow,
    cpu_pct: round((input.cpuSeconds / totalS) * 100, 1),
    cpu_us_per_packet: c.sent + received > 0 ? round((input.cpuSeconds * 1e6) / (c.sent + received), 3) : 0,
    malformed,
    good_all_returned: sentGood > 0 && c.valid === sentGood,
  };
}

function round(v: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}

/** One line, rewritten in place on a terminal while the run goes on. */
export function progressLine(elapsedS: number, c: CounterRecord, prev: CounterRecord | undefined, intervalS: number): string {
  const tx = prev ? (c.sent - prev.sent) / intervalS : 0;
  const rx = prev ? (c.received - prev.received) / intervalS : 0;
  const good = c.sent - (c.sent_malformed ?? 0);
  const invalid = INVALID_KINDS.reduce((s, k) => s + (c[`invalid_${k}`] ?? 0), 0);
  return (
    `${elapsedS.toFixed(1).padStart(6)}s  sent ${c.sent}  recv ${c.received}  valid ${c.valid}  invalid ${invalid}` +
    `  in-flight ${Math.max(0, good - c.valid)}  tx ${Math.round(tx)} pps  rx ${Math.round(rx)} pps`
  );
}

export function formatReport(r: EmuReport): string {
  const lines = [
    `sent        ${r.sent} (${r.sent_good} good, ${r.sent_malformed} malformed) in ${r.duration_s} s`,
    `received    ${r.received}: ${r.valid} valid, ${r.invalid} invalid`,
    `loss        ${r.loss_pct} % of good packets`,
    `rate        tx ${r.tx_pps} pps (${r.tx_mbps} Mbit/s)  rx ${r.rx_pps} pps (${r.rx_mbps} Mbit/s)`,
    `latency     p50 ${r.p50_us} us  p99 ${r.p99_us} us  max ${r.max_us} us`,
    `emulator    CPU ${r.cpu_pct} % (${r.cpu_us_per_packet} us per packet sent+received), socket drops ${r.socket_drops}, send errors ${r.send_errors}`,
  ];
  if (r.invalid > 0) {
    lines.push(`invalid     ${Object.entries(r.invalid_by_reason).map(([k, v]) => `${k}=${v}`).join('  ')}`);
  }
  const kinds = Object.entries(r.malformed);
  if (kinds.length > 0) {
    lines.push('malformed   kind                     sent  came back (a GWLB target returns 0)');
    for (const [kind, m] of kinds) lines.push(`            ${kind.padEnd(24)} ${String(m.sent).padStart(5)}  ${m.returned}`);
    lines.push(`            good packets all came back: ${r.good_all_returned ? 'yes' : 'no'}`);
  }
  return lines.join('\n');
}
