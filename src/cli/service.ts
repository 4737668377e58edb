/**
 * How every long-running command (tunnel, inspect, proxy) lives: start,
 * then wait for a stop signal, then stop — with the handlers installed
 * before starting (work can arrive while starting), a second stop signal
 * logged rather than fatal (so shutdown work such as DESTROY hooks or a
 * drain still completes), SIGHUP handed to the service when it reloads, and
 * every handler removed at the end.
 */
import type { Logger } from '../observe/log';

export interface Service {
  start(): Promise<void>;
  stop(): Promise<void>;
}

export interface ServiceSignals {
  /** Signals that stop the service. */
  stop: readonly NodeJS.Signals[];
  /** SIGHUP's handler (reload); absent: SIGHUP is not handled here (list it in `stop` to stop on it). */
  hangup?: () => void;
  /** Words for the log line when stopping begins (default "shutting down"). */
  stopping?: string;
}

export async function runService(service: Service, log: Pick<Logger<'core'>, 'important' | 'warning'>, signals: ServiceSignals): Promise<void> {
  let stopping = false;
  let stop!: (signal: NodeJS.Signals) => void;
  const signalled = new Promise<NodeJS.Signals>((resolve) => (stop = resolve));
  const onStop = (signal: NodeJS.Signals): void => {
    if (stopping) log.warning('core', 'already shutting down', { signal });
    stopping = true;
    stop(signal);
  };
  const onHangup = (): void => signals.hangup?.();
  for (const s of signals.stop) process.on(s, onStop);
  if (signals.hangup) process.on('SIGHUP', onHangup);
  try {
    try {
      await service.start();
    } catch (err) {
      await service.stop();
      throw err;
    }
    const signal = await signalled;
    log.important('core', signals.stopping ?? 'shutting down', { signal });
    await service.stop();
  } finally {
    for (const s of signals.stop) process.off(s, onStop);
    if (signals.hangup) process.off('SIGHUP', onHangup);
  }
}
