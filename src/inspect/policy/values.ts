/**
 * Checks of single policy values (a CIDR, a protocol, a port range, an
 * endpoint id, a name pattern): each returns the normalised value or fails
 * at the node with "Expected <what> for <key> but received <value>".
 */
import { parseCidr } from './addresses';
import { parseNamePattern, patternText } from './names';
import { PROTOCOL_NUMBERS, type PortRange } from './types';
import { describe, isScalar, scalarText, type YamlFile, type YamlNode } from './yaml-file';

const MAX_U64 = (1n << 64n) - 1n;
const ENDPOINT_PATTERN = /^(?:(?:vpce|eni)-)?([0-9a-fA-F]{1,17})$/;
const PORT_RANGE_PATTERN = /^(\d{1,5})\s*-\s*(\d{1,5})$/;

export function unique<T>(items: T[]): T[] {
  return [...new Set(items)];
}

export function oneOf<T extends string>(y: YamlFile, node: YamlNode, choices: readonly T[], name: string): T {
  const v = isScalar(node) ? node.value : null;
  if (typeof v !== 'string' || !(choices as readonly string[]).includes(v)) y.fail(node, `one of ${choices.join(', ')}`, name, describe(node));
  return v as T;
}

export function cidr(y: YamlFile, node: YamlNode, name: string): string {
  const text = isScalar(node) && typeof node.value === 'string' ? node.value : null;
  const parsed = text === null ? null : parseCidr(text.trim());
  if (parsed === null || !parsed.ok) {
    y.fail(node, 'an IPv4 or IPv6 address or CIDR (e.g. 192.0.2.0/24, 2001:db8::/32)', name, `${describe(node)}${parsed && !parsed.ok ? ` (${parsed.problem})` : ''}`);
  }
  return parsed.range.text;
}

/** A protocol number, or null for `any`. */
export function protocol(y: YamlFile, node: YamlNode): number | null {
  const v = isScalar(node) ? node.value : null;
  if (typeof v === 'string') {
    const name = v.toLowerCase();
    if (name === 'any') return null;
    if (name in PROTOCOL_NUMBERS) return PROTOCOL_NUMBERS[name as keyof typeof PROTOCOL_NUMBERS];
  }
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^\d{1,3}$/.test(v) ? Number(v) : NaN;
  if (!(Number.isInteger(n) && n >= 0 && n <= 255)) y.fail(node, 'tcp, udp, icmp, icmpv6, any or a protocol number 0-255', 'protocol', describe(node));
  return n;
}

export function portRange(y: YamlFile, node: YamlNode, name = 'dst_port'): PortRange {
  const v = isScalar(node) ? node.value : null;
  let lo = NaN;
  let hi = NaN;
  if (typeof v === 'number') {
    lo = hi = v;
  } else if (typeof v === 'string') {
    const m = PORT_RANGE_PATTERN.exec(v.trim());
    if (m) [lo, hi] = [Number(m[1]), Number(m[2])];
    else if (/^\d{1,5}$/.test(v.trim())) lo = hi = Number(v);
  }
  if (!(Number.isInteger(lo) && Number.isInteger(hi) && lo >= 0 && hi <= 65535 && lo <= hi)) {
    y.fail(node, 'a port 0-65535 or a range "LO-HI" with LO <= HI', name, describe(node));
  }
  return { lo, hi };
}

export function endpoint(y: YamlFile, node: YamlNode): bigint {
  const m = ENDPOINT_PATTERN.exec(scalarText(node) ?? '');
  const id = m ? BigInt(`0x${m[1]}`) : -1n;
  if (id < 0n || id > MAX_U64) {
    y.fail(node, 'a GWLB endpoint id (vpce- or eni- and up to 17 hex digits that fit 64 bits, e.g. vpce-0123456789abcdef0)', 'endpoint', describe(node));
  }
  return id;
}

export function namePattern(y: YamlFile, node: YamlNode, name: string): string {
  const text = isScalar(node) && typeof node.value === 'string' ? node.value : null;
  const parsed = text === null ? null : parseNamePattern(text);
  if (parsed === null || !parsed.ok) {
    y.fail(node, 'a host name pattern (example.com, .example.com or *.example.com)', name, `${describe(node)}${parsed && !parsed.ok ? ` (${parsed.problem})` : ''}`);
  }
  return patternText(parsed.pattern);
}
