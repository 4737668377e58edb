/**
 * A policy's rules compiled for lookup. Each match dimension answers "which
 * rules accept this value" as a bitset over rule positions; the first rule
 * is the lowest bit set in all of them. That keeps a lookup at a few binary
 * searches and Map probes plus one pass over n/32 words, whatever the rule
 * count, where a rule-by-rule walk would cost n times the per-rule checks.
 */
import { parseCidr, parseIPv4, parseIPv6Into } from './addresses';
import { IntervalIndex, setBit, type RuleRanges } from './interval-index';
import { patternFromText, patternKey } from './names';
import type { Action, MidstreamSetting, PolicyDecision, PolicyRule } from './types';

const TCP = 6;
const UDP = 17;

/**
 * Patterns of one name kind (TLS SNI, HTTP Host, DNS query; the proxy's
 * destination host): key -> offset of its rule bitset.
 */
export class NameTable {
  readonly offsets = new Map<string, number>();
  readonly sets: Uint32Array;

  constructor(words: number, patternsPerRule: ReadonlyArray<readonly string[] | null>) {
    const rulesByKey = new Map<string, number[]>();
    patternsPerRule.forEach((patterns, rule) => {
      for (const text of patterns ?? []) {
        const key = patternKey(patternFromText(text));
        const list = rulesByKey.get(key) ?? [];
        list.push(rule);
        rulesByKey.set(key, list);
      }
    });
    this.sets = new Uint32Array(Math.max(1, rulesByKey.size) * words);
    let offset = 0;
    for (const [key, rules] of rulesByKey) {
      for (const rule of rules) setBit(this.sets, rule, offset);
      this.offsets.set(key, offset);
      offset += words;
    }
  }

  /** ORs into `out` the rules with a pattern matching `name` (already normalised). */
  orMatches(name: string, out: Uint32Array): void {
    if (this.offsets.size === 0) return;
    this.orKey(`=${name}`, out);
    this.orKey(`.${name}`, out);
    let dot = name.indexOf('.');
    while (dot >= 0) {
      if (dot + 1 < name.length) {
        const parent = name.slice(dot + 1);
        this.orKey(`.${parent}`, out);
        this.orKey(`*${parent}`, out);
      }
      dot = name.indexOf('.', dot + 1);
    }
  }

  private orKey(key: string, out: Uint32Array): void {
    const offset = this.offsets.get(key);
    if (offset === undefined) return;
    const sets = this.sets;
    for (let w = 0; w < out.length; w++) out[w] |= sets[offset + w];
  }
}

function cidrRanges(cidrs: readonly string[] | null, family: 4 | 6): [bigint, bigint][] | null {
  if (cidrs === null) return null;
  const out: [bigint, bigint][] = [];
  for (const text of cidrs) {
    const parsed = parseCidr(text);
    if (parsed.ok && parsed.range.family === family) out.push([parsed.range.lo, parsed.range.hi]);
  }
  return out;
}

export type NameKind = 'tls' | 'http' | 'dns';

export interface PolicySettings {
  readonly defaultAction: 'allow' | 'drop';
  readonly midstream: MidstreamSetting;
  readonly tlsWithoutSni: Action;
  readonly tlsUnparsable: Action;
}

type FinalDecision = Extract<PolicyDecision, { final: true }>;

/** Every decision evaluate() can return, built once so that evaluating allocates nothing. */
export class Decisions {
  readonly pending: PolicyDecision = Object.freeze({ final: false });
  readonly byRule: readonly FinalDecision[];
  readonly byDefault: FinalDecision;
  readonly midstream: FinalDecision | null;
  readonly tlsWithoutSni: FinalDecision;
  readonly tlsUnparsable: FinalDecision;
  /**
   * True when a TCP flow that no rule decides may still end differently
   * depending on its payload (a TLS setting differs from the default).
   */
  readonly endDependsOnTls: boolean;

  constructor(rules: readonly PolicyRule[], settings: PolicySettings) {
    this.byRule = rules.map((rule) =>
      Object.freeze(
        rule.verifyDns === null
          ? { final: true as const, action: rule.action, rule, reason: 'rule' as const }
          : { final: true as const, action: rule.action, rule, reason: 'rule' as const, verifyDns: rule.verifyDns },
      ),
    );
    const setting = (action: Action, reason: FinalDecision['reason']): FinalDecision => Object.freeze({ final: true, action, rule: null, reason });
    this.byDefault = setting(settings.defaultAction, 'default');
    this.midstream = settings.midstream === 'inspect' ? null : setting(settings.midstream, 'midstream');
    this.tlsWithoutSni = setting(settings.tlsWithoutSni, 'tls-without-sni');
    this.tlsUnparsable = setting(settings.tlsUnparsable, 'tls-unparsable');
    this.endDependsOnTls = settings.tlsWithoutSni !== settings.defaultAction || settings.tlsUnparsable !== settings.defaultAction;
  }
}

export class PolicyIndex {
  readonly words: number;
  /** 1 where the rule matches on names (tls_sni, http_host, dns_query). */
  readonly hasNames: Uint8Array;
  private readonly src4: IntervalIndex;
  private readonly src6: IntervalIndex;
  private readonly dst4: IntervalIndex;
  private readonly dst6: IntervalIndex;
  private readonly protocol: IntervalIndex;
  private readonly port: IntervalIndex;
  private readonly endpointSets: Uint32Array;
  private readonly endpointOffsets = new Map<bigint, number>();
  private readonly endpointAny: number;
  private readonly names: Record<NameKind, NameTable>;
  /** Rules without name keys: they pass the name dimension whatever the payload. */
  private readonly noNames: Uint32Array;
  /** Every rule: the name dimension before the payload is known. */
  private readonly allRules: Uint32Array;
  private readonly nameScratch: Uint32Array;
  private readonly addressScratch = new Uint32Array(4);
  readonly decisions: Decisions;

