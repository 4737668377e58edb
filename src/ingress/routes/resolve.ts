/**
 * Request -> route, pure and total (the Host header and path are untrusted:
 * never throws). No route for the host: 421 Misdirected Request; the host
 * matched but none of its path prefixes: 404. Precedence: an exact host
 * beats every wildcard; among wildcards the longest domain wins; among a
 * host's paths the longest prefix wins.
 */
import { hostWithoutPort } from '../../inspect/policy/names';
import { normaliseRequestPath, prefixMatches } from './path';
import { applyRewrite, hostNameProblem } from './rewrite';
import type { HostEntry, ResolvedUpstream, Route, RouteResolution, RouteTable } from './types';

const SHOWN_CHARS = 100;

function shown(value: string): string {
  return JSON.stringify(value.length > SHOWN_CHARS ? `${value.slice(0, SHOWN_CHARS)}...` : value);
}

/** The Host header as a table key: no port, lowercase, no trailing dot. */
export function normaliseRequestHost(header: string): string {
  let host = hostWithoutPort(header.trim()).toLowerCase();
  if (host.endsWith('.')) host = host.slice(0, -1);
  return host;
}

function findHost(table: RouteTable, host: string): HostEntry | undefined {
  const exact = table.exact.get(host);
  if (exact !== undefined) return exact;
  // Parents from the longest: a.b.example.com tries b.example.com, then example.com, then com.
  for (let dot = host.indexOf('.'); dot >= 0; dot = host.indexOf('.', dot + 1)) {
    const entry = table.wildcards.get(host.slice(dot + 1));
    if (entry !== undefined) return entry;
  }
  return undefined;
}

/** The Host value an HTTP client sends for host:port (the one SigV4 must sign). */
function authority(host: string, port: number, tls: boolean): string {
  const name = host.includes(':') ? `[${host}]` : host;
  return port === (tls ? 443 : 80) ? name : `${name}:${port}`;
}

function upstreamFor(route: Route, host: string): { ok: true; upstream: ResolvedUpstream } | { ok: false; reason: string } {
  const spec = route.upstream;
  switch (spec.kind) {
    case 'service':
      return { ok: true, upstream: { host: spec.host, port: spec.port, tls: route.tls.enabled } };
    case 'url': {
      const upstream: ResolvedUpstream = { host: spec.host, port: spec.port, tls: route.tls.enabled };
      return { ok: true, upstream: spec.pathPrefix === null ? upstream : { ...upstream, pathPrefix: spec.pathPrefix } };
    }
    case 'rewrite': {
      const rewritten = applyRewrite(spec.rule, host);
      if (!rewritten.ok) return rewritten;
      return { ok: true, upstream: { host: rewritten.host, port: spec.port, tls: route.tls.enabled } };
    }
  }
}

export function resolveRoute(table: RouteTable, hostHeader: string, path: string): RouteResolution {
  const host = normaliseRequestHost(hostHeader);
  if (host === '') return { ok: false, status: 421, reason: 'The request has no Host; this proxy routes by host name' };
  const problem = hostNameProblem(host);
  if (problem !== null) return { ok: false, status: 421, reason: `No route for host ${shown(host)}: it is not a host name (${problem})` };
  const entry = findHost(table, host);
  if (entry === undefined) return { ok: false, status: 421, reason: `No route for host ${shown(host)} on this proxy` };
  const normal = normaliseRequestPath(path);
  if (normal === null) return { ok: false, status: 404, reason: `No route for path ${shown(path)} on host ${shown(host)}: not an absolute path without dot segments` };
  const route = entry.routes.find((r) => prefixMatches(r.prefix, normal));
  if (route === undefined) {
    const prefixes = entry.routes.map((r) => r.prefix).join(', ');
    return { ok: false, status: 404, reason: `No route for path ${shown(normal)} on host ${shown(host)} (routed prefixes: ${prefixes})` };
  }
  const found = upstreamFor(route, host);
  if (!found.ok) return { ok: false, status: 421, reason: `No upstream for host ${shown(host)}: ${found.reason}` };
  return { ok: true, route, upstream: found.upstream, signHost: authority(found.upstream.host, found.upstream.port, found.upstream.tls), wholePrefix: route === entry.routes[0] };
}
