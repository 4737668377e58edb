/**
 * Proxy policy YAML -> ProxyPolicy. Every mistake is ERR_POLICY with file,
 * line and column (the inspect policy's YamlFile). Schema (version 1):
 *
 *   version: 1                  # optional
 *   default: deny               # allow | deny; default deny
 *   connect_ports: [443]        # ports (or "LO-HI") CONNECT may reach at all; default [443]; [] = no CONNECT
 *   rules:                      # ordered, first match wins
 *     - id: web                 # required, unique
 *       action: allow           # allow | deny (required)
 *       message: ...            # optional; default: the rule explained
 *       client: 10.0.0.0/8      # client CIDR(s) (from PROXY protocol, else the TCP peer)
 *       endpoint: vpce-0123456789abcdef0   # PrivateLink endpoint id(s) (PROXY v2 TLV)
 *       host: [.example.com, 192.0.2.0/24] # name patterns; CIDRs for IP destinations
 *       port: [443, 8000-8080]  # destination port(s)
 *       method: [GET, CONNECT]  # request method(s)
 *       allow_addresses: [10.1.0.0/16]     # allow rules: addresses the SSRF defences let through
 *
 * Names follow the inspect conventions (DESIGN.md): `example.com` exact,
 * `.example.com` the domain and its subdomains, `*.example.com` subdomains
 * only. Per-endpoint rule sets are rules with an `endpoint` key (a YAML
 * anchor names an endpoint once: `endpoint: &team-a vpce-...`, then `*team-a`).
 */
import { createHash } from 'node:crypto';
import { parseCidr } from '../../inspect/policy/addresses';
import { parseNamePattern, patternText } from '../../inspect/policy/names';
import { ID_PATTERN } from '../../inspect/policy/parse';
import { cidr, oneOf, portRange, unique } from '../../inspect/policy/values';
import { YamlFile, describe, isScalar, isSeq, scalarText, type YamlNode } from '../../inspect/policy/yaml-file';
import { parseDestinationHost } from '../ssrf/host';
import { describeProxyRule } from './explain';
import { ProxyIndex } from './proxy-index';
import { PROXY_ACTIONS, type PortRange, type ProxyAction, type ProxyPolicy, type ProxyRule, type ProxyRuleMatch } from './types';

export const PROXY_SCHEMA_VERSION = 1;
export const DEFAULT_CONNECT_PORTS: readonly PortRange[] = Object.freeze([Object.freeze({ lo: 443, hi: 443 })]);

const TOP_KEYS = ['version', 'default', 'connect_ports', 'rules'] as const;
const RULE_KEYS = ['id', 'action', 'message', 'client', 'endpoint', 'host', 'port', 'method', 'allow_addresses'] as const;
type RuleKey = (typeof RULE_KEYS)[number];

const ENDPOINT_PATTERN = /^vpce-[0-9a-f]{17}$/i;
/** An HTTP method is a token (RFC 9110 section 5.6.2). */
const METHOD_PATTERN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,32}$/;
const MAPPED = parseCidr('::ffff:0:0/96');

const NAME_OR_ADDRESS = 'a host name pattern (example.com, .example.com or *.example.com) or an IP address or CIDR';

/**
 * A CIDR (values.cidr) that is not IPv4-mapped IPv6: destinations and
 * clients are matched as the IPv4 they carry, so such a range would never match.
 */
function addressRange(y: YamlFile, node: YamlNode, key: string): string {
  const text = cidr(y, node, key);
  const range = parseCidr(text);
  if (MAPPED.ok && range.ok && range.range.family === 6 && range.range.lo >= MAPPED.range.lo && range.range.hi <= MAPPED.range.hi) {
    y.fail(node, 'an IPv4 range written as IPv4 (IPv4-mapped addresses are matched as the IPv4 they carry)', key, describe(node));
  }
  return text;
}

