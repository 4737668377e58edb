/**
 * A proxy policy compiled for lookup, on the inspect engine's scheme: each
 * match dimension (client, endpoint, host, port, method) answers "which
 * rules accept this value" as a bitset over rule positions, and the first
 * rule is the lowest bit set in all of them. A lookup costs a few binary
 * searches and Map probes plus one pass over n/32 words, whatever the rule
 * count. Every decision is built once, here, so evaluating allocates
 * nothing on the usual paths.
 */
import { parseCidr, parseIPv4, parseIPv6Into } from '../../inspect/policy/addresses';
import { IntervalIndex, setBit } from '../../inspect/policy/interval-index';
import { NameTable } from '../../inspect/policy/policy-index';
import { parseDestinationHost } from '../ssrf/host';
import { explainConnectPorts } from './explain';
import type { PortRange, ProxyAction, ProxyDecision, ProxyRule } from './types';

const NO_ADDRESSES: readonly string[] = Object.freeze([]);

/** Exact string keys (endpoint ids, methods) -> offset of the bitset of rules naming them; unknown keys get the rules without the key. */
class KeyIndex {
  readonly sets: Uint32Array;
  readonly anyOffset: number;
  private readonly offsets = new Map<string, number>();

  /** `lowercase`: keys are stored lowercase and a key that misses is tried again lowercased (endpoint ids). */
  constructor(
    words: number,
    perRule: ReadonlyArray<readonly string[] | null>,
    private readonly lowercase = false,
  ) {
    const keys = [...new Set(perRule.flatMap((k) => k ?? []))];
    this.sets = new Uint32Array((keys.length + 1) * words);
    this.anyOffset = keys.length * words;
    keys.forEach((key, i) => this.offsets.set(key, i * words));
    perRule.forEach((ruleKeys, rule) => {
      if (ruleKeys === null) {
        for (let i = 0; i <= keys.length; i++) setBit(this.sets, rule, i * words);
      } else {
        for (const key of ruleKeys) setBit(this.sets, rule, this.offsets.get(key) as number);
      }
    });
  }

  offsetOf(key: string | null): number {
    if (typeof key !== 'string') return this.anyOffset;
    const offset = this.offsets.get(key);
    if (offset !== undefined) return offset;
    return this.lowercase ? (this.offsets.get(key.toLowerCase()) ?? this.anyOffset) : this.anyOffset;
  }
}

function cidrRanges(cidrs: readonly string[] | null, family: 4 | 6): [bigint, bigint][] | null {
  if (cidrs === null) return null;
  const out: [bigint, bigint][] = [];
  for (const text of cidrs) {
    if (!text.includes('/')) continue; // a name pattern, not an address range
    const parsed = parseCidr(text);
    if (parsed.ok && parsed.range.family === family) out.push([parsed.range.lo, parsed.range.hi]);
  }
  return out;
}

function portRanges(ranges: readonly PortRange[] | null): [bigint, bigint][] | null {
  return ranges === null ? null : ranges.map((r) => [BigInt(r.lo), BigInt(r.hi)]);
}

/**
 * True for a host already in parseDestinationHost's name form (lowercase
 * a-z 0-9 - _, labels of 1-63, at most 253 in all) whose last label starts
 * with a letter, "-" or "_" and so cannot be a number: the usual request,
 * checked in one pass without allocating.
 */
