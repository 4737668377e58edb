/**
 * A bounded cache in front of the resolver. getaddrinfo runs on libuv's
 * thread pool and reads /etc/hosts and the resolver's files on every call:
 * per request it cost more CPU than forwarding the request itself. Squid
 * keeps an ipcache for the same reason.
 *
 * Only the answer is cached, never the verdict: every request still checks
 * every cached address against its own rule's allow_addresses and connects
 * to the checked address, so the SSRF defences are unchanged. Failures are
 * not cached (the next request asks again), and lookups of a name already
 * in flight share the one call.
 */
import type { LookupFunction, ResolvedAddress } from './resolve';

export interface LookupCacheOptions {
  /** How long an answer is reused. 0 turns the cache off (in-flight sharing stays). */
  ttlMs: number;
  /** Names kept at most; the oldest answer goes first. */
  maxEntries?: number;
  /** The clock (ms); tests give their own. */
  now?: () => number;
}

const DEFAULT_MAX_ENTRIES = 10_000;

interface CachedAnswer {
  readonly addresses: readonly ResolvedAddress[];
  readonly expires: number;
}

export function cachedLookup(lookup: LookupFunction, opts: LookupCacheOptions): LookupFunction {
  const ttlMs = opts.ttlMs;
  const maxEntries = opts.maxEntries ?? DEFAULT_MAX_ENTRIES;
  const now = opts.now ?? Date.now;
  const answers = new Map<string, CachedAnswer>();
  const inFlight = new Map<string, Promise<ResolvedAddress[]>>();

  const ask = (name: string): Promise<ResolvedAddress[]> => {
    const asked = Promise.resolve(lookup(name)).then(
      (found) => {
        inFlight.delete(name);
        if (ttlMs > 0 && Array.isArray(found) && found.length > 0) {
          answers.delete(name); // re-inserted last: Map order is the eviction order
          answers.set(name, { addresses: found.map((a) => ({ ...a })), expires: now() + ttlMs });
          if (answers.size > maxEntries) answers.delete(answers.keys().next().value as string);
        }
        return found;
      },
      (err: unknown) => {
        inFlight.delete(name);
        throw err;
      },
    );
    inFlight.set(name, asked);
    return asked;
  };

  return (name) => {
    const cached = answers.get(name);
    if (cached !== undefined) {
      // At once, no promise; a copy each time: the caller may not change what the next request is given.
      if (cached.expires > now()) return cached.addresses.map((a) => ({ ...a }));
      answers.delete(name);
    }
    return inFlight.get(name) ?? ask(name);
  };
}
