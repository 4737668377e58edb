/**
 * Single values of a routes file (booleans, integers, host names, path
 * prefixes, upstream URLs): each returns the normalised value or fails at
 * the node with "Expected <what> for <name> but received <value>".
 */
import { parseNamePattern } from '../../inspect/policy/names';
import { describe, isScalar, type YamlFile, type YamlNode } from '../../inspect/policy/yaml-file';
import { normaliseRequestPath } from './path';
import { hostNameProblem } from './rewrite';

export function bool(y: YamlFile, node: YamlNode, name: string): boolean {
  const v = isScalar(node) ? node.value : null;
  if (typeof v !== 'boolean') y.fail(node, 'true or false', name, describe(node));
  return v;
}

export function integer(y: YamlFile, node: YamlNode, name: string, lo: number, hi: number): number {
  const v = isScalar(node) ? node.value : null;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < lo || v > hi) y.fail(node, `an integer from ${lo} to ${hi}`, name, describe(node));
  return v;
}

export function text(y: YamlFile, node: YamlNode, name: string, what: string): string {
  const v = isScalar(node) ? node.value : null;
  if (typeof v !== 'string' || v === '') y.fail(node, what, name, describe(node));
  return v;
}

/** A plain host name, lowercased, trailing dot dropped, IDNs as punycode. */
export function hostName(y: YamlFile, node: YamlNode, name: string): string {
  const raw = text(y, node, name, 'a host name');
  const parsed = raw.startsWith('*') || raw.startsWith('.') ? null : parseNamePattern(raw);
  if (parsed === null || !parsed.ok) y.fail(node, 'a host name', name, `${describe(node)}${parsed && !parsed.ok ? ` (${parsed.problem})` : ''}`);
  return parsed.pattern.name;
}

/** `.domain` as used by suffix rewrites: a leading dot, then a host name. */
export function dottedSuffix(y: YamlFile, node: YamlNode, name: string): string {
  const raw = text(y, node, name, 'a domain suffix starting with "." (e.g. .example.org)');
  const parsed = raw.startsWith('.') ? parseNamePattern(raw.slice(1)) : null;
  if (parsed === null || !parsed.ok || parsed.pattern.kind !== 'exact') {
    y.fail(node, 'a domain suffix starting with "." (e.g. .example.org)', name, `${describe(node)}${parsed && !parsed.ok ? ` (${parsed.problem})` : ''}`);
  }
  return `.${parsed.pattern.name}`;
}

/** The route's host: `api.example.com` (exact) or `*.example.com` (subdomains, any depth). */
export function hostPattern(y: YamlFile, node: YamlNode): { kind: 'exact' | 'subdomains'; name: string } {
  const what = 'an exact host name (api.example.com) or a wildcard (*.example.com)';
  const raw = text(y, node, 'host', what);
  const parsed = parseNamePattern(raw);
  if (!parsed.ok) y.fail(node, what, 'host', `${describe(node)} (${parsed.problem})`);
  if (parsed.pattern.kind === 'domain') {
    y.fail(node, what, 'host', `${describe(node)} (a leading-dot pattern: route the domain and *.${parsed.pattern.name} as two hosts)`);
  }
  return { kind: parsed.pattern.kind, name: parsed.pattern.name };
}

/** `pchar` of RFC 3986 (section 3.3) and "/", "%" kept for percent-encodings. */
const PATH_CHARS = /^\/[A-Za-z0-9\-._~!$&'()*+,;=:@/%]*$/;

/** A path prefix: starts with "/", no query or fragment, no dot segments. */
export function pathPrefix(y: YamlFile, node: YamlNode): string {
  const what = 'a path prefix starting with "/" (no query, fragment, spaces or dot segments)';
  const raw = text(y, node, 'prefix', what);
  const normal = PATH_CHARS.test(raw) ? normaliseRequestPath(raw) : null;
  if (normal === null) y.fail(node, what, 'prefix', describe(node));
  return normal;
}

export interface UpstreamUrl {
  readonly tls: boolean;
  readonly host: string;
  readonly port: number;
  readonly pathPrefix: string | null;
}

/** An http:// or https:// URL with a host, an optional port and path; no credentials, query or fragment. */
export function upstreamUrl(y: YamlFile, node: YamlNode): UpstreamUrl {
  const what = 'an http:// or https:// URL with a host and no credentials, query or fragment';
  const raw = text(y, node, 'url', what);
  let url: URL | null = null;
  try {
    url = new URL(raw);
  } catch {
    y.fail(node, what, 'url', describe(node));
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.hostname === '' || url.username !== '' || url.password !== '' || url.search !== '' || url.hash !== '' || raw.includes('?') || raw.includes('#')) {
    y.fail(node, what, 'url', describe(node));
  }
  const tls = url.protocol === 'https:';
  const bracketed = url.hostname.startsWith('[');
  const host = bracketed ? url.hostname.slice(1, -1) : url.hostname;
  if (!bracketed && hostNameProblem(host) !== null) y.fail(node, what, 'url', `${describe(node)} (${hostNameProblem(host)})`);
  const port = url.port === '' ? (tls ? 443 : 80) : Number(url.port);
  // URL has already removed dot segments (also %2e ones) from the path.
  const path = url.pathname.replace(/\/+$/, '');
  if (port === 0) y.fail(node, what, 'url', `${describe(node)} (port 0)`);
  return { tls, host, port, pathPrefix: path === '' ? null : path };
}

/** Lattice-generated service names: <name>-<id>.<hash>.vpc-lattice-svcs.<region>.on.aws. */
export function isLatticeServiceName(host: string): boolean {
  return /\.vpc-lattice-svcs\.[a-z0-9-]+\.on\.aws$/.test(host);
}