function isNormalisedName(host: string): boolean {
  const n = host.length;
  if (n === 0 || n > 253) return false;
  let labelStart = 0;
  for (let i = 0; i < n; i++) {
    const c = host.charCodeAt(i);
    if (c === 0x2e) {
      if (i === labelStart || i - labelStart > 63) return false;
      labelStart = i + 1;
    } else if (!((c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x5f)) {
      return false;
    }
  }
  if (labelStart === n || n - labelStart > 63) return false;
  const first = host.charCodeAt(labelStart);
  return !(first >= 0x30 && first <= 0x39);
}

export interface ProxySettings {
  readonly defaultAction: ProxyAction;
  readonly connectPorts: readonly PortRange[];
}

export class ProxyIndex {
  readonly words: number;
  readonly byRule: readonly ProxyDecision[];
  readonly byDefault: ProxyDecision;
  /** A CONNECT to a port outside connect_ports. */
  readonly connectPortDenied: ProxyDecision;
  private readonly connectPorts: Uint32Array;
  private readonly client4: IntervalIndex;
  private readonly client6: IntervalIndex;
  private readonly host4: IntervalIndex;
  private readonly host6: IntervalIndex;
  private readonly hostNames: NameTable;
  /** Rules without a host key: the host dimension for names and for hosts that do not parse. */
  private readonly noHost: Uint32Array;
  private readonly port: IntervalIndex;
  private readonly endpoint: KeyIndex;
  private readonly method: KeyIndex;
  private readonly nameScratch: Uint32Array;
  private readonly addressScratch = new Uint32Array(4);

  constructor(rules: readonly ProxyRule[], settings: ProxySettings) {
    const words = Math.max(1, Math.ceil(rules.length / 32));
    this.words = words;
    const m = rules.map((r) => r.match);
    this.client4 = IntervalIndex.build(1, words, m.map((x) => cidrRanges(x.client, 4)));
    this.client6 = IntervalIndex.build(4, words, m.map((x) => cidrRanges(x.client, 6)));
    this.host4 = IntervalIndex.build(1, words, m.map((x) => cidrRanges(x.host, 4)));
    this.host6 = IntervalIndex.build(4, words, m.map((x) => cidrRanges(x.host, 6)));
    this.hostNames = new NameTable(words, m.map((x) => (x.host === null ? null : x.host.filter((h) => !h.includes('/')))));
    this.noHost = new Uint32Array(words);
    m.forEach((x, rule) => {
      if (x.host === null) setBit(this.noHost, rule);
    });
    this.nameScratch = new Uint32Array(words);
    this.port = IntervalIndex.build(1, words, m.map((x) => portRanges(x.port)));
    this.endpoint = new KeyIndex(words, m.map((x) => x.endpoint), true);
    this.method = new KeyIndex(words, m.map((x) => x.method));
    this.connectPorts = Uint32Array.from(settings.connectPorts.flatMap((r) => [r.lo, r.hi]));

    this.byRule = rules.map((rule) =>
      Object.freeze({ action: rule.action, rule, reason: 'rule' as const, message: rule.message, allowAddresses: rule.allowAddresses }),
    );
    this.byDefault = Object.freeze({
      action: settings.defaultAction,
      rule: null,
      reason: 'default' as const,
      message: `no rule matched (default ${settings.defaultAction})`,
      allowAddresses: NO_ADDRESSES,
    });
    this.connectPortDenied = Object.freeze({
      action: 'deny' as const,
      rule: null,
      reason: 'port' as const,
      message: explainConnectPorts(settings.connectPorts),
      allowAddresses: NO_ADDRESSES,
    });
  }

  /** True when a CONNECT may reach `port` at all. */
  connectAllowed(port: number): boolean {
    const ranges = this.connectPorts;
    for (let i = 0; i < ranges.length; i += 2) if (port >= ranges[i] && port <= ranges[i + 1]) return true;
    return false;
  }

  /**
   * Position (0-based) of the first rule that accepts the request, or -1.
   * Values that do not parse match only the rules that do not constrain
   * them. `host` should be parseDestinationHost's output; anything else is
   * normalised here first, on a slower path.
   */
  firstMatch(client: string, endpoint: string | null, host: string, port: number, method: string): number {
    const key = this.addressScratch;
    // Typed callers never pass anything else, but facts come from the network: never throw.
    if (typeof client !== 'string') client = '';
    if (typeof host !== 'string') host = '';

    let clientSets = this.client4.sets;
    let clientAt = this.client4.anyOffset;
    const c4 = parseIPv4(client);
    if (c4 >= 0) {
      clientAt = this.client4.find1(c4);
    } else if (parseIPv6Into(client, key)) {
      // A dual-stack socket reports IPv4 clients as ::ffff:a.b.c.d.
      if (key[0] === 0 && key[1] === 0 && key[2] === 0xffff) {
        clientAt = this.client4.find1(key[3]);
      } else {
        clientSets = this.client6.sets;
        clientAt = this.client6.find4(key);
      }
    }

    let hostSets: Uint32Array = this.noHost;
    let hostAt = 0;
    const h4 = parseIPv4(host);
    if (h4 >= 0) {
      hostSets = this.host4.sets;
      hostAt = this.host4.find1(h4);
    } else if (isNormalisedName(host)) {
      hostSets = this.nameScratch;
      hostSets.set(this.noHost);
      this.hostNames.orMatches(host, hostSets);
    } else {
      const parsed = parseDestinationHost(host);
      if (parsed.kind === 'ip') {
        if (parsed.family === 4) {
          hostSets = this.host4.sets;
          hostAt = this.host4.find1(parseIPv4(parsed.address));
        } else {
          parseIPv6Into(parsed.address, key);
          hostSets = this.host6.sets;
          hostAt = this.host6.find4(key);
        }
      } else if (parsed.kind === 'name') {
        hostSets = this.nameScratch;
        hostSets.set(this.noHost);
        this.hostNames.orMatches(parsed.name, hostSets);
      }
    }

    const portAt = Number.isInteger(port) && port >= 0 && port <= 0xffff ? this.port.find1(port) : this.port.anyOffset;
    const portSets = this.port.sets;
    const endpointAt = this.endpoint.offsetOf(endpoint);
    const endpointSets = this.endpoint.sets;
    const methodAt = this.method.offsetOf(method);
    const methodSets = this.method.sets;
    for (let w = 0; w < this.words; w++) {
      const bits = clientSets[clientAt + w] & hostSets[hostAt + w] & portSets[portAt + w] & endpointSets[endpointAt + w] & methodSets[methodAt + w];
      if (bits !== 0) return (w << 5) + 31 - Math.clz32(bits & -bits);
    }
    return -1;
  }
}
