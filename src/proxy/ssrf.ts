/**
 * The proxy's SSRF defences (DESIGN.md, "Egress policy conventions"):
 * destination hosts normalised in every IP notation (ssrf/host.ts),
 * addresses judged by class (ssrf/address-classes.ts), and names resolved
 * once, every address checked, the checked address the one connected to
 * (ssrf/resolve.ts), answers reused for a short while (ssrf/lookup-cache.ts). No networking besides the resolver call; a denial
 * never sends a packet to the denied address.
 */
export { parseDestinationHost, type DestinationHost } from './ssrf/host';
export { deniedAddressReason, type AddressAllowances, type DeniedClass } from './ssrf/address-classes';
export {
  resolveAndCheck,
  resolveAndCheckNow,
  systemLookup,
  type LookupFunction,
  type ResolvedAddress,
  type ResolveAndCheckOptions,
  type ResolveAndCheckResult,
} from './ssrf/resolve';
export { cachedLookup, type LookupCacheOptions } from './ssrf/lookup-cache';
