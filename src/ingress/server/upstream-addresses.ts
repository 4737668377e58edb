/**
 * The addresses the relay dials for upstream names: the relay connects to
 * IP literals only.
 */
import { lookup as dnsLookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { performance } from 'node:perf_hooks';

/**
 * Upstream names (a Lattice service's DNS name) are looked up at most this
 * often: Lattice's own records live 60 s, and a lookup per request would
 * cost more than the rest of the request.
 */
const ADDRESS_CACHE_MS = 10_000;

/** How a name is looked up (dns.lookup with all: true; tests give their own). */
export type AddressLookup = (host: string) => Promise<readonly { address: string }[]>;

const systemLookup: AddressLookup = (host) => dnsLookup(host, { all: true });

/**
 * Addresses of upstream names, looked up when missing or older than
 * ADDRESS_CACHE_MS, one lookup at a time per name, bounded by a deadline.
 * Requests use the first address that has not failed; a refused or
 * timed-out connection moves the name on to its next address, and once
 * each has failed the name is looked up again.
 */
export class UpstreamAddresses {
  private readonly known = new Map<string, { addresses: string[]; next: number; until: number }>();
  private readonly pending = new Map<string, Promise<string>>();

  constructor(
    private readonly deadlineMs: number,
    private readonly lookup: AddressLookup = systemLookup,
  ) {}

  /** The address now when it is known (or an IP literal), else a lookup. */
  get(host: string): string | Promise<string> {
    if (isIP(host) !== 0) return host;
    const hit = this.known.get(host);
    if (hit !== undefined && hit.until > performance.now()) return hit.addresses[hit.next];
    let lookingUp = this.pending.get(host);
    if (lookingUp === undefined) {
      lookingUp = withDeadline(this.lookup(host), this.deadlineMs)
        .then((found) => {
          if (found.length === 0) throw Object.assign(new Error(`no address for ${host}`), { code: 'ENOTFOUND' });
          this.known.set(host, { addresses: found.map((a) => a.address), next: 0, until: performance.now() + ADDRESS_CACHE_MS });
          return found[0].address;
        })
        .finally(() => this.pending.delete(host));
      this.pending.set(host, lookingUp);
    }
    return lookingUp;
  }

  /** A connection to `address` for `host` could not be made: the name's next address is used. */
  failed(host: string, address: string): void {
    const hit = this.known.get(host);
    if (hit === undefined || hit.addresses[hit.next] !== address) return;
    hit.next++;
    if (hit.next >= hit.addresses.length) this.known.delete(host);
  }

  clear(): void {
    this.known.clear();
  }
}

/** `work`, or an ETIMEDOUT error after `ms`. */
function withDeadline<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(Object.assign(new Error(`no answer within ${ms} ms`), { code: 'ETIMEDOUT' })), ms);
  });
  return Promise.race([work, late]).finally(() => clearTimeout(timer));
}
