/**
 * Routes YAML -> RouteTable. Every mistake is ERR_POLICY with file, line and
 * column (the inspect policy's YamlFile). Schema (version 1):
 *
 *   version: 1                         # optional
 *   routes:
 *     - host: api.example.com          # exact, or *.example.com (subdomains at any depth); case-insensitive
 *       upstream: { service: NAME }    # a Lattice service DNS name (optional `port`)
 *     - host: '*.apps.example.com'
 *       upstream: { rewrite: first-dot-to-service }   # a.apps.example.com -> a-service.apps.example.com
 *     - host: '*.example.org'
 *       upstream: { rewrite: { suffix: .example.org, to: .svc.internal } }
 *     - host: www.example.com
 *       timeout_ms: 5000               # options on the host are defaults for its paths
 *       paths:                         # longest prefix wins
 *         - prefix: /api/
 *           upstream: { url: https://api.internal.example:8443/base }
 *
 * Route options: sign (default true; SigV4 for vpc-lattice-svcs), timeout_ms
 * (default 30000), tls (default true: verify against the system CAs; false;
 * or { verify: BOOL, ca_file: PATH } with ca_file relative to the routes
 * file), websocket (reject | passthrough; default reject; passthrough needs
 * sign: false and a url upstream that is not a Lattice service name, as
 * Lattice does not carry WebSockets), strip_authorization (default: the
 * value of sign; a signed route always strips it, as the signature's
 * Authorization header replaces the client's).
 *
 * A url upstream's scheme decides TLS: `tls: false` with https:// or `tls:
 * true` with http:// is refused as a contradiction.
 *
 * Precedence (resolve.ts): an exact host beats every wildcard whatever the
 * order in the file; among wildcards the longest domain wins
 * (*.a.example.com before *.example.com). A host may appear once.
 */
import { dirname, isAbsolute, resolve } from 'node:path';
import { YamlFile, describe, isMap, isScalar, isSeq, type YamlNode } from '../../inspect/policy/yaml-file';
import { applyRewrite } from './rewrite';
import { ROUTES_SCHEMA_VERSION, WEBSOCKET_MODES, type HostEntry, type RewriteRule, type Route, type RouteTable, type TlsOptions, type UpstreamSpec, type WebSocketMode } from './types';
import { bool, dottedSuffix, hostName, hostPattern, integer, isLatticeServiceName, pathPrefix, text, upstreamUrl } from './values';

export const DEFAULT_TIMEOUT_MS = 30_000;
const MAX_TIMEOUT_MS = 3_600_000;

const TOP_KEYS = ['version', 'routes'] as const;
const OPTION_KEYS = ['sign', 'timeout_ms', 'tls', 'websocket', 'strip_authorization'] as const;
const HOST_KEYS = ['host', 'upstream', 'paths', ...OPTION_KEYS] as const;
const PATH_KEYS = ['prefix', 'upstream', ...OPTION_KEYS] as const;
const UPSTREAM_KEYS = ['service', 'url', 'rewrite', 'port'] as const;
const TLS_KEYS = ['verify', 'ca_file'] as const;
const REWRITE_KEYS = ['suffix', 'to'] as const;
const FIRST_DOT_TO_SERVICE = 'first-dot-to-service';

type OptionKey = (typeof OPTION_KEYS)[number];

/** Options as written, each with its node (for errors about combinations). */
interface Options {
  sign?: boolean;
  timeoutMs?: number;
  tls?: TlsOptions;
  websocket?: WebSocketMode;
  stripAuthorization?: boolean;
  nodes: Map<OptionKey, YamlNode>;
}

interface Pattern {
  readonly kind: 'exact' | 'subdomains';
  readonly name: string;
}

/** Fails unless `key` is one of `keys`. */
function knownKey(y: YamlFile, keyNode: YamlNode, key: string, keys: readonly string[], name: string): void {
  if (!keys.includes(key)) y.fail(keyNode, `one of ${keys.join(', ')}`, name, JSON.stringify(key));
}

function present(y: YamlFile, value: YamlNode | null, keyNode: YamlNode, key: string): YamlNode {
  if (value === null || (isScalar(value) && value.value === null)) y.fail(keyNode, 'a value', key, 'nothing');
  return value;
}

