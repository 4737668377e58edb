/**
 * The option checks every native engine wrapper shares, so they all word
 * their errors one way: "Expected <what> for <name> but received <value> of
 * type <type>" (ERR_INVALID_ARG).
 */
import { isIPv4 } from 'node:net';
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

/** Throws unless value can name a Linux interface: 1..15 bytes, no '/', ':' or whitespace, not '.' or '..'. */
export function checkInterfaceName(name: string, value: unknown): string {
  const ok =
    typeof value === 'string' &&
    value.length > 0 &&
    Buffer.byteLength(value) <= MAX_INTERFACE_NAME_LENGTH &&
    !/[/\s:]/.test(value) &&
    value !== '.' &&
    value !== '..';
  if (!ok) invalidArg(`interface name of 1 to ${MAX_INTERFACE_NAME_LENGTH} characters without '/', ':' or whitespace`, name, value);
  return value as string;
}

/** Linux's IFNAMSIZ minus the terminating NUL. */
export const MAX_INTERFACE_NAME_LENGTH = 15;

const U64_MAX = (1n << 64n) - 1n;

export function checkU64(name: string, value: unknown): bigint {
  if (typeof value !== 'bigint' || value < 0n || value > U64_MAX) invalidArg('bigint between 0 and 2^64-1', name, value);
  return value as bigint;
}

/** Largest socket buffer we ask for (SO_RCVBUF/SO_SNDBUF take an int). */
export const MAX_SOCKET_BUFFER = 2 ** 31 - 1;