/** One `host` entry: a CIDR (for IP destinations) or a name pattern, normalised. */
function hostPattern(y: YamlFile, node: YamlNode): string {
  const text = scalarText(node)?.trim() ?? null;
  if (text === null || text === '') y.fail(node, NAME_OR_ADDRESS, 'host', describe(node));
  if (text.includes('/') || parseCidr(text).ok) {
    const lone = text.includes('/') ? null : parseDestinationHost(text);
    // A lone IPv4-mapped address is the IPv4 it carries.
    if (lone !== null && lone.kind === 'ip') return `${lone.address}/${lone.family === 4 ? 32 : 128}`;
    return addressRange(y, node, 'host');
  }
  const host = parseDestinationHost(text);
  if (host.kind === 'ip') y.fail(node, NAME_OR_ADDRESS, 'host', `${describe(node)} (an IP address in another notation: write it as ${host.address})`);
  const parsed = parseNamePattern(text);
  if (!parsed.ok) y.fail(node, NAME_OR_ADDRESS, 'host', `${describe(node)} (${parsed.problem})`);
  // Hosts that end in a number are addresses or nothing, never names (ssrf/host.ts).
  if (parseDestinationHost(parsed.pattern.name).kind !== 'name') {
    y.fail(node, NAME_OR_ADDRESS, 'host', `${describe(node)} (a name cannot end in a number; IP destinations take a CIDR)`);
  }
  return patternText(parsed.pattern);
}

function endpointId(y: YamlFile, node: YamlNode): string {
  const text = scalarText(node);
  if (text === null || !ENDPOINT_PATTERN.test(text)) {
    y.fail(node, 'a VPC endpoint id (vpce- and 17 hex digits, e.g. vpce-0123456789abcdef0)', 'endpoint', describe(node));
  }
  return text.toLowerCase();
}

function method(y: YamlFile, node: YamlNode): string {
  const text = scalarText(node);
  if (text === null || !METHOD_PATTERN.test(text)) y.fail(node, 'an HTTP method (GET, POST, CONNECT ...)', 'method', describe(node));
  return text.toUpperCase();
}

type Draft = { -readonly [K in keyof ProxyRuleMatch]: ProxyRuleMatch[K] };

interface RuleDraft {
  readonly node: YamlNode;
  readonly nodes: Map<RuleKey, YamlNode>;
  readonly match: Draft;
  id: string | null;
  action: ProxyAction | null;
  message: string | null;
  allowAddresses: string[];
}

function readRule(y: YamlFile, node: YamlNode, position: number): RuleDraft {
  const rule: RuleDraft = {
    node,
    nodes: new Map(),
    match: { client: null, endpoint: null, host: null, port: null, method: null },
    id: null,
    action: null,
    message: null,
    allowAddresses: [],
  };
  for (const { key, keyNode, value } of y.entries(node, `rule ${position}`)) {
    if (!(RULE_KEYS as readonly string[]).includes(key)) y.fail(keyNode, `one of ${RULE_KEYS.join(', ')}`, 'a rule key', JSON.stringify(key));
    const values = (): YamlNode[] => y.scalars(value, key, keyNode);
    const single = (): YamlNode => {
      if (value === null || (isScalar(value) && value.value === null)) y.fail(keyNode, 'a value', key, 'nothing');
      if (!isScalar(value)) y.fail(value, 'a single value', key, describe(value));
      return value;
    };
    rule.nodes.set(key as RuleKey, value ?? keyNode);
    switch (key as RuleKey) {
      case 'id': {
        const text = scalarText(single());
        if (text === null || !ID_PATTERN.test(text)) {
          y.fail(value, 'an id (up to 128 letters, digits and . _ : / @ -, starting with a letter or digit)', key, describe(value));
        }
        rule.id = text;
        break;
      }
      case 'action':
        rule.action = oneOf(y, single(), PROXY_ACTIONS, key);
        break;
      case 'message': {
        const text = single().toJSON();
        if (typeof text !== 'string' || text.trim() === '') y.fail(value, 'a non-empty string', key, describe(value));
        rule.message = text;
        break;
      }
      case 'client':
        rule.match.client = unique(values().map((n) => addressRange(y, n, key)));
        break;
      case 'endpoint':
        rule.match.endpoint = unique(values().map((n) => endpointId(y, n)));
        break;
      case 'host':
        rule.match.host = unique(values().map((n) => hostPattern(y, n)));
        break;
      case 'port':
        rule.match.port = values().map((n) => portRange(y, n, key));
        break;
      case 'method':
        rule.match.method = unique(values().map((n) => method(y, n)));
        break;
      case 'allow_addresses':
        rule.allowAddresses = unique(values().map((n) => addressRange(y, n, key)));
        break;
    }
  }
  return rule;
}

