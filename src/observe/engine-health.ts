/**
 * Health parts every GWLB target engine (tunnel, inspect) reports the same
 * way: its worker threads' heartbeats, and the kernel's receive drops over a
 * sliding window (GWLB should stop sending new flows to a target that is
 * losing packets).
 */
import type { HealthReport } from './health';

/** A worker that has not turned its loop for this long is stalled (a live one turns every <= 100 ms). */
export const WORKER_STALL_MS = 2_000;
/** Receive drops (socket overflow) tolerated over the last DROP_WINDOW_S seconds before health says 503. */
export const RECEIVE_DROP_THRESHOLD = 1_000;
export const DROP_WINDOW_S = 10;

export interface WorkerStatus {
  name: string;
  heartbeatMs: number; // monotonicMs() of its last loop turn
  packets: number;
}

export function workersHealth(workers: readonly WorkerStatus[], nowMs: number): HealthReport {
  const stalled = workers.filter((w) => nowMs - w.heartbeatMs > WORKER_STALL_MS);
  return {
    healthy: stalled.length === 0 && workers.length > 0,
    reason: stalled.length ? `stalled: ${stalled.map((w) => `${w.name} (${nowMs - w.heartbeatMs} ms)`).join(', ')}` : undefined,
    children: workers.map((w) => ({
      name: w.name,
      healthy: nowMs - w.heartbeatMs <= WORKER_STALL_MS,
      details: { packets: w.packets, last_turn_ms_ago: nowMs - w.heartbeatMs },
    })),
  };
}

/** The kernel's receive drop counter sampled once a second, over the last DROP_WINDOW_S seconds. */
export class ReceiveDropWindow {
  private readonly samples: number[] = [];

  /** Call once a second with the engine's rx_overflow. */
  sample(rxOverflow: number): void {
    this.samples.push(rxOverflow);
    if (this.samples.length > DROP_WINDOW_S + 1) this.samples.shift();
  }

  /** Drops within the window, given the counter now. */
  recent(rxOverflow: number): number {
    return rxOverflow - (this.samples[0] ?? rxOverflow);
  }

  /** Why the receive path is unhealthy, or undefined. */
  static reason(recent: number): string | undefined {
    return recent > RECEIVE_DROP_THRESHOLD
      ? `${recent} datagrams dropped by the kernel (socket receive overflow) in the last ${DROP_WINDOW_S} s, over the threshold of ${RECEIVE_DROP_THRESHOLD}`
      : undefined;
  }
}
