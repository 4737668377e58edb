/**
 * Packets the kernel dropped on an endpoint's TUN rings: when gatehouse does
 * not read gwo (or gwi) fast enough, the kernel counts what did not fit in
 * the interface's tx_dropped (a TUN "transmits" to its reader). The native
 * core never sees these, so they are read from sysfs on demand.
 */
import { readFileSync } from 'node:fs';

/** tx_dropped of interface `name`, or 0 when it is gone (an endpoint being removed). */
export function readTunTxDropped(name: string): number {
  try {
    return Number(readFileSync(`/sys/class/net/${name}/statistics/tx_dropped`, 'utf8').trim()) || 0;
  } catch {
    return 0;
  }
}