  constructor(rules: readonly PolicyRule[], settings: PolicySettings) {
    this.decisions = new Decisions(rules, settings);
    const n = rules.length;
    const words = Math.max(1, Math.ceil(n / 32));
    this.words = words;
    const m = rules.map((r) => r.match);
    this.src4 = IntervalIndex.build(1, words, m.map((x) => cidrRanges(x.src, 4)));
    this.src6 = IntervalIndex.build(4, words, m.map((x) => cidrRanges(x.src, 6)));
    this.dst4 = IntervalIndex.build(1, words, m.map((x) => cidrRanges(x.dst, 4)));
    this.dst6 = IntervalIndex.build(4, words, m.map((x) => cidrRanges(x.dst, 6)));
    const protocols: RuleRanges = m.map((x) => x.protocol?.map((p) => [BigInt(p), BigInt(p)] as const) ?? null);
    this.protocol = IntervalIndex.build(1, words, protocols);
    this.port = IntervalIndex.build(1, words, m.map((x) => x.dstPort?.map((r) => [BigInt(r.lo), BigInt(r.hi)] as const) ?? null));

    const endpointIds = [...new Set(m.flatMap((x) => x.endpoint ?? []))];
    this.endpointSets = new Uint32Array((endpointIds.length + 1) * words);
    this.endpointAny = endpointIds.length * words;
    endpointIds.forEach((id, i) => this.endpointOffsets.set(id, i * words));
    m.forEach((x, rule) => {
      if (x.endpoint === null) {
        for (let i = 0; i <= endpointIds.length; i++) setBit(this.endpointSets, rule, i * words);
      } else {
        for (const id of x.endpoint) setBit(this.endpointSets, rule, this.endpointOffsets.get(id) as number);
      }
    });

    this.names = {
      tls: new NameTable(words, m.map((x) => x.tlsSni)),
      http: new NameTable(words, m.map((x) => x.httpHost)),
      dns: new NameTable(words, m.map((x) => x.dnsQuery)),
    };
    this.hasNames = new Uint8Array(n);
    this.noNames = new Uint32Array(words);
    this.allRules = new Uint32Array(words);
    m.forEach((x, rule) => {
      setBit(this.allRules, rule);
      if (x.tlsSni !== null || x.httpHost !== null || x.dnsQuery !== null) this.hasNames[rule] = 1;
      else setBit(this.noNames, rule);
    });
    this.nameScratch = new Uint32Array(words);
  }

  /**
   * Position (0-based) of the first rule whose address, protocol, port and
   * endpoint keys accept the flow and whose name keys accept `name` of
   * `kind`; or -1. `kind` 'pending' lets every name rule through (the
   * payload is not known yet) and 'none' none of them.
   */
  firstMatch(
    endpoint: bigint,
    src: string,
    dst: string,
    protocol: number,
    dstPort: number,
    kind: NameKind | 'pending' | 'none',
    name: string | null,
  ): number {
    let srcSets: Uint32Array;
    let srcAt: number;
    const key = this.addressScratch;
    let v4 = parseIPv4(src);
    if (v4 >= 0) {
      srcSets = this.src4.sets;
      srcAt = this.src4.find1(v4);
    } else if (parseIPv6Into(src, key)) {
      srcSets = this.src6.sets;
      srcAt = this.src6.find4(key);
    } else {
      srcSets = this.src4.sets;
      srcAt = this.src4.anyOffset;
    }
    let dstSets: Uint32Array;
    let dstAt: number;
    v4 = parseIPv4(dst);
    if (v4 >= 0) {
      dstSets = this.dst4.sets;
      dstAt = this.dst4.find1(v4);
    } else if (parseIPv6Into(dst, key)) {
      dstSets = this.dst6.sets;
      dstAt = this.dst6.find4(key);
    } else {
      dstSets = this.dst4.sets;
      dstAt = this.dst4.anyOffset;
    }
    const validProtocol = Number.isInteger(protocol) && protocol >= 0 && protocol <= 255;
    const protoAt = validProtocol ? this.protocol.find1(protocol) : this.protocol.anyOffset;
    // Port rules only exist with tcp/udp; other flows see only rules without ports.
    const portAt =
      (protocol === TCP || protocol === UDP) && Number.isInteger(dstPort) && dstPort >= 0 && dstPort <= 0xffff
        ? this.port.find1(dstPort)
        : this.port.anyOffset;
    const endpointAt = this.endpointOffsets.get(endpoint) ?? this.endpointAny;

    let nameSets: Uint32Array;
    if (kind === 'pending') {
      nameSets = protocol === TCP || protocol === UDP ? this.allRules : this.noNames;
    } else if (kind === 'none' || name === null) {
      nameSets = this.noNames;
    } else {
      nameSets = this.nameScratch;
      nameSets.set(this.noNames);
      this.names[kind].orMatches(name, nameSets);
    }

    const protoSets = this.protocol.sets;
    const portSets = this.port.sets;
    const endpointSets = this.endpointSets;
    for (let w = 0; w < this.words; w++) {
      const bits =
        srcSets[srcAt + w] &
        dstSets[dstAt + w] &
        protoSets[protoAt + w] &
        portSets[portAt + w] &
        endpointSets[endpointAt + w] &
        nameSets[w];
      if (bits !== 0) return (w << 5) + 31 - Math.clz32(bits & -bits);
    }
    return -1;
  }
}
