/**
 * The echo reflector (native/src/reflector.cc): validates its options,
 * starts it, and checks that the addon speaks the counter table of
 * counters.ts. Also home of the small option checks the engine wrappers
 * share, so every wrapper words its errors the same way.
 */
import { isIPv4 } from 'node:net';
import type { NativeReflector, ReflectorOptions } from './binding';
import { loadNative } from './addon';
import { checkCounterNames, REFLECTOR_COUNTER_NAMES, type NamedCounters, type ReflectorCounterName } from './counters';
import { GatehouseError } from '../errors';

/** How a received value is shown in a validation message. */
function shown(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'object' && value !== null) return Array.isArray(value) ? 'an array' : 'an object';
  return String(value);
}

/** Throws the one validation message shape: "Expected <what> for <name> but received <value> of type <type>". */
export function invalidArg(what: string, name: string, value: unknown): never {
  throw new GatehouseError('ERR_INVALID_ARG', `Expected ${what} for ${name} but received ${shown(value)} of type ${typeof value}`);
}

export function checkInteger(name: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    invalidArg(`integer between ${min} and ${max}`, name, value);
  }
  return value;
}

export function checkBoolean(name: string, value: unknown): boolean {
  if (typeof value !== 'boolean') invalidArg('boolean', name, value);
  return value;
}

export function checkIPv4(name: string, value: unknown): string {
  if (typeof value !== 'string' || !isIPv4(value)) invalidArg('IPv4 address', name, value);
  return value;
}

/** Largest socket buffer we ask for (SO_RCVBUF/SO_SNDBUF take an int). */
export const MAX_SOCKET_BUFFER = 2 ** 31 - 1;

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
