/**
 * The proxy policy's public shapes: a loaded policy, its rules, and the
 * decision for one request. The facts a decision is made on are
 * ProxyRequestFacts (src/proxy/types.ts), shared with the server and logs.
 */
import type { PortRange } from '../../inspect/policy/types';
import type { ProxyIndex } from './proxy-index';

export type { PortRange };

export type ProxyAction = 'allow' | 'deny';
export const PROXY_ACTIONS: readonly ProxyAction[] = ['allow', 'deny'];

/**
 * A rule's match keys after normalisation; null means "not given" (any).
 * Within a rule every given key must match; values in a list are alternatives.
 */
export interface ProxyRuleMatch {
  /** Client CIDRs, "10.0.0.0/8" or "2001:db8::/32". */
  readonly client: readonly string[] | null;
  /** VPC endpoint ids, lowercase "vpce-" and 17 hex digits. */
  readonly endpoint: readonly string[] | null;
  /**
   * Destination patterns: names (`a.b` exact, `.a.b` domain and
   * subdomains, `*.a.b` subdomains only; lowercase punycode) and, for IP
   * destinations, CIDRs (always written with a "/").
   */
  readonly host: readonly string[] | null;
  readonly port: readonly PortRange[] | null;
  /** Uppercase methods; CONNECT for tunnels. */
  readonly method: readonly string[] | null;
}

export interface ProxyRule {
  /** 1-based position in the rule list (first match wins). */
  readonly position: number;
  readonly id: string;
  readonly action: ProxyAction;
  /** As written, or the rule explained in words. */
  readonly message: string;
  /** Where the rule starts in the policy file (1-based). */
  readonly line: number;
  readonly column: number;
  readonly match: ProxyRuleMatch;
  /**
   * The explicit SSRF allowance (allow_addresses): ranges this rule's
   * requests may connect to even when their class is denied. Frozen; empty
   * when not given (and always on deny rules).
   */
  readonly allowAddresses: readonly string[];
}

export interface ProxyPolicy {
  /** The file it came from (or a label such as "<inline>"). */
  readonly source: string;
  /** sha256 hex of the policy text, for logs. */
  readonly digest: string;
  readonly defaultAction: ProxyAction;
  /** Ports a CONNECT may reach at all (checked before any rule); empty: no CONNECT. */
  readonly connectPorts: readonly PortRange[];
  readonly rules: readonly ProxyRule[];
  /** Compiled lookup tables and prebuilt decisions; evaluateProxyPolicy() reads them. */
  readonly index: ProxyIndex;
}

export type ProxyDecisionReason = 'rule' | 'default' | 'port';

export interface ProxyDecision {
  readonly action: ProxyAction;
  /** The deciding rule; null for the default and for a CONNECT port refusal. */
  readonly rule: ProxyRule | null;
  /** 'port': a CONNECT to a port outside connect_ports, refused before any rule. */
  readonly reason: ProxyDecisionReason;
  /** For the client (the 403 body) and the logs. */
  readonly message: string;
  /** The deciding rule's allow_addresses (for resolveAndCheck); empty otherwise. */
  readonly allowAddresses: readonly string[];
}
