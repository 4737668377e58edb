/**
 * `verify_dns`: is this flow's destination an address its name (TLS SNI,
 * HTTP Host) resolves to? First from the DNS answers the appliance has
 * seen (the cache), failing that from a lookup of its own. Lookups are
 * bounded in time, shared between concurrent verifies of one name, and
 * remembered (positive answers for their TTL, failures for negativeTtlMs)
 * so a stream of flows to one name costs one query, not one per flow.
 */
import { Resolver } from 'node:dns/promises';
import { isIPv4 } from 'node:net';
import { checkInteger, expected } from '../../validate';
import { DNS_TYPE_A, DNS_TYPE_AAAA, type NameAddressCache } from './cache';
import { normaliseAddress, normaliseName } from './normalise';

/** A resolved address, with its TTL in seconds when the resolver knows it (else the cache's floor applies). */
export type ResolvedAddress = string | { address: string; ttl: number };
export type NameResolver = (name: string) => Promise<readonly ResolvedAddress[]>;

export interface NameVerifierOptions {
  /** Default: dnsResolver() over the system's name servers. */
  resolver?: NameResolver;
  /** A lookup taking longer counts as failed (default 2000 ms). */
  timeoutMs?: number;
  /** How long a failed or empty lookup is remembered before the name is looked up again (default 10 000 ms). */
  negativeTtlMs?: number;
  /** Lookup results remembered at most (default 10 000; oldest first out). */
  maxRemembered?: number;
}

export type VerifyResult = {
  /** 'unresolved': nothing seen and the lookup failed or found nothing; the caller's policy decides. */
  result: 'match' | 'mismatch' | 'unresolved';
  source: 'dns-seen' | 'lookup' | 'none';
  /** The addresses the decision was made against. */
  addresses: string[];
};

export interface NameVerifierStats {
  /** Lookups started (shared ones count once). */
  lookups: number;
  /** Lookups that failed or timed out. */
  lookupFailures: number;
  /** Verifies that joined a lookup already under way. */
  sharedLookups: number;
}

export const DEFAULT_VERIFY_TIMEOUT_MS = 2000;
export const DEFAULT_NEGATIVE_TTL_MS = 10_000;
const DEFAULT_MAX_REMEMBERED = 10_000;

interface LookupOutcome {
  untilMs: number;
  addresses: string[];
}

/** Not in DNS, or no records of this type: an empty answer, not a failure. */
const NO_DATA_CODES = new Set(['ENODATA', 'ENOTFOUND']);

/**
 * A NameResolver over node:dns: A and AAAA queried in parallel, with TTLs.
 * The default Resolver uses the system's name servers with one retry.
 */
export function dnsResolver(resolver: Resolver = new Resolver({ timeout: DEFAULT_VERIFY_TIMEOUT_MS / 2, tries: 2 })): NameResolver {
  return async (name) => {
    const results = await Promise.allSettled([resolver.resolve4(name, { ttl: true }), resolver.resolve6(name, { ttl: true })]);
    const found: ResolvedAddress[] = [];
    let failure: unknown = null;
    for (const r of results) {
      if (r.status === 'fulfilled') found.push(...r.value);
      else if (!NO_DATA_CODES.has((r.reason as NodeJS.ErrnoException).code ?? '')) failure = r.reason;
    }
    if (found.length === 0 && failure !== null) throw failure;
    return found;
  };
}

export class NameVerifier {
  private readonly cache: NameAddressCache;
  private readonly resolver: NameResolver;
  private readonly timeoutMs: number;
  private readonly negativeTtlMs: number;
  private readonly maxRemembered: number;
  /** Insertion order is lookup order, for the bound. */
  private readonly remembered = new Map<string, LookupOutcome>();
  private readonly inFlight = new Map<string, Promise<LookupOutcome>>();
  private readonly counts: NameVerifierStats = { lookups: 0, lookupFailures: 0, sharedLookups: 0 };

