/**
 * Argument checks shared by the encoder and the ENI helpers. Messages follow
 * the project's one shape: "Expected <what> for <name> but received <value>".
 */
import { GatehouseError } from '../errors';

/** How a received value is shown in a message: its value and, if not obvious, its type. */
export function describe(value: unknown): string {
  if (typeof value === 'number' || typeof value === 'bigint') return `${value} of type ${typeof value}`;
  if (typeof value === 'string') return `'${value}' of type string`;
  if (value instanceof Uint8Array) return `${value.length} bytes`;
  if (value === null || value === undefined) return String(value);
  return `a value of type ${typeof value}`;
}

/** An ERR_INVALID_ARG error; `received` is already worded ("264 bytes"). */
export function expected(what: string, name: string, received: string): GatehouseError {
  return new GatehouseError('ERR_INVALID_ARG', `Expected ${what} for ${name} but received ${received}`);
}

export function invalidArg(what: string, name: string, value: unknown): GatehouseError {
  return expected(what, name, describe(value));
}

/** Throws unless value is an integer in [min, max]. */
export function checkInteger(value: unknown, min: number, max: number, name: string): asserts value is number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw invalidArg(`an integer between ${min} and ${max}`, name, value);
  }
}

const U64_MAX = (1n << 64n) - 1n;

/** Throws unless value is a bigint in [0, 2^64 - 1]. */
export function checkU64(value: unknown, name: string): asserts value is bigint {
  if (typeof value !== 'bigint' || value < 0n || value > U64_MAX) {
    throw invalidArg('a bigint between 0 and 2^64-1', name, value);
  }
}
