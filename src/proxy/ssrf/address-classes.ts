/**
 * Which destination addresses the proxy refuses (DESIGN.md, "Egress policy
 * conventions"), by class, so that a denial says why: the instance metadata
 * service, loopback, link-local, RFC 1918, unique-local, CGNAT, multicast,
 * broadcast, reserved space, IPv6 prefixes that carry an IPv4 address
 * (NAT64, 6to4, Teredo: a route to the IPv4 behind them), and the proxy's
 * own addresses.
 *
 * An `allow` range (a rule's allow_addresses) lets an address through
 * whatever its class, except the unspecified addresses (Linux connects
 * 0.0.0.0 to the local host). An allowed address that embeds an IPv4
 * (64:ff9b::a.b.c.d) is then judged by that IPv4 too, so allowing NAT64
 * does not open the private IPv4 space behind it.
 */
import { parseCidr, type CidrRange } from '../../inspect/policy/addresses';
import { GatehouseError } from '../../errors';
import { parseDestinationHost } from './host';

export type DeniedClass =
  | 'unspecified'
  | 'own-address'
  | 'loopback'
  | 'metadata'
  | 'link-local'
  | 'private'
  | 'unique-local'
  | 'cgnat'
  | 'multicast'
  | 'broadcast'
  | 'ipv4-embedding'
  | 'reserved'
  /** Not an IP address at all (a caller's mistake; refused rather than guessed). */
  | 'invalid';

interface ClassRange {
  readonly range: CidrRange;
  readonly name: DeniedClass;
}

function range(text: string): CidrRange {
  const parsed = parseCidr(text);
  if (!parsed.ok) throw new Error(`bad built-in range ${text}: ${parsed.problem}`);
  return parsed.range;
}

/**
 * Checked in order; the first range that holds the address names its
 * class (169.254.169.254 is 'metadata' before it is 'link-local').
 */
const CLASSES: readonly ClassRange[] = (
  [
    ['0.0.0.0/8', 'unspecified'],
    ['::/128', 'unspecified'],
    ['127.0.0.0/8', 'loopback'],
    ['::1/128', 'loopback'],
    // The instance metadata service (IMDS), IPv4 and Nitro IPv6.
    ['169.254.169.254/32', 'metadata'],
    ['fd00:ec2::254/128', 'metadata'],
    ['169.254.0.0/16', 'link-local'],
    ['fe80::/10', 'link-local'],
    ['10.0.0.0/8', 'private'],
    ['172.16.0.0/12', 'private'],
    ['192.168.0.0/16', 'private'],
    ['fc00::/7', 'unique-local'],
    ['100.64.0.0/10', 'cgnat'],
    ['224.0.0.0/4', 'multicast'],
    ['ff00::/8', 'multicast'],
    ['255.255.255.255/32', 'broadcast'],
    ['240.0.0.0/4', 'reserved'],
    // IETF protocol assignments (192.0.0.170/171: NAT64 discovery), 6to4 relay anycast, benchmarking.
    ['192.0.0.0/24', 'reserved'],
    ['192.88.99.0/24', 'reserved'],
    ['198.18.0.0/15', 'reserved'],
    ['64:ff9b::/96', 'ipv4-embedding'],
    ['2002::/16', 'ipv4-embedding'],
    // Teredo is 2001:0000::/32 exactly; 2001:db8::/32 (documentation) is another prefix.
    ['2001::/32', 'ipv4-embedding'],
  ] as const
).map(([text, name]) => ({ range: range(text), name }));

/** IPv6 outside global unicast (2000::/3) that no class above names: unassigned or special-purpose. */
const GLOBAL_UNICAST = range('2000::/3');

interface Address {
  readonly family: 4 | 6;
  readonly value: bigint;
  readonly text: string;
}

function parseAddress(text: string): Address | null {
  const host = parseDestinationHost(text);
  if (host.kind !== 'ip') return null;
  const parsed = parseCidr(host.address);
  return parsed.ok ? { family: host.family, value: parsed.range.lo, text: host.address } : null;
}

function inRange(a: Address, r: CidrRange): boolean {
  return a.family === r.family && a.value >= r.lo && a.value <= r.hi;
}

/** The class an address belongs to, or null for ordinary public unicast. */
function classOf(a: Address): DeniedClass | null {
  for (const c of CLASSES) if (inRange(a, c.range)) return c.name;
  if (a.family === 6 && !inRange(a, GLOBAL_UNICAST)) return 'reserved';
  return null;
}