function finishRule(y: YamlFile, r: RuleDraft, position: number): ProxyRule {
  if (r.id === null) y.fail(r.node, 'an id key', `rule ${position}`, 'a rule without one');
  if (r.action === null) y.fail(r.node, 'an action key', `rule ${position} (${r.id})`, 'a rule without one');
  const allowNode = r.nodes.get('allow_addresses');
  if (allowNode !== undefined && r.action !== 'allow') {
    y.fail(allowNode, 'a rule with action allow (allow_addresses widens what an allowed request may reach)', 'allow_addresses', `a rule with action ${r.action}`);
  }
  const where = y.where(r.node);
  const match: ProxyRuleMatch = Object.freeze({ ...r.match });
  const allowAddresses = Object.freeze([...r.allowAddresses]);
  return Object.freeze({
    position,
    id: r.id,
    action: r.action,
    message: r.message ?? describeProxyRule({ action: r.action, match, allowAddresses }),
    line: where.line,
    column: where.column,
    match,
    allowAddresses,
  });
}

function connectPorts(y: YamlFile, value: YamlNode | null, keyNode: YamlNode): PortRange[] {
  // An explicit empty list turns CONNECT off.
  if (value !== null && isSeq(value) && value.items.length === 0) return [];
  return y.scalars(value, 'connect_ports', keyNode).map((n) => portRange(y, n, 'connect_ports'));
}

/** Parses and checks a proxy policy; `file` names it in errors. Throws ERR_POLICY. */
export function parseProxyPolicy(text: string, file: string): ProxyPolicy {
  const y: YamlFile = YamlFile.parse(text, file);
  const root = y.root;
  if (root === null) y.fail(null, 'a mapping with default and rules', 'the policy', 'an empty file');
  let defaultAction: ProxyAction = 'deny';
  let ports: readonly PortRange[] = DEFAULT_CONNECT_PORTS;
  let ruleNodes: YamlNode[] = [];
  for (const { key, keyNode, value } of y.entries(root, 'the policy')) {
    if (!(TOP_KEYS as readonly string[]).includes(key)) y.fail(keyNode, `one of ${TOP_KEYS.join(', ')}`, 'a top-level key', JSON.stringify(key));
    const missing = value === null || (isScalar(value) && value.value === null);
    if (key === 'rules') {
      if (missing) continue;
      if (!isSeq(value)) y.fail(value, 'a list of rules', 'rules', describe(value), keyNode);
      ruleNodes = value.items.map((item) => {
        const node = y.resolve(item);
        if (node === null) y.fail(null, 'a rule (a mapping)', 'rules', 'nothing', value);
        return node;
      });
      continue;
    }
    if (missing) y.fail(keyNode, 'a value', key, 'nothing');
    const v = value as YamlNode;
    if (key === 'version' && !(isScalar(v) && v.value === PROXY_SCHEMA_VERSION)) y.fail(v, `${PROXY_SCHEMA_VERSION}`, key, describe(v));
    if (key === 'default') defaultAction = oneOf(y, v, PROXY_ACTIONS, key);
    if (key === 'connect_ports') ports = Object.freeze(connectPorts(y, v, keyNode));
  }

  const drafts = ruleNodes.map((node, i) => readRule(y, node, i + 1));
  const ids = new Map<string, number>();
  const rules = drafts.map((r, i) => {
    const position = i + 1;
    if (r.id !== null) {
      const first = ids.get(r.id);
      if (first !== undefined) {
        y.fail(r.nodes.get('id') as YamlNode, 'a unique id', 'id', `${JSON.stringify(r.id)} (already used by rule ${first} on line ${y.where(ruleNodes[first - 1]).line})`);
      }
      ids.set(r.id, position);
    }
    return finishRule(y, r, position);
  });

  return Object.freeze({
    source: file,
    digest: createHash('sha256').update(text).digest('hex'),
    defaultAction,
    connectPorts: ports,
    rules: Object.freeze(rules),
    index: new ProxyIndex(rules, { defaultAction, connectPorts: ports }),
  });
}
