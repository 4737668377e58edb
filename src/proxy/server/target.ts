/**
 * The destination of a proxied request, from its request target (RFC 9112
 * section 3.2): absolute-form `http://host[:port]/path?query` for plain
 * HTTP, authority-form `host:port` for CONNECT. Origin-form (`/path`) is a
 * request for the proxy itself, which serves nothing, so it is refused.
 *
 * The host goes through `parseDestinationHost`, so every notation of an
 * address (0x7f.1, 2130706433, [::ffff:7f00:1]) reaches the policy and the
 * SSRF check as the one canonical address it means.
 */
import { parseDestinationHost, type DestinationHost } from '../ssrf';

export interface RequestTarget {
  /** A normalised name or an IP address in canonical text (IPv6 without brackets). */
  host: string;
  hostIsIp: boolean;
  port: number;
  /** `host[:port]` as it goes into a Host header or a log (IPv6 bracketed; default port left out for HTTP). */
  authority: string;
  /** Origin-form path and query for the upstream request ('/' at least); '' for CONNECT. */
  path: string;
  /** The host as parsed here, handed to the SSRF check so that it is not parsed again per request. */
  destination: DestinationHost;
}

export type TargetResult = { ok: true; value: RequestTarget } | { ok: false; reason: TargetProblem };

export type TargetProblem =
  | 'origin-form' // "/path": not a proxy request
  | 'unsupported-scheme' // "https://..." or anything but http: the proxy does not originate TLS
  | 'userinfo' // "http://user:pass@host/": credentials in the URL are refused, not forwarded
  | 'bad-port'
  | 'missing-port' // CONNECT without a port
  | 'bad-host';

const HTTP_DEFAULT_PORT = 80;

function fail(reason: TargetProblem): TargetResult {
  return { ok: false, reason };
}

function parsePort(text: string): number | null {
  if (!/^[0-9]{1,5}$/.test(text)) return null;
  const port = Number(text);
  return port >= 1 && port <= 65535 ? port : null;
}

/** Splits `host[:port]` (IPv6 bracketed); port is null when absent; null overall when malformed. */
function splitAuthority(authority: string): { host: string; port: string | null } | null {
  if (authority.startsWith('[')) {
    const close = authority.indexOf(']');
    if (close < 0) return null;
    const rest = authority.slice(close + 1);
    if (rest === '') return { host: authority.slice(0, close + 1), port: null };
    if (!rest.startsWith(':')) return null;
    return { host: authority.slice(0, close + 1), port: rest.slice(1) };
  }
  const colon = authority.indexOf(':');
  if (colon < 0) return { host: authority, port: null };
  // A second colon outside brackets is an unbracketed IPv6 address: not valid in a URI authority.
  if (authority.indexOf(':', colon + 1) >= 0) return null;
  return { host: authority.slice(0, colon), port: authority.slice(colon + 1) };
}

function buildTarget(rawHost: string, port: number, path: string, defaultPort: number | null): TargetResult {
  const parsed = parseDestinationHost(rawHost);
  if (parsed.kind === 'invalid') return fail('bad-host');
  const host = parsed.kind === 'ip' ? parsed.address : parsed.name;
  const hostIsIp = parsed.kind === 'ip';
  const hostText = hostIsIp && host.includes(':') ? `[${host}]` : host;
  const authority = port === defaultPort ? hostText : `${hostText}:${port}`;
  return { ok: true, value: { host, hostIsIp, port, authority, path, destination: parsed } };
}

/** Reads an absolute-form HTTP request target. */
export function parseAbsoluteTarget(url: string): TargetResult {
  if (url.startsWith('/') || url === '*') return fail('origin-form');
  const scheme = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\//.exec(url);
  if (scheme === null) return fail('origin-form');
  if (scheme[1].toLowerCase() !== 'http') return fail('unsupported-scheme');
  const rest = url.slice(scheme[0].length);
  const end = rest.search(/[/?#]/);
  const authority = end < 0 ? rest : rest.slice(0, end);
  if (authority.includes('@')) return fail('userinfo');
  let path = end < 0 ? '' : rest.slice(end);
  const hash = path.indexOf('#');
  if (hash >= 0) path = path.slice(0, hash); // fragments are the client's business, never sent
  if (!path.startsWith('/')) path = `/${path}`;

  const split = splitAuthority(authority);
  if (split === null || split.host === '') return fail('bad-host');
  let port = HTTP_DEFAULT_PORT;
  // "http://host:/" is allowed by RFC 3986 and means the default port.
  if (split.port !== null && split.port !== '') {
    const p = parsePort(split.port);
    if (p === null) return fail('bad-port');
    port = p;
  }
  return buildTarget(split.host, port, path, HTTP_DEFAULT_PORT);
}

/** Reads a CONNECT request target (`host:port`, port required). */
export function parseConnectTarget(target: string): TargetResult {
  const split = splitAuthority(target);
  if (split === null || split.host === '') return fail('bad-host');
  if (split.port === null || split.port === '') return fail('missing-port');
  const port = parsePort(split.port);
  if (port === null) return fail('bad-port');
  return buildTarget(split.host, port, '', null);
}