function readTls(y: YamlFile, node: YamlNode, file: string): TlsOptions {
  if (!isMap(node)) return { enabled: bool(y, node, 'tls'), verify: true, caFile: null };
  let verify = true;
  let caFile: string | null = null;
  let caNode: YamlNode | null = null;
  for (const { key, keyNode, value } of y.entries(node, 'tls')) {
    knownKey(y, keyNode, key, TLS_KEYS, 'a tls key');
    const v = present(y, value, keyNode, key);
    if (key === 'verify') verify = bool(y, v, key);
    else {
      const path = text(y, v, key, 'a path to a PEM CA bundle');
      caFile = isAbsolute(path) ? path : resolve(dirname(file), path);
      caNode = v;
    }
  }
  if (caNode !== null && !verify) y.fail(caNode, 'no ca_file when verify is false', 'ca_file', 'both');
  return { enabled: true, verify, caFile };
}

/** Reads an option key into `options`; false when `key` is not an option. */
function readOption(y: YamlFile, options: Options, key: string, value: YamlNode, file: string): boolean {
  switch (key) {
    case 'sign':
      options.sign = bool(y, value, key);
      break;
    case 'timeout_ms':
      options.timeoutMs = integer(y, value, key, 1, MAX_TIMEOUT_MS);
      break;
    case 'tls':
      options.tls = readTls(y, value, file);
      break;
    case 'websocket': {
      const v = isScalar(value) ? value.value : null;
      if (typeof v !== 'string' || !(WEBSOCKET_MODES as readonly string[]).includes(v)) y.fail(value, `one of ${WEBSOCKET_MODES.join(', ')}`, key, describe(value));
      options.websocket = v as WebSocketMode;
      break;
    }
    case 'strip_authorization':
      options.stripAuthorization = bool(y, value, key);
      break;
    default:
      return false;
  }
  options.nodes.set(key, value);
  return true;
}

function readRewrite(y: YamlFile, node: YamlNode): RewriteRule {
  if (isScalar(node)) {
    if (node.value !== FIRST_DOT_TO_SERVICE) y.fail(node, `${FIRST_DOT_TO_SERVICE} or { suffix, to }`, 'rewrite', describe(node));
    return { kind: 'first-dot-to-service' };
  }
  let suffix: string | null = null;
  let to: string | null = null;
  for (const { key, keyNode, value } of y.entries(node, 'rewrite')) {
    knownKey(y, keyNode, key, REWRITE_KEYS, 'a rewrite key');
    const v = dottedSuffix(y, present(y, value, keyNode, key), key);
    if (key === 'suffix') suffix = v;
    else to = v;
  }
  if (suffix === null || to === null) y.fail(node, 'both suffix and to', 'rewrite', suffix === null ? 'no suffix' : 'no to');
  return { kind: 'suffix', suffix, to };
}

/** The upstream with the TLS the url's scheme says (or null for service and rewrite). */
function readUpstream(y: YamlFile, node: YamlNode, host: Pattern): { spec: UpstreamSpec; urlTls: boolean | null } {
  const kinds: Array<{ key: string; value: YamlNode }> = [];
  let portNode: YamlNode | null = null;
  for (const { key, keyNode, value } of y.entries(node, 'upstream')) {
    knownKey(y, keyNode, key, UPSTREAM_KEYS, 'an upstream key');
    const v = present(y, value, keyNode, key);
    if (key === 'port') portNode = v;
    else kinds.push({ key, value: v });
  }
  if (kinds.length !== 1) y.fail(node, 'exactly one of service, url, rewrite', 'upstream', kinds.length === 0 ? 'none' : kinds.map((k) => k.key).join(' and '));
  const [{ key, value }] = kinds;
  const port = portNode === null ? null : integer(y, portNode, 'port', 1, 65535);
  if (key === 'url') {
    if (portNode !== null) y.fail(portNode, 'the port inside the url', 'port', describe(portNode));
    const url = upstreamUrl(y, value);
    const spec: UpstreamSpec = { kind: 'url', host: url.host, port: url.port, pathPrefix: url.pathPrefix, lattice: isLatticeServiceName(url.host) };
    return { spec, urlTls: url.tls };
  }
  if (key === 'service') return { spec: { kind: 'service', host: hostName(y, value, 'service'), port: port ?? 0 }, urlTls: null };
  const rule = readRewrite(y, value);
  // Check the rule against the names the host pattern admits, once, here.
  if (rule.kind === 'suffix' && !`.${host.name}`.endsWith(rule.suffix)) {
    y.fail(value, `a suffix that names under ${host.kind === 'exact' ? host.name : `*.${host.name}`} end in`, 'suffix', JSON.stringify(rule.suffix));
  }
  if (host.kind === 'exact') {
    const result = applyRewrite(rule, host.name);
    if (!result.ok) y.fail(value, 'a rewrite that applies to the host', 'rewrite', result.reason);
  }
  return { spec: { kind: 'rewrite', rule, port: port ?? 0 }, urlTls: null };
}

