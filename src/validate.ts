/**
 * The argument checks every module shares, so all of them word their errors
 * one way (ERR_INVALID_ARG): "Expected <what> for <name> but received <value>",
 * where <value> is the value and its type ("5 of type number") or, for bytes,
 * their count ("264 bytes").
 */
import { isIPv4 } from 'node:net';
import { GatehouseError } from './errors';

/** How a received value is shown in a validation message. */
function received(value: unknown): string {
  // A byte array's length says more than its contents or "an object".
  if (value instanceof Uint8Array) return `${value.length} bytes`;
  const shown =
    typeof value === 'string'
      ? JSON.stringify(value)
      : typeof value === 'object' && value !== null
        ? Array.isArray(value)
          ? 'an array'
          : 'an object'
        : String(value);
  return `${shown} of type ${typeof value}`;
}

/** Throws the one message shape for a caller that words the received value itself ("264 bytes"). */
export function expected(what: string, name: string, receivedText: string): never {
  throw new GatehouseError('ERR_INVALID_ARG', `Expected ${what} for ${name} but received ${receivedText}`);
}

/** Throws the one message shape for `value`: "Expected <what> for <name> but received <value> of type <type>". */
export function invalidArg(what: string, name: string, value: unknown): never {
  return expected(what, name, received(value));
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

const U64_MAX = (1n << 64n) - 1n;

export function checkU64(name: string, value: unknown): bigint {
  if (typeof value !== 'bigint' || value < 0n || value > U64_MAX) invalidArg('bigint between 0 and 2^64-1', name, value);
  return value;
}
