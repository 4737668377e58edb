/**
 * The echo reflector (native/src/reflector.cc): validates its options,
 * starts it, and checks that the addon speaks the counter table of
 * counters.ts.
 */
import type { NativeReflector, ReflectorOptions } from './binding';
import { loadNative } from './addon';
import { checkCounterNames, REFLECTOR_COUNTER_NAMES, type NamedCounters, type ReflectorCounterName } from './counters';
import { GatehouseError } from '../errors';
import { checkBoolean, checkInteger, checkIPv4, MAX_SOCKET_BUFFER } from './validate';

export interface Reflector extends NativeReflector {
  readonly counters: NamedCounters<ReflectorCounterName>;
}

/** Starts the reflector; throws ERR_INVALID_ARG, ERR_NATIVE_START or ERR_NATIVE_CONTRACT. */
export function startReflector(opts: ReflectorOptions): Reflector {
  const checked: ReflectorOptions = {
    bind: checkIPv4('bind', opts.bind),
    port: checkInteger('port', opts.port, 0, 65535),
    threads: checkInteger('threads', opts.threads, 1, 16),
    rcvbuf: checkInteger('rcvbuf', opts.rcvbuf, 0, MAX_SOCKET_BUFFER),
    sndbuf: checkInteger('sndbuf', opts.sndbuf, 0, MAX_SOCKET_BUFFER),
    batch: checkInteger('batch', opts.batch, 1, 1024),
    validate: checkBoolean('validate', opts.validate),
  };
  let native: NativeReflector;
  try {
    native = loadNative().startReflector(checked);
  } catch (err) {
    throw new GatehouseError(
      'ERR_NATIVE_START',
      `Could not start the reflector on ${checked.bind}:${checked.port}: ${(err as Error).message}`,
      { cause: err },
    );
  }
  let counters: NamedCounters<ReflectorCounterName>;
  try {
    counters = checkCounterNames('reflector', native.counters, REFLECTOR_COUNTER_NAMES);
  } catch (err) {
    native.stop();
    throw err;
  }
  return { counters, port: native.port, stop: () => native.stop() };
}
