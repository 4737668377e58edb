/**
 * AWS Network Firewall domain lists, imported into rules. Two forms:
 *  - text: one `example.com` (exact) or `.example.com` (domain and
 *    subdomains) per line, `#` comments and blank lines ignored; it applies
 *    to both TLS SNI and HTTP Host;
 *  - JSON: a RulesSourceList (`Targets`, `TargetTypes`, `GeneratedRulesType`),
 *    bare or inside `RulesSource` / `RuleGroup` as the AWS CLI prints it.
 * Errors point into the list file itself.
 */
import { parseNamePattern, patternText } from './names';
import type { Action } from './types';
import { YamlFile, describe, isScalar, policyError, type YamlNode } from './yaml-file';

export interface DomainList {
  readonly format: 'text' | 'json';
  /** Normalised patterns, duplicates removed, in file order. */
  readonly patterns: readonly string[];
  readonly tlsSni: boolean;
  readonly httpHost: boolean;
  /** From GeneratedRulesType (JSON only). */
  readonly action: Action | null;
}

const GENERATED_RULES_TYPES: Readonly<Record<string, Action>> = {
  ALLOWLIST: 'allow',
  DENYLIST: 'drop',
  REJECTLIST: 'reject',
  ALERTLIST: 'alert',
};

const PATTERN_WHAT = 'a domain (example.com, or .example.com for the domain and its subdomains)';

export function parseDomainList(text: string, file: string): DomainList {
  const body = text.replace(/^\uFEFF/, '');
  return body.trimStart().startsWith('{') ? parseJsonList(body, file) : parseTextList(body, file);
}

function parseTextList(text: string, file: string): DomainList {
  const patterns = new Set<string>();
  text.split('\n').forEach((rawLine, i) => {
    const line = rawLine.endsWith('\r') ? rawLine.slice(0, -1) : rawLine;
    const entry = line.trim();
    if (entry === '' || entry.startsWith('#')) return;
    const column = line.indexOf(entry) + 1;
    const parsed = parseNamePattern(entry);
    if (!parsed.ok) {
      throw policyError(file, i + 1, column, `Expected ${PATTERN_WHAT} for a domain list entry but received ${JSON.stringify(entry)} (${parsed.problem})`);
    }
    patterns.add(patternText(parsed.pattern));
  });
  return { format: 'text', patterns: [...patterns], tlsSni: true, httpHost: true, action: null };
}

/** Finds the RulesSourceList mapping, accepting the wrappers the AWS CLI and API use. */
function findRulesSourceList(yaml: YamlFile, root: YamlNode): YamlNode {
  let node = root;
  for (const wrapper of ['RuleGroup', 'RulesSource', 'RulesSourceList']) {
    const entry = yaml.entries(node, 'the domain list').find((e) => e.key === wrapper);
    if (entry !== undefined) {
      if (entry.value === null) yaml.fail(entry.value, 'a mapping', wrapper, 'nothing', entry.keyNode);
      node = entry.value;
    }
  }
  const keys = yaml.entries(node, 'RulesSourceList').map((e) => e.key);
  if (!keys.includes('Targets')) {
    yaml.fail(node, 'a RulesSourceList with Targets (bare, or inside RulesSource or RuleGroup)', 'the domain list', keys.length ? `keys ${keys.join(', ')}` : 'an empty mapping');
  }
  return node;
}

function parseJsonList(text: string, file: string): DomainList {
  const yaml: YamlFile = YamlFile.parse(text, file);
  const root = yaml.root;
  if (root === null) yaml.fail(root, 'a JSON object', 'the domain list', 'nothing');
  const list = findRulesSourceList(yaml, root);
  const patterns = new Set<string>();
  let tlsSni = false;
  let httpHost = false;
  let action: Action | null = null;
  const seen = new Set<string>();
  for (const { key, keyNode, value } of yaml.entries(list, 'RulesSourceList')) {
    seen.add(key);
    if (key === 'Targets') {
      for (const node of yaml.scalars(value, 'Targets', keyNode)) {
        const parsed = isScalar(node) && typeof node.value === 'string' ? parseNamePattern(node.value) : null;
        if (parsed === null || !parsed.ok) {
          yaml.fail(node, PATTERN_WHAT, 'Targets', `${describe(node)}${parsed && !parsed.ok ? ` (${parsed.problem})` : ''}`);
        }
        patterns.add(patternText(parsed.pattern));
      }
    } else if (key === 'TargetTypes') {
      for (const node of yaml.scalars(value, 'TargetTypes', keyNode)) {
        const type = isScalar(node) ? node.value : null;
        if (type === 'TLS_SNI') tlsSni = true;
        else if (type === 'HTTP_HOST') httpHost = true;
        else yaml.fail(node, 'TLS_SNI or HTTP_HOST', 'TargetTypes', describe(node));
      }
    } else if (key === 'GeneratedRulesType') {
      const type = value !== null && isScalar(value) && typeof value.value === 'string' ? GENERATED_RULES_TYPES[value.value] : undefined;
      if (type === undefined) yaml.fail(value, `one of ${Object.keys(GENERATED_RULES_TYPES).join(', ')}`, 'GeneratedRulesType', describe(value), keyNode);
      action = type as Action;
    } else {
      yaml.fail(keyNode, 'one of Targets, TargetTypes, GeneratedRulesType', 'a RulesSourceList key', JSON.stringify(key));
    }
  }
  for (const required of ['TargetTypes', 'GeneratedRulesType']) {
    if (!seen.has(required)) yaml.fail(list, `a ${required} key`, 'RulesSourceList', 'a list without one');
  }
  return { format: 'json', patterns: [...patterns], tlsSni, httpHost, action };
}
