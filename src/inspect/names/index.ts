/** Name-to-address knowledge for `verify_dns`: the cache of seen DNS answers and the verifier with its lookup fallback. */
export {
  DEFAULT_MAX_ENTRIES,
  DEFAULT_MIN_TTL_S,
  DNS_TYPE_A,
  DNS_TYPE_AAAA,
  DNS_TYPE_CNAME,
  MAX_CNAME_CHAIN,
  NameAddressCache,
  type DnsAnswerRecord,
  type NameAddressCacheOptions,
  type NameAddressCacheStats,
} from './cache';
export {
  DEFAULT_NEGATIVE_TTL_MS,
  DEFAULT_VERIFY_TIMEOUT_MS,
  NameVerifier,
  dnsResolver,
  type NameResolver,
  type NameVerifierOptions,
  type NameVerifierStats,
  type ResolvedAddress,
  type VerifyResult,
} from './verifier';
export { normaliseAddress, normaliseName } from './normalise';
