/**
 * Why a datagram is not a valid GWLB GENEVE packet. The order is the order in
 * which both decoders (this TypeScript codec and native/src/geneve.cc) check,
 * so that the same bytes always give the same reason in both, and the index of
 * a reason is its index in the native counter blocks.
 */
export const GENEVE_REASONS = [
  'truncated_header', // fewer than 8 bytes
  'bad_version', // version field != 0
  'options_past_datagram', // 8 + optlen*4 > datagram length
  'option_past_area', // an option header or its data runs past the option area
  'eni_missing', // AWS option class 0x0108 type 1 absent
  'eni_bad_length', // ... present but not 8 bytes of data
  'attachment_missing', // type 2 absent
  'attachment_bad_length',
  'cookie_missing', // type 3 absent
  'cookie_bad_length', // ... present but not 4 bytes of data
  'bad_protocol', // protocol type not 0x0800 / 0x86DD
  'ip_version_mismatch', // inner IP version nibble disagrees with protocol type
  'inner_truncated', // inner packet shorter than its IP header
] as const;

export type GeneveReason = (typeof GENEVE_REASONS)[number];
