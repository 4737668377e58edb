/**
 * The policy engine's public shapes: what a loaded policy holds, what the
 * caller knows about a flow, and what the engine decides. The engine itself
 * (evaluate.ts) is pure; files, reloads and the CLI sit around it.
 */
import type { PolicyIndex } from './policy-index';

/** What happens to a flow. `alert` lets it through and logs it. */
export type Action = 'allow' | 'drop' | 'reject' | 'alert';
export const ACTIONS: readonly Action[] = ['allow', 'drop', 'reject', 'alert'];

/** Flows that arrive mid-stream (no TCP SYN seen): decide now, or judge on what they show. */
export type MidstreamSetting = 'allow' | 'drop' | 'inspect';

export interface PortRange {
  readonly lo: number;
  readonly hi: number;
}

/** A domain list a rule imported (domain_list), for explanations and logs. */
export interface DomainListRef {
  /** As written in the policy (relative to the policy file). */
  readonly path: string;
  readonly format: 'text' | 'json';
  readonly names: number;
}

/**
 * A rule's match keys after normalisation. `null` means "not given" (any).
 * Within a rule every given key must match; values in a list are
 * alternatives; the three name keys are alternatives among themselves.
 */
export interface RuleMatch {
  /** CIDRs as "192.0.2.0/24" or "2001:db8::/32" (a lone address gets /32 or /128). */
  readonly src: readonly string[] | null;
  readonly dst: readonly string[] | null;
  /** IP protocol numbers (6 tcp, 17 udp, 1 icmp, 58 icmpv6). */
  readonly protocol: readonly number[] | null;
  readonly dstPort: readonly PortRange[] | null;
  /** GWLB endpoint ids (the 64-bit number behind vpce-/eni- ids). */
  readonly endpoint: readonly bigint[] | null;
  /** Name patterns, lowercase punycode: `a.b` exact, `.a.b` domain and subdomains, `*.a.b` subdomains only. */
  readonly tlsSni: readonly string[] | null;
  readonly httpHost: readonly string[] | null;
  readonly dnsQuery: readonly string[] | null;
}

export interface PolicyRule {
  /** 1-based position in the rule list (first match wins). */
  readonly position: number;
  readonly id: string;
  /** Signature id for Suricata EVE alerts (default 1000000 + position). */
  readonly sid: number;
  readonly action: Action;
  readonly message: string;
  /** Where the rule starts in the policy file (1-based). */
  readonly line: number;
  readonly column: number;
  readonly match: RuleMatch;
  readonly domainLists: readonly DomainListRef[];
  /** verify_dns: the caller checks that the name resolves to the destination. */
  readonly verifyDns: { readonly onMismatch: Action } | null;
}

export interface Policy {
  /** The file it came from (or a label such as "<inline>"). */
  readonly source: string;
  /** sha256 hex of the policy text, for logs. */
  readonly digest: string;
  /** `default: deny` is drop. */
  readonly defaultAction: 'allow' | 'drop';
  readonly midstream: MidstreamSetting;
  /** TLS ClientHello without SNI that no rule decided (defaults to the default action). */
  readonly tlsWithoutSni: Action;
  /** A TLS record that does not parse as a ClientHello (defaults to the default action). */
  readonly tlsUnparsable: Action;
  readonly rules: readonly PolicyRule[];
  /** True when some flows cannot be decided before their first payload (name rules, TLS settings). */
  readonly needsPayload: boolean;
  readonly usesVerifyDns: boolean;
  /** Compiled lookup tables; evaluate() reads them. */
  readonly index: PolicyIndex;
}

/** What the application payload showed; undefined means no payload seen yet. */
export type AppFacts =
  | { readonly kind: 'tls'; readonly sni: string | null }
  | { readonly kind: 'tls-unparsable' }
  | { readonly kind: 'http'; readonly host: string | null }
  | { readonly kind: 'dns'; readonly query: string; readonly qtype: number }
  | { readonly kind: 'other' };

export interface FlowFacts {
  readonly endpoint: bigint;
  readonly src: string;
  readonly dst: string;
  /** IP protocol: 6 tcp, 17 udp, 1 icmp, 58 icmpv6. */
  readonly protocol: number;
  readonly srcPort: number;
  readonly dstPort: number;
  /** The flow's first packet seen was not a TCP SYN. */
  readonly midstream: boolean;
  readonly app?: AppFacts;
}

export type DecisionReason = 'rule' | 'default' | 'midstream' | 'tls-without-sni' | 'tls-unparsable';

export type PolicyDecision =
  | { readonly final: false }
  | {
      readonly final: true;
      readonly action: Action;
      /** null when the default or a top-level setting decided. */
      readonly rule: PolicyRule | null;
      readonly reason: DecisionReason;
      readonly verifyDns?: { readonly onMismatch: Action };
    };

export const PROTOCOL_NUMBERS = { tcp: 6, udp: 17, icmp: 1, icmpv6: 58 } as const;
