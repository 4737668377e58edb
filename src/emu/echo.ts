/**
 * `gatehouse emu --echo`: the native reflector, run until a signal or
 * --duration. It is both the harness ceiling (what the emulator can move
 * with a target that does nothing) and the lab's passthrough appliance.
 */
import { startReflector } from '../native/reflector';
import { readCounters } from '../native/counters';
import type { EchoRunOptions } from './options';

export async function runEcho(opts: EchoRunOptions, write: (line: string) => void, progress: (line: string) => void): Promise<number> {
  const reflector = startReflector({
    bind: opts.bind,
    port: opts.port,
    threads: opts.threads,
    rcvbuf: opts.rcvbuf,
    sndbuf: opts.sndbuf,
    batch: opts.batch,
    validate: opts.validate,
  });
  if (!opts.json) {
    write(`gatehouse emu --echo: reflecting GENEVE on ${opts.bind}:${reflector.port} with ${opts.threads} thread(s)${opts.validate ? ', dropping malformed' : ''}`);
  }
  const stopped = new Promise<string>((resolve) => {
    const onSignal = (sig: NodeJS.Signals): void => resolve(sig);
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    if (opts.durationS > 0) setTimeout(() => resolve('duration'), opts.durationS * 1000).unref();
  });
  const timer = setInterval(() => {
    if (opts.quiet) return;
    const c = readCounters(reflector.counters);
    progress(`echo: rx ${c.rx_packets}  tx ${c.tx_packets}  dropped malformed ${c.dropped_malformed}  socket drops ${c.rx_overflow}`);
  }, 1000);
  await stopped;
  clearInterval(timer);
  reflector.stop();
  const c = readCounters(reflector.counters);
  const dropped: Record<string, number> = {};
  for (const [k, v] of Object.entries(c)) if (k.startsWith('malformed_') && v > 0) dropped[k.slice('malformed_'.length)] = v;
  const summary = {
    rx_packets: c.rx_packets,
    tx_packets: c.tx_packets,
    tx_errors: c.tx_errors,
    socket_drops: c.rx_overflow,
    dropped_malformed: c.dropped_malformed,
    dropped_by_reason: dropped,
  };
  write(opts.json ? JSON.stringify(summary) : `echo: received ${c.rx_packets}, reflected ${c.tx_packets}, dropped malformed ${c.dropped_malformed}, socket drops ${c.rx_overflow}`);
  return 0;
}