function finishRoute(y: YamlFile, host: Pattern, prefix: string, up: { spec: UpstreamSpec; urlTls: boolean | null }, options: Options, at: YamlNode): Route {
  const tlsNode = options.nodes.get('tls');
  let tls: TlsOptions = options.tls ?? { enabled: true, verify: true, caFile: null };
  if (up.urlTls !== null) {
    if (tlsNode !== undefined && tls.enabled !== up.urlTls) {
      y.fail(tlsNode, `tls ${up.urlTls ? 'on' : 'off'} as the url's scheme says`, 'tls', `tls ${tls.enabled ? 'on' : 'off'}`);
    }
    if (tlsNode === undefined) tls = { enabled: up.urlTls, verify: true, caFile: null };
  }
  const spec: UpstreamSpec = up.spec.kind === 'url' ? up.spec : { ...up.spec, port: up.spec.port !== 0 ? up.spec.port : tls.enabled ? 443 : 80 };
  const sign = options.sign ?? true;
  const stripNode = options.nodes.get('strip_authorization');
  if (sign && options.stripAuthorization === false && stripNode !== undefined) {
    y.fail(stripNode, 'strip_authorization true (or absent) on a signed route', 'strip_authorization', 'false');
  }
  const websocket = options.websocket ?? 'reject';
  const wsNode = options.nodes.get('websocket');
  if (websocket === 'passthrough' && wsNode !== undefined) {
    if (sign) y.fail(wsNode, 'sign: false with websocket passthrough (Lattice does not carry WebSockets)', 'websocket', 'a signed route');
    if (spec.kind !== 'url' || spec.lattice) {
      y.fail(wsNode, 'a url upstream that is not a Lattice service with websocket passthrough (Lattice does not carry WebSockets)', 'websocket', `a ${spec.kind === 'url' ? 'Lattice url' : spec.kind} upstream`);
    }
  }
  const where = y.where(at);
  return Object.freeze({
    host: host.kind === 'exact' ? host.name : `*.${host.name}`,
    prefix,
    upstream: Object.freeze(spec),
    sign,
    timeoutMs: options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    tls: Object.freeze(tls),
    websocket,
    stripAuthorization: options.stripAuthorization ?? sign,
    line: where.line,
    column: where.column,
  });
}

function readPath(y: YamlFile, node: YamlNode, host: Pattern, defaults: Options, position: number, file: string): Route {
  const options: Options = { ...defaults, nodes: new Map(defaults.nodes) };
  let prefix: string | null = null;
  let upstream: YamlNode | null = null;
  for (const { key, keyNode, value } of y.entries(node, `path ${position}`)) {
    knownKey(y, keyNode, key, PATH_KEYS, 'a path key');
    const v = present(y, value, keyNode, key);
    if (key === 'prefix') prefix = pathPrefix(y, v);
    else if (key === 'upstream') upstream = v;
    else readOption(y, options, key, v, file);
  }
  if (prefix === null) y.fail(node, 'a prefix key', `path ${position}`, 'a path without one');
  if (upstream === null) y.fail(node, 'an upstream key', `path ${position}`, 'a path without one');
  return finishRoute(y, host, prefix, readUpstream(y, upstream, host), options, node);
}

