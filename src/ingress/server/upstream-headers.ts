/**
 * The headers the upstream receives, and the ones the client gets back.
 *
 * Toward the upstream, a client must not be able to inject what the proxy
 * vouches for or what Lattice trusts: hop-by-hop fields (RFC 9110 section
 * 7.6.1, plus whatever Connection names), its own Authorization on routes
 * that strip it, every `x-amzn-lattice-*` field (Lattice sets those to tell
 * the target who called), on signed routes the SigV4 fields the signature
 * brings, and the X-Forwarded-Proto/-Host the proxy sets itself. Host is the
 * upstream's authority (the rewritten host, the one that was signed). The
 * client's X-Forwarded-For chain is kept and the client appended, as nginx's
 * $proxy_add_x_forwarded_for does.
 *
 * One pass over the raw header array (`[name, value, ...]`, repeated fields
 * and the client's spelling kept); the result is a raw array too.
 */
import { REQUEST_FRAMING_FIELDS } from '../../http1';
import { connectionNamedFields, isHopByHop } from '../../proxy/server/headers';
import type { RequestHead } from './request-head';

/**
 * Never forwarded, whatever the route: the fixed hop-by-hop set (the
 * proxy's list), Host (replaced), Expect (Node's server has already answered
 * 100 Continue to the client), the X-Forwarded-* fields set here, and the
 * body framing fields (the request's own framing field is added from
 * `framing`, so no Connection header can take a length away from a body).
 */
const ALWAYS_DROPPED: ReadonlySet<string> = new Set(['host', 'expect', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', ...REQUEST_FRAMING_FIELDS]);

/** Set by the signature on signed routes; a client's copy would duplicate or contradict them. */
const SIGNATURE_FIELDS = new Set(['authorization', 'x-amz-date', 'x-amz-content-sha256', 'x-amz-security-token']);

const LATTICE_PREFIX = 'x-amzn-lattice-';

export interface UpstreamHeaderInput {
  /** The upstream's authority: sent as Host (and signed, on signed routes). */
  authority: string;
  /** The signature's headers (lower-case names, `host` among them), or null for an unsigned route. */
  signature: Readonly<Record<string, string>> | null;
  stripAuthorization: boolean;
  /** The client's address (PROXY header source, else the TCP peer). */
  client: string;
  /** "https" on a TLS listener, else "http". */
  proto: string;
  /** The body's framing field (src/http1 requestFraming). */
  framing: readonly string[];
}

export function upstreamRequestHeaders(raw: readonly string[], head: RequestHead, input: UpstreamHeaderInput): string[] {
  const named = connectionNamedFields(raw);
  const signed = input.signature !== null;
  const out: string[] = ['Host', input.authority];
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const lower = raw[i].toLowerCase();
    if (ALWAYS_DROPPED.has(lower) || isHopByHop(lower, named)) continue;
    if (lower.startsWith(LATTICE_PREFIX)) continue;
    if (signed ? SIGNATURE_FIELDS.has(lower) : input.stripAuthorization && lower === 'authorization') continue;
    out.push(raw[i], raw[i + 1]);
  }
  const sig = input.signature;
  if (sig !== null) {
    out.push('X-Amz-Date', sig['x-amz-date'], 'X-Amz-Content-Sha256', sig['x-amz-content-sha256']);
    const token = sig['x-amz-security-token'];
    if (token !== undefined) out.push('X-Amz-Security-Token', token);
    out.push('Authorization', sig.authorization);
  }
  out.push('X-Forwarded-For', head.forwardedFor === '' ? input.client : `${head.forwardedFor}, ${input.client}`);
  out.push('X-Forwarded-Proto', input.proto);
  if (head.host !== '') out.push('X-Forwarded-Host', head.host);
  out.push(...input.framing);
  return out;
}