  constructor(cache: NameAddressCache, opts: NameVerifierOptions = {}) {
    this.cache = cache;
    this.timeoutMs = checkInteger('timeoutMs', opts.timeoutMs ?? DEFAULT_VERIFY_TIMEOUT_MS, 1, 60_000);
    this.negativeTtlMs = checkInteger('negativeTtlMs', opts.negativeTtlMs ?? DEFAULT_NEGATIVE_TTL_MS, 0, 86_400_000);
    this.maxRemembered = checkInteger('maxRemembered', opts.maxRemembered ?? DEFAULT_MAX_REMEMBERED, 1, 10_000_000);
    this.resolver = opts.resolver ?? dnsResolver(new Resolver({ timeout: Math.max(1, Math.floor(this.timeoutMs / 2)), tries: 2 }));
  }

  /**
   * Does `name` resolve to `address`? 'match' from the seen answers first;
   * otherwise a lookup (or a remembered one) decides. Rejects only for an
   * `address` that is not an IP address (a caller bug).
   */
  async verify(name: string, address: string, nowMs: number): Promise<VerifyResult> {
    const a = normaliseAddress(address);
    if (a === null) expected('an IP address', 'address', JSON.stringify(address));
    const n = normaliseName(name);
    if (n === null) return { result: 'unresolved', source: 'none', addresses: [] };

    const known = this.cache.addresses(n, nowMs);
    let outcome = this.rememberedOutcome(n, nowMs);
    if (known.includes(a)) {
      // Our own lookups are learned into the cache too; say where this address came from.
      return { result: 'match', source: outcome?.addresses.includes(a) ? 'lookup' : 'dns-seen', addresses: known };
    }
    outcome ??= await this.lookup(n, nowMs);
    if (outcome.addresses.length > 0) {
      return { result: outcome.addresses.includes(a) ? 'match' : 'mismatch', source: 'lookup', addresses: outcome.addresses };
    }
    if (known.length > 0) return { result: 'mismatch', source: 'dns-seen', addresses: known };
    return { result: 'unresolved', source: 'none', addresses: [] };
  }

  stats(): NameVerifierStats {
    return { ...this.counts };
  }

  private rememberedOutcome(name: string, nowMs: number): LookupOutcome | undefined {
    const outcome = this.remembered.get(name);
    if (outcome === undefined) return undefined;
    if (nowMs < outcome.untilMs) return outcome;
    this.remembered.delete(name);
    return undefined;
  }

  private lookup(name: string, nowMs: number): Promise<LookupOutcome> {
    const running = this.inFlight.get(name);
    if (running !== undefined) {
      this.counts.sharedLookups++;
      return running;
    }
    const started = this.runLookup(name, nowMs).finally(() => this.inFlight.delete(name));
    this.inFlight.set(name, started);
    return started;
  }

  private async runLookup(name: string, nowMs: number): Promise<LookupOutcome> {
    this.counts.lookups++;
    let answers: readonly ResolvedAddress[] = [];
    try {
      answers = await withTimeout(this.resolver(name), this.timeoutMs, name);
    } catch {
      this.counts.lookupFailures++;
    }
    const addresses = new Set<string>();
    let minTtlS = Infinity;
    const records = [];
    for (const answer of answers) {
      const text = typeof answer === 'string' ? answer : answer.address;
      const ttl = typeof answer === 'string' ? 0 : answer.ttl;
      const address = normaliseAddress(text);
      if (address === null) continue;
      addresses.add(address);
      minTtlS = Math.min(minTtlS, ttl);
      records.push({ name, type: isIPv4(address) ? DNS_TYPE_A : DNS_TYPE_AAAA, ttl, address });
    }
    this.cache.learnAnswers(records, nowMs);
    const untilMs = addresses.size > 0 ? nowMs + Math.max(minTtlS, this.cache.minTtlS) * 1000 : nowMs + this.negativeTtlMs;
    const outcome = { untilMs, addresses: [...addresses] };
    this.remembered.delete(name);
    this.remembered.set(name, outcome);
    if (this.remembered.size > this.maxRemembered) {
      const oldest = this.remembered.keys().next().value as string;
      this.remembered.delete(oldest);
    }
    return outcome;
  }
}

function withTimeout<T>(work: Promise<T>, ms: number, name: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`lookup of ${name} took longer than ${ms} ms`)), ms);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}
