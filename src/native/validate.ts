/**
 * The checks only the native engine wrappers need (interface names, socket
 * buffer sizes). The shared ones live in src/validate.ts and are re-exported
 * here so every wrapper keeps importing its checks from './validate'.
 */
import { invalidArg } from '../validate';

export { checkBoolean, checkInteger, checkIPv4, checkU64, expected, invalidArg } from '../validate';

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

/** Largest socket buffer we ask for (SO_RCVBUF/SO_SNDBUF take an int). */
export const MAX_SOCKET_BUFFER = 2 ** 31 - 1;