/** The IPv4 that an IPv4-embedding IPv6 address leads to (NAT64, 6to4, the Teredo client), as text; null for others. */
function embeddedIPv4(a: Address): string | null {
  if (a.family !== 6) return null;
  const v = a.value;
  const word = (shift: bigint): number => Number((v >> shift) & 0xffffffffn);
  let v4: number;
  if (v >> 32n === 0x0064ff9b0000000000000000n) v4 = word(0n);
  else if (v >> 112n === 0x2002n) v4 = word(80n);
  else if (v >> 96n === 0x20010000n) v4 = ~word(0n) >>> 0; // Teredo stores the client address inverted.
  else return null;
  return `${v4 >>> 24}.${(v4 >>> 16) & 255}.${(v4 >>> 8) & 255}.${v4 & 255}`;
}

/** Address or CIDR list -> ranges; IPv4-mapped IPv6 entries become IPv4. Throws ERR_INVALID_ARG on a bad entry. */
function compileRanges(list: readonly string[], name: string): CidrRange[] {
  return list.map((entry) => {
    const host = entry.includes('/') ? null : parseDestinationHost(entry);
    const parsed = parseCidr(host?.kind === 'ip' ? host.address : entry);
    if (!parsed.ok) throw new GatehouseError('ERR_INVALID_ARG', `Expected an IPv4 or IPv6 address or CIDR for ${name} but received ${JSON.stringify(entry)}`);
    return parsed.range;
  });
}

/** Compiled lists, for frozen arrays only (a policy's allow_addresses): a mutable array may change behind a cache. */
const compiled = new WeakMap<readonly string[], CidrRange[]>();

function rangesOf(list: readonly string[], name: string): CidrRange[] {
  if (!Object.isFrozen(list)) return compileRanges(list, name);
  let ranges = compiled.get(list);
  if (ranges === undefined) {
    ranges = compileRanges(list, name);
    compiled.set(list, ranges);
  }
  return ranges;
}

export interface AddressAllowances {
  /** Ranges a rule allows explicitly (allow_addresses): any class but 'unspecified'. */
  readonly allow: readonly string[];
  /** The proxy's own addresses (or CIDRs). */
  readonly own: readonly string[];
}

function judge(a: Address, allow: readonly CidrRange[], own: readonly CidrRange[]): DeniedClass | null {
  const cls = classOf(a);
  if (cls === 'unspecified') return cls;
  if (allow.some((r) => inRange(a, r))) {
    const inner = embeddedIPv4(a);
    const v4 = inner === null ? null : parseAddress(inner);
    return v4 === null ? null : judge(v4, allow, own);
  }
  if (own.some((r) => inRange(a, r))) return 'own-address';
  return cls;
}

/**
 * null when the proxy may connect to `address`; else the class that denies
 * it. Any IP notation is accepted (IPv4-mapped IPv6 is judged as its
 * IPv4); anything that is not an address is 'invalid'. Ranges in `allow`
 * and `own` that are IPv4 apply to IPv4-mapped addresses too.
 */
export function deniedAddressReason(address: string, opts: AddressAllowances): DeniedClass | null {
  const memo = verdictsFor(opts);
  const known = memo?.get(address);
  if (known !== undefined) return known;
  const a = parseAddress(address);
  const verdict = a === null ? 'invalid' : judge(a, rangesOf(opts.allow, 'allow'), rangesOf(opts.own, 'own'));
  if (memo !== undefined) {
    if (memo.size >= MAX_VERDICTS) memo.clear();
    memo.set(address, verdict);
  }
  return verdict;
}

/**
 * Verdicts by address text, per pair of frozen lists (a policy's rule and
 * the proxy's own addresses): a busy proxy asks about the same few
 * addresses all day, and parsing them was a visible part of each request.
 * A verdict depends on nothing but the address and the two lists.
 */
const verdicts = new WeakMap<readonly string[], WeakMap<readonly string[], Map<string, DeniedClass | null>>>();
const MAX_VERDICTS = 4096;

function verdictsFor(opts: AddressAllowances): Map<string, DeniedClass | null> | undefined {
  if (!Object.isFrozen(opts.allow) || !Object.isFrozen(opts.own)) return undefined;
  let byOwn = verdicts.get(opts.allow);
  if (byOwn === undefined) {
    byOwn = new WeakMap();
    verdicts.set(opts.allow, byOwn);
  }
  let memo = byOwn.get(opts.own);
  if (memo === undefined) {
    memo = new Map();
    byOwn.set(opts.own, memo);
  }
  return memo;
}
