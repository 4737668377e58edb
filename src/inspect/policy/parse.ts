/**
 * Policy YAML -> Policy. Every mistake is ERR_POLICY with file, line and
 * column. Schema (version 1):
 *
 *   version: 1                       # optional
 *   default: deny                    # allow | deny (deny = drop); default deny
 *   midstream: inspect               # allow | drop | inspect; default inspect
 *   tls_without_sni: drop            # action; default: the default action
 *   tls_unparsable: drop             # action; default: the default action
 *   rules:                           # ordered, first match wins
 *     - id: web                      # required, unique
 *       sid: 1000001                 # optional, default 1000000 + position
 *       action: allow                # allow | drop | reject | alert
 *       message: ...                 # optional, default: the rule explained
 *       src / dst: CIDR or list      # v4 or v6
 *       protocol: tcp                # tcp | udp | icmp | icmpv6 | any | 0-255, or list
 *       dst_port: [443, 8000-8080]   # needs protocol tcp and/or udp
 *       endpoint: vpce-0123456789abcdef0
 *       tls_sni / http_host / dns_query: name pattern or list
 *       domain_list: list.txt        # AWS Network Firewall domain list (text or JSON)
 *       verify_dns: true             # with tls_sni/http_host; on_mismatch: action (default drop)
 */
import { createHash } from 'node:crypto';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { parseDomainList } from './domain-list';
import { describeMatch } from './explain';
import { PolicyIndex } from './policy-index';
import { ACTIONS, PROTOCOL_NUMBERS } from './types';
import type { Action, DomainListRef, MidstreamSetting, Policy, PolicyRule, RuleMatch } from './types';
import { cidr, endpoint, namePattern, oneOf, portRange, protocol, unique } from './values';
import { YamlFile, describe, isScalar, isSeq, scalarText, type YamlNode } from './yaml-file';

export const SCHEMA_VERSION = 1;
export const SID_BASE = 1_000_000;
const MAX_SID = 0xffffffff;

const TOP_KEYS = ['version', 'default', 'midstream', 'tls_without_sni', 'tls_unparsable', 'rules'] as const;
const RULE_KEYS = [
  'id', 'sid', 'action', 'message', 'src', 'dst', 'protocol', 'dst_port', 'endpoint',
  'tls_sni', 'http_host', 'dns_query', 'domain_list', 'verify_dns', 'on_mismatch',
] as const;
type RuleKey = (typeof RULE_KEYS)[number];
const NAME_FIELDS = { tls_sni: 'tlsSni', http_host: 'httpHost', dns_query: 'dnsQuery' } as const;

/** Rule ids (shared with the proxy policy). */
export const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:/@-]{0,127}$/;

/** Reads a domain list by absolute path (throws the fs error when it cannot). */
export type ReadList = (absolutePath: string) => string;

type Draft = { -readonly [K in keyof RuleMatch]: RuleMatch[K] };

class RuleReader {
  readonly match: Draft = {
    src: null, dst: null, protocol: null, dstPort: null, endpoint: null, tlsSni: null, httpHost: null, dnsQuery: null,
  };
  readonly nodes = new Map<RuleKey, YamlNode>();
  id: string | null = null;
  sid: number | null = null;
  action: Action | null = null;
  message: string | null = null;
  verifyDns = false;
  onMismatch: Action | null = null;
  readonly lists: Array<{ ref: DomainListRef; action: Action | null; node: YamlNode }> = [];

  constructor(
    private readonly yaml: YamlFile,
    private readonly readList: ReadList,
  ) {}

