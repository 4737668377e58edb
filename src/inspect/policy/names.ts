/**
 * Host name patterns (DESIGN.md, "Egress policy conventions"):
 * `example.com` matches exactly, `.example.com` the domain and every
 * subdomain, `*.example.com` subdomains only. Case-insensitive, trailing dot
 * ignored, IDNs as punycode. Patterns are normalised once when a policy
 * loads; flow names are normalised per flow with string operations only.
 */
import { domainToASCII } from 'node:url';

export type PatternKind = 'exact' | 'domain' | 'subdomains';

export interface NamePattern {
  readonly kind: PatternKind;
  /** The name without its `.` or `*.` prefix, lowercase punycode, no trailing dot. */
  readonly name: string;
}

const MAX_NAME = 253;
const MAX_LABEL = 63;

function hasNonAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7e) return true;
  return false;
}

/** a-z 0-9 - _ (underscores appear in real DNS names: _dmarc, SRV owners). */
function isLabelChar(c: number): boolean {
  return (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x5f;
}

/** Why `name` (already lowercase ASCII) is not a host name, or null when it is one. */
function nameProblem(name: string): string | null {
  if (name.length === 0) return 'an empty name';
  if (name.length > MAX_NAME) return `a name longer than ${MAX_NAME} characters`;
  let labelStart = 0;
  for (let i = 0; i <= name.length; i++) {
    const c = i < name.length ? name.charCodeAt(i) : 0x2e;
    if (c === 0x2e) {
      if (i === labelStart) return 'an empty label';
      if (i - labelStart > MAX_LABEL) return `a label longer than ${MAX_LABEL} characters`;
      labelStart = i + 1;
    } else if (c === 0x2a) {
      return 'a "*" that is not the leading "*." label';
    } else if (!isLabelChar(c)) {
      return `the character ${JSON.stringify(String.fromCharCode(c))}`;
    }
  }
  return null;
}

/**
 * Parses a pattern as written in a policy or domain list. Returns the
 * pattern or the reason it is not one (for "Expected ... but received").
 */
export function parseNamePattern(raw: string): { ok: true; pattern: NamePattern } | { ok: false; problem: string } {
  let text = raw.toLowerCase();
  let kind: PatternKind = 'exact';
  if (text.startsWith('*.')) {
    kind = 'subdomains';
    text = text.slice(2);
  } else if (text.startsWith('.')) {
    kind = 'domain';
    text = text.slice(1);
  }
  if (text.endsWith('.')) text = text.slice(0, -1);
  if (hasNonAscii(text)) {
    const ascii = domainToASCII(text);
    if (ascii === '') return { ok: false, problem: 'an international name that does not convert to punycode' };
    text = ascii;
  }
  const problem = nameProblem(text);
  if (problem !== null) return { ok: false, problem };
  return { ok: true, pattern: { kind, name: text } };
}

/** The pattern as text again: `a.b`, `.a.b` or `*.a.b`. */
export function patternText(p: NamePattern): string {
  return p.kind === 'exact' ? p.name : p.kind === 'domain' ? `.${p.name}` : `*.${p.name}`;
}

/** Text form back to a pattern (for patterns this module wrote). */
export function patternFromText(text: string): NamePattern {
  if (text.startsWith('*.')) return { kind: 'subdomains', name: text.slice(2) };
  if (text.startsWith('.')) return { kind: 'domain', name: text.slice(1) };
  return { kind: 'exact', name: text };
}

/** "example.com", "example.com or a subdomain" ("example.com (or a subdomain)" in a list), "a subdomain of example.com". */
export function describePattern(text: string, inList = false): string {
  const p = patternFromText(text);
  if (p.kind === 'exact') return p.name;
  if (p.kind === 'subdomains') return `a subdomain of ${p.name}`;
  return inList ? `${p.name} (or a subdomain)` : `${p.name} or a subdomain`;
}

/**
 * A name seen in a flow (SNI, Host, DNS question) in the form patterns use,
 * or null when there is nothing to compare. Never throws: flow names are
 * untrusted input.
 */
export function normaliseFlowName(raw: string): string | null {
  let name = raw;
  if (hasNonAscii(name)) name = domainToASCII(name);
  else name = name.toLowerCase();
  if (name.endsWith('.')) name = name.slice(0, -1);
  return name.length === 0 ? null : name;
}

/** An HTTP Host header value without its port (`example.com:8080`, `[2001:db8::1]:80`). */
export function hostWithoutPort(host: string): string {
  if (host.startsWith('[')) {
    const end = host.indexOf(']');
    return end < 0 ? host : host.slice(1, end);
  }
  const colon = host.indexOf(':');
  if (colon >= 0 && host.indexOf(':', colon + 1) < 0) return host.slice(0, colon);
  return host;
}

/**
 * The table key a pattern is stored under: "=" exact, "." domain,
 * "*" subdomains, then the name. A flow name looks up "=name", ".name",
 * and ".parent" / "*parent" for each parent suffix (policy-index.ts).
 */
export function patternKey(p: NamePattern): string {
  return p.kind === 'exact' ? `=${p.name}` : p.kind === 'domain' ? `.${p.name}` : `*${p.name}`;
}
