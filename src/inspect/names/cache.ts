/**
 * Which addresses a name stands for, learned from DNS answers: the
 * knowledge behind `verify_dns` (a flow matched by TLS SNI or HTTP Host is
 * allowed only to an address its name resolves to, so a client cannot put
 * an allowed name in front of any address it likes).
 *
 * Pure: no I/O, and the clock is a parameter (`nowMs`). A and AAAA records
 * map names to addresses; CNAME records are kept as edges and followed when
 * asked, so an alias resolves however the answers were ordered or split
 * across messages, and a chain is only as valid as its shortest-lived link.
 * Bounded: past `maxEntries` records, the oldest learned go first.
 */
import { checkInteger } from '../../validate';
import { DNS_TYPE_A, DNS_TYPE_AAAA, DNS_TYPE_CNAME } from '../parse/dns';
import { normaliseAddress, normaliseName } from './normalise';

/** One resource record from a DNS answer section (type: 1 A, 28 AAAA, 5 CNAME; others are ignored). */
export interface DnsAnswerRecord {
  name: string;
  type: number;
  /** Seconds. */
  ttl: number;
  /** A and AAAA. */
  address?: string;
  /** CNAME. */
  target?: string;
}

export interface NameAddressCacheOptions {
  /** Records live at least this long whatever their TTL (default 60 s): clients connect a little after they resolve, and TTL 0 answers exist. */
  minTtlS?: number;
  /** Records kept at most (default 100 000). */
  maxEntries?: number;
}

export interface NameAddressCacheStats {
  entries: number;
  /** Records pushed out by the bound before they expired (or were pruned). */
  evicted: number;
  /** Records not learned: unknown type, or an address or target that does not parse. */
  ignored: number;
}

export { DNS_TYPE_A, DNS_TYPE_AAAA, DNS_TYPE_CNAME };
export const DEFAULT_MIN_TTL_S = 60;
export const DEFAULT_MAX_ENTRIES = 100_000;
/** CNAME links followed at most (resolvers give up around 8 to 16). */
export const MAX_CNAME_CHAIN = 16;

interface CacheRecord {
  name: string;
  kind: 'address' | 'cname';
  value: string;
  expiresMs: number;
}

interface NameEntry {
  addresses: Map<string, number>; // address -> expiresMs
  cnames: Map<string, number>; // target name -> expiresMs
}

export class NameAddressCache {
  readonly minTtlS: number;
  readonly maxEntries: number;
  /** Insertion order is learning order: the first entry is the oldest, evicted first. */
  private readonly records = new Map<string, CacheRecord>();
  private readonly byName = new Map<string, NameEntry>();
  private evicted = 0;
  private ignored = 0;

  constructor(opts: NameAddressCacheOptions = {}) {
    this.minTtlS = checkInteger('minTtlS', opts.minTtlS ?? DEFAULT_MIN_TTL_S, 0, 86_400);
    this.maxEntries = checkInteger('maxEntries', opts.maxEntries ?? DEFAULT_MAX_ENTRIES, 1, 100_000_000);
  }

  /** Learns the A, AAAA and CNAME records of an answer section; returns how many were learned. */
  learnAnswers(answers: readonly DnsAnswerRecord[], nowMs: number): number {
    let learned = 0;
    for (const rr of answers) {
      const name = normaliseName(rr.name);
      const ttl = Number.isFinite(rr.ttl) && rr.ttl > 0 ? rr.ttl : 0;
      const expiresMs = nowMs + Math.max(ttl, this.minTtlS) * 1000;
      let kind: CacheRecord['kind'];
      let value: string | null = null;
      if (rr.type === DNS_TYPE_A || rr.type === DNS_TYPE_AAAA) {
        kind = 'address';
        value = rr.address === undefined ? null : normaliseAddress(rr.address);
        // An A record holds IPv4 only (an IPv4-mapped AAAA has become IPv4 above, which is fine).
        if (rr.type === DNS_TYPE_A && value !== null && value.includes(':')) value = null;
      } else if (rr.type === DNS_TYPE_CNAME) {
        kind = 'cname';
        value = rr.target === undefined ? null : normaliseName(rr.target);
      } else {
        kind = 'address';
      }
      if (name === null || value === null || (kind === 'cname' && value === name)) {
        this.ignored++;
        continue;
      }
      this.put({ name, kind, value, expiresMs });
      learned++;
    }
    return learned;
  }

  /** True when `name` (directly or through CNAMEs) resolves to `address` at `nowMs`. */
  has(name: string, address: string, nowMs: number): boolean {
    const a = normaliseAddress(address);
    if (a === null) return false;
    return this.addresses(name, nowMs).includes(a);
  }

  /** Every unexpired address `name` resolves to, following CNAME chains. */
  addresses(name: string, nowMs: number): string[] {
    const start = normaliseName(name);
    if (start === null) return [];
    const found = new Set<string>();
    const visited = new Set([start]);
    let frontier = [start];
    for (let depth = 0; depth <= MAX_CNAME_CHAIN && frontier.length > 0; depth++) {
      const next: string[] = [];
      for (const n of frontier) {
        const entry = this.byName.get(n);
        if (entry === undefined) continue;
        for (const [address, expiresMs] of entry.addresses) if (nowMs < expiresMs) found.add(address);
        for (const [target, expiresMs] of entry.cnames) {
          if (nowMs < expiresMs && !visited.has(target)) {
            visited.add(target);
            next.push(target);
          }
        }
      }
      frontier = next;
    }
    return [...found];
  }

  /** Removes expired records; returns how many. Lookups ignore them anyway: this only frees memory. */
  prune(nowMs: number): number {
    let removed = 0;
    for (const [key, record] of this.records) {
      if (nowMs >= record.expiresMs) {
        this.remove(key, record);
        removed++;
      }
    }
    return removed;
  }

  get size(): number {
    return this.records.size;
  }

  stats(): NameAddressCacheStats {
    return { entries: this.records.size, evicted: this.evicted, ignored: this.ignored };
  }

  private put(record: CacheRecord): void {
    const key = `${record.kind}\u0000${record.name}\u0000${record.value}`;
    const existing = this.records.get(key);
    if (existing !== undefined) {
      // An earlier answer with a longer TTL still holds; relearning moves it to the young end.
      record.expiresMs = Math.max(record.expiresMs, existing.expiresMs);
      this.records.delete(key);
    }
    this.records.set(key, record);
    let entry = this.byName.get(record.name);
    if (entry === undefined) {
      entry = { addresses: new Map(), cnames: new Map() };
      this.byName.set(record.name, entry);
    }
    (record.kind === 'address' ? entry.addresses : entry.cnames).set(record.value, record.expiresMs);
    while (this.records.size > this.maxEntries) {
      const [oldestKey, oldest] = this.records.entries().next().value as [string, CacheRecord];
      this.remove(oldestKey, oldest);
      this.evicted++;
    }
  }

  private remove(key: string, record: CacheRecord): void {
    this.records.delete(key);
    const entry = this.byName.get(record.name);
    if (entry === undefined) return;
    (record.kind === 'address' ? entry.addresses : entry.cnames).delete(record.value);
    if (entry.addresses.size === 0 && entry.cnames.size === 0) this.byName.delete(record.name);
  }
}