  read(key: RuleKey, value: YamlNode | null, keyNode: YamlNode): void {
    const y: YamlFile = this.yaml;
    const values = (): YamlNode[] => y.scalars(value, key, keyNode);
    const single = (): YamlNode => {
      if (value === null || (isScalar(value) && value.value === null)) y.fail(keyNode, 'a value', key, 'nothing');
      if (!isScalar(value)) y.fail(value, 'a single value', key, describe(value));
      return value;
    };
    this.nodes.set(key, value ?? keyNode);
    switch (key) {
      case 'id': {
        const text = scalarText(single());
        if (text === null || !ID_PATTERN.test(text)) {
          y.fail(value, 'an id (up to 128 letters, digits and . _ : / @ -, starting with a letter or digit)', key, describe(value));
        }
        this.id = text;
        return;
      }
      case 'sid': {
        const n = single().toJSON();
        if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > MAX_SID) y.fail(value, `an integer between 1 and ${MAX_SID}`, key, describe(value));
        this.sid = n;
        return;
      }
      case 'action':
        this.action = oneOf(y, single(), ACTIONS, key);
        return;
      case 'on_mismatch':
        this.onMismatch = oneOf(y, single(), ACTIONS, key);
        return;
      case 'message': {
        const text = single().toJSON();
        if (typeof text !== 'string' || text.trim() === '') y.fail(value, 'a non-empty string', key, describe(value));
        this.message = text;
        return;
      }
      case 'verify_dns': {
        const flag = single().toJSON();
        if (typeof flag !== 'boolean') y.fail(value, 'true or false', key, describe(value));
        this.verifyDns = flag;
        return;
      }
      case 'src':
      case 'dst':
        this.match[key] = unique(values().map((node) => cidr(y, node, key)));
        return;
      case 'protocol': {
        const protocols = values().map((node) => protocol(y, node));
        this.match.protocol = protocols.includes(null) ? null : unique(protocols as number[]).sort((a, b) => a - b);
        return;
      }
      case 'dst_port':
        this.match.dstPort = values().map((node) => portRange(y, node));
        return;
      case 'endpoint':
        this.match.endpoint = [...new Set(values().map((node) => endpoint(y, node)))];
        return;
      case 'tls_sni':
      case 'http_host':
      case 'dns_query':
        // Merged with what a domain_list (in either key order) brought.
        this.addNames(NAME_FIELDS[key], values().map((node) => namePattern(y, node, key)));
        return;
      case 'domain_list':
        for (const node of values()) this.importList(node);
        return;
    }
  }

  private importList(node: YamlNode): void {
    const y: YamlFile = this.yaml;
    const path = scalarText(node);
    if (path === null || path.trim() === '') y.fail(node, 'a file path', 'domain_list', describe(node));
    // Named in errors as the user would find it from where the policy was named.
    const label = isAbsolute(path) ? path : join(dirname(y.file), path);
    let text: string;
    try {
      text = this.readList(resolve(label));
    } catch (err) {
      const reason = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
      y.fail(node, 'a readable domain list file', 'domain_list', `${JSON.stringify(path)} (${reason})`);
    }
    const list = parseDomainList(text, label);
    const ref: DomainListRef = { path, format: list.format, names: list.patterns.length };
    this.lists.push({ ref, action: list.action, node });
    if (list.tlsSni) this.addNames('tlsSni', list.patterns);
    if (list.httpHost) this.addNames('httpHost', list.patterns);
  }

  private addNames(field: 'tlsSni' | 'httpHost' | 'dnsQuery', patterns: readonly string[]): void {
    this.match[field] = unique([...(this.match[field] ?? []), ...patterns]);
  }
}

interface Settings {
  defaultAction: 'allow' | 'drop';
  midstream: MidstreamSetting;
  tlsWithoutSni: Action | null;
  tlsUnparsable: Action | null;
}

function readRule(yaml: YamlFile, node: YamlNode, position: number, readList: ReadList): RuleReader {
  const rule = new RuleReader(yaml, readList);
  for (const { key, keyNode, value } of yaml.entries(node, `rule ${position}`)) {
    if (!(RULE_KEYS as readonly string[]).includes(key)) {
      yaml.fail(keyNode, `one of ${RULE_KEYS.join(', ')}`, `a rule key`, JSON.stringify(key));
    }
    rule.read(key as RuleKey, value, keyNode);
  }
  return rule;
}

/** Cross-key checks of one rule, then the finished rule. */
function finishRule(yaml: YamlFile, node: YamlNode, position: number, r: RuleReader, sid: number): PolicyRule {
  const at = (key: RuleKey): YamlNode => r.nodes.get(key) as YamlNode;
  if (r.id === null) yaml.fail(node, 'an id key', `rule ${position}`, 'a rule without one');
  let action = r.action;
  for (const list of r.lists) {
    if (list.action === null) continue;
    if (action === null) action = list.action;
    else if (action !== list.action) {
      yaml.fail(r.nodes.get('action') ?? list.node, `action ${list.action} (the GeneratedRulesType of ${list.ref.path})`, 'action', JSON.stringify(action));
    }
  }
  if (action === null) yaml.fail(node, 'an action key', `rule ${position} (${r.id})`, 'a rule without one');
  const m = r.match;
  if (m.dstPort !== null && (m.protocol === null || m.protocol.some((p) => p !== PROTOCOL_NUMBERS.tcp && p !== PROTOCOL_NUMBERS.udp))) {
    yaml.fail(at('dst_port'), 'a rule whose protocol is tcp and/or udp (ports need one)', 'dst_port', m.protocol === null ? 'a rule for any protocol' : `protocol ${m.protocol.join(', ')}`);
  }
  if (r.nodes.has('on_mismatch') && !r.verifyDns) {
    yaml.fail(at('on_mismatch'), 'verify_dns: true in the same rule', 'on_mismatch', 'a rule without it');
  }
  if (r.verifyDns && m.tlsSni === null && m.httpHost === null) {
    yaml.fail(at('verify_dns'), 'a rule with tls_sni, http_host or domain_list (the name to check)', 'verify_dns', 'a rule without names');
  }
  const lists = r.lists.map((l) => l.ref);
  const verifyDns = r.verifyDns ? { onMismatch: r.onMismatch ?? 'drop' } : null;
  const where = yaml.where(node);
  return {
    position,
    id: r.id,
    sid,
    action,
    message: r.message ?? `${action} ${describeMatch(m, lists, verifyDns)}`,
    line: where.line,
    column: where.column,
    match: m,
    domainLists: lists,
    verifyDns,
  };
}

