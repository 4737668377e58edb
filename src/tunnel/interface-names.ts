/**
 * The TUN interface names gwlbtun gives an endpoint: `gwi-<X>` (packets in
 * from the endpoint) and `gwo-<X>` (packets to send back), X = the endpoint's
 * ENI id in base 60. Hook scripts, iptables rules and monitoring written for
 * gwlbtun match these names, so they must be exactly gwlbtun's.
 *
 * gwlbtun's digit string is 0-9a-zA-Z, but a digit is `value % 60`, so only
 * the first 60 characters (up to 'X') ever appear. Most significant digit
 * first, no padding, and 0 is "0" (its loop always writes the last digit).
 * A 64-bit id needs at most 11 digits: "gwi-" + 11 = 15 characters, Linux's
 * IFNAMSIZ - 1.
 */
import { checkU64 } from '../validate';

export const BASE60_ALPHABET = '0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWX';
export const INGRESS_PREFIX = 'gwi-';
export const EGRESS_PREFIX = 'gwo-';
/** Linux interface names hold at most IFNAMSIZ - 1 = 15 characters. */
export const MAX_INTERFACE_NAME = 15;

/** 0n -> "0", 59n -> "X", 60n -> "10", 2^64-1 -> "uur953OEv0f". */
export function toBase60(id: bigint): string {
  checkU64('id', id);
  let rest = id;
  let text = '';
  do {
    text = BASE60_ALPHABET[Number(rest % 60n)] + text;
    rest /= 60n;
  } while (rest > 0n);
  return text;
}

export interface InterfaceNames {
  gwi: string;
  gwo: string;
}

/** The pair gwlbtun creates for endpoint `eni`. */
export function interfaceNames(eni: bigint): InterfaceNames {
  const x = toBase60(eni);
  return { gwi: INGRESS_PREFIX + x, gwo: EGRESS_PREFIX + x };
}

const NAME = /^gw[io]-([0-9a-zA-X]{1,11})$/;

/**
 * The ENI id behind a gwi-/gwo- name, or undefined if the name is not one
 * gwlbtun could have made (wrong prefix, digit outside the alphabet, a
 * leading zero, or a value over 64 bits): the inverse of interfaceNames,
 * for tools and tests that read interface lists.
 */
export function eniFromInterfaceName(name: string): bigint | undefined {
  const m = NAME.exec(name);
  if (m === null) return undefined;
  const digits = m[1];
  if (digits.length > 1 && digits[0] === '0') return undefined;
  let value = 0n;
  for (const ch of digits) value = value * 60n + BigInt(BASE60_ALPHABET.indexOf(ch));
  return value >> 64n === 0n ? value : undefined;
}