function readHost(y: YamlFile, node: YamlNode, position: number, file: string): HostEntry {
  const options: Options = { nodes: new Map() };
  let host: Pattern | null = null;
  let upstream: YamlNode | null = null;
  let paths: YamlNode | null = null;
  const entries = y.entries(node, `route ${position}`);
  // The host first: paths and rewrites are checked against it.
  for (const { key, keyNode, value } of entries) {
    knownKey(y, keyNode, key, HOST_KEYS, 'a route key');
    if (key === 'host') host = hostPattern(y, present(y, value, keyNode, key));
  }
  if (host === null) y.fail(node, 'a host key', `route ${position}`, 'a route without one');
  for (const { key, keyNode, value } of entries) {
    const v = present(y, value, keyNode, key);
    if (key === 'upstream') upstream = v;
    else if (key === 'paths') paths = v;
    else if (key !== 'host') readOption(y, options, key, v, file);
  }
  if (upstream !== null && paths !== null) y.fail(paths, 'either upstream or paths', `route ${position}`, 'both');
  const where = y.where(node);
  if (upstream !== null) return { pattern: host, routes: [finishRoute(y, host, '/', readUpstream(y, upstream, host), options, node)], ...where };
  if (paths === null) y.fail(node, 'an upstream or a paths key', `route ${position}`, 'a route with neither');
  if (!isSeq(paths) || paths.items.length === 0) y.fail(paths, 'a non-empty list of paths', 'paths', describe(paths));
  const routes: Route[] = [];
  const seen = new Map<string, number>();
  paths.items.forEach((item, i) => {
    const pathNode = y.resolve(item);
    if (pathNode === null) y.fail(pathNode, 'a mapping', `path ${i + 1}`, 'nothing', paths);
    const route = readPath(y, pathNode, host, options, i + 1, file);
    const earlier = seen.get(route.prefix);
    if (earlier !== undefined) y.fail(pathNode, `a prefix not already routed (line ${earlier})`, 'prefix', JSON.stringify(route.prefix));
    seen.set(route.prefix, route.line);
    routes.push(route);
  });
  routes.sort((a, b) => b.prefix.length - a.prefix.length);
  return { pattern: host, routes, ...where };
}

/** Parses and checks a routes file; `file` names it in errors. Throws ERR_POLICY. */
export function parseRoutes(text: string, file: string): RouteTable {
  const y: YamlFile = YamlFile.parse(text, file);
  const root = y.root;
  if (root === null) y.fail(null, 'a mapping with a routes key', 'the routes file', 'an empty file');
  let list: YamlNode | null = null;
  for (const { key, keyNode, value } of y.entries(root, 'the routes file')) {
    knownKey(y, keyNode, key, TOP_KEYS, 'a top-level key');
    const v = present(y, value, keyNode, key);
    if (key === 'version') {
      if (!isScalar(v) || v.value !== ROUTES_SCHEMA_VERSION) y.fail(v, `version ${ROUTES_SCHEMA_VERSION}`, 'version', describe(v));
    } else list = v;
  }
  const routes: YamlNode = list ?? y.fail(root, 'a routes key', 'the routes file', 'a file without one');
  if (!isSeq(routes)) y.fail(routes, 'a list of routes', 'routes', describe(routes));
  const exact = new Map<string, HostEntry>();
  const wildcards = new Map<string, HostEntry>();
  const entries: HostEntry[] = [];
  routes.items.forEach((item, i) => {
    const node = y.resolve(item);
    if (node === null) y.fail(node, 'a mapping', `route ${i + 1}`, 'nothing', routes);
    const entry = Object.freeze(readHost(y, node, i + 1, file));
    const table = entry.pattern.kind === 'exact' ? exact : wildcards;
    const earlier = table.get(entry.pattern.name);
    if (earlier !== undefined) {
      y.fail(node, `a host not already routed (line ${earlier.line})`, 'host', JSON.stringify(entry.routes[0].host));
    }
    table.set(entry.pattern.name, entry);
    entries.push(entry);
  });
  return Object.freeze({ version: ROUTES_SCHEMA_VERSION, file, exact, wildcards, entries: Object.freeze(entries) });
}