function readSettings(yaml: YamlFile, root: YamlNode): { settings: Settings; rules: YamlNode | null; rulesKey: YamlNode | null } {
  const settings: Settings = { defaultAction: 'drop', midstream: 'inspect', tlsWithoutSni: null, tlsUnparsable: null };
  let rules: YamlNode | null = null;
  let rulesKey: YamlNode | null = null;
  for (const { key, keyNode, value } of yaml.entries(root, 'the policy')) {
    const missing = value === null || (isScalar(value) && value.value === null);
    if (missing && key !== 'rules' && (TOP_KEYS as readonly string[]).includes(key)) yaml.fail(keyNode, 'a value', key, 'nothing');
    const v = value as YamlNode;
    switch (key) {
      case 'version':
        if (!isScalar(v) || v.value !== SCHEMA_VERSION) yaml.fail(v, `${SCHEMA_VERSION}`, key, describe(value));
        break;
      case 'default':
        settings.defaultAction = oneOf(yaml, v, ['allow', 'deny'], key) === 'allow' ? 'allow' : 'drop';
        break;
      case 'midstream':
        settings.midstream = oneOf(yaml, v, ['allow', 'drop', 'inspect'], key);
        break;
      case 'tls_without_sni':
        settings.tlsWithoutSni = oneOf(yaml, v, ACTIONS, key);
        break;
      case 'tls_unparsable':
        settings.tlsUnparsable = oneOf(yaml, v, ACTIONS, key);
        break;
      case 'rules':
        rules = value;
        rulesKey = keyNode;
        break;
      default:
        yaml.fail(keyNode, `one of ${TOP_KEYS.join(', ')}`, 'a top-level key', JSON.stringify(key));
    }
  }
  return { settings, rules, rulesKey };
}

/**
 * Parses and checks a policy. `source` names the file in errors and is
 * where relative domain_list paths start from.
 */
export function parsePolicy(text: string, source: string, readList: ReadList): Policy {
  const yaml: YamlFile = YamlFile.parse(text, source);
  const root = yaml.root;
  if (root === null) yaml.fail(null, 'a mapping with default and rules', 'the policy', 'an empty file');
  const { settings, rules: rulesNode, rulesKey } = readSettings(yaml, root);

  let ruleNodes: YamlNode[] = [];
  if (rulesNode !== null && !(isScalar(rulesNode) && rulesNode.value === null)) {
    if (!isSeq(rulesNode)) yaml.fail(rulesNode, 'a list of rules', 'rules', describe(rulesNode), rulesKey);
    ruleNodes = rulesNode.items.map((item) => {
      const node = yaml.resolve(item);
      if (node === null) yaml.fail(null, 'a rule (a mapping)', 'rules', 'nothing', rulesNode);
      return node;
    });
  }
  const readers = ruleNodes.map((node, i) => readRule(yaml, node, i + 1, readList));

  // ids and sids are unique; a generated sid is SID_BASE + position.
  const ids = new Map<string, number>();
  const sids = new Map<number, number>();
  const rules: PolicyRule[] = [];
  readers.forEach((r, i) => {
    const position = i + 1;
    if (r.id !== null && ids.has(r.id)) {
      const first = ids.get(r.id) as number;
      yaml.fail(r.nodes.get('id') as YamlNode, 'a unique id', 'id', `${JSON.stringify(r.id)} (already used by rule ${first} on line ${yaml.where(ruleNodes[first - 1]).line})`);
    }
    if (r.id !== null) ids.set(r.id, position);
    const sid = r.sid ?? SID_BASE + position;
    const other = sids.get(sid);
    if (other !== undefined) {
      const explicit = r.sid !== null ? (r.nodes.get('sid') as YamlNode) : (readers[other - 1].nodes.get('sid') as YamlNode);
      yaml.fail(explicit, 'a unique sid', 'sid', `${sid} (rules ${other} and ${position} would share it; unset sids are ${SID_BASE} + position)`);
    }
    sids.set(sid, position);
    rules.push(finishRule(yaml, ruleNodes[i], position, r, sid));
  });

  const finalSettings = {
    defaultAction: settings.defaultAction,
    midstream: settings.midstream,
    tlsWithoutSni: settings.tlsWithoutSni ?? settings.defaultAction,
    tlsUnparsable: settings.tlsUnparsable ?? settings.defaultAction,
  };
  const index = new PolicyIndex(rules, finalSettings);
  return {
    source,
    digest: createHash('sha256').update(text).digest('hex'),
    ...finalSettings,
    rules,
    needsPayload: rules.some((r) => index.hasNames[r.position - 1] === 1) || index.decisions.endDependsOnTls,
    usesVerifyDns: rules.some((r) => r.verifyDns !== null),
    index,
  };
}

