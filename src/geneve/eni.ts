/**
 * The GWLB endpoint ENI id as text. gwlbtun hands hook scripts the id as
 * 17-digit zero-padded lowercase hex, so that `vpce-<that>` is the VPC
 * endpoint id (DESIGN.md; its help text wrongly says 16 digits).
 */
import { checkU64, invalidArg } from '../validate';

export const ENI_HEX_DIGITS = 17;

/** eni 0x123456789abcdef -> "00123456789abcdef". */
export function eniIdToString(eni: bigint): string {
  checkU64('eni', eni);
  return eni.toString(16).padStart(ENI_HEX_DIGITS, '0');
}

/** The VPC endpoint id GWLB's ENI id stands for: "vpce-00123456789abcdef". */
export function eniIdToEndpointId(eni: bigint): string {
  return `vpce-${eniIdToString(eni)}`;
}

const ENI_TEXT = /^(?:vpce-)?([0-9a-fA-F]{1,17})$/;

/**
 * Parses what eniIdToString or eniIdToEndpointId wrote (any case, leading
 * zeros optional). Throws ERR_INVALID_ARG for anything else, or for a value
 * that does not fit in 64 bits.
 */
export function parseEniId(text: string): bigint {
  const m = typeof text === 'string' ? ENI_TEXT.exec(text) : null;
  if (m === null) invalidArg('1 to 17 hex digits, optionally after "vpce-",', 'eni id', text);
  const eni = BigInt(`0x${m[1]}`);
  if (eni >> 64n !== 0n) invalidArg('an ENI id that fits in 64 bits', 'eni id', text);
  return eni;
}
