/**
 * Header rewriting for forwarded HTTP (RFC 9110 section 7.6): hop-by-hop
 * fields belong to one connection and are removed in both directions, Via
 * records the proxy, X-Forwarded-For the client.
 *
 * Headers travel as flat raw arrays (`[name, value, name, value, ...]`, the
 * shape of `IncomingMessage.rawHeaders`) so that repeated fields (Set-Cookie)
 * and the client's spelling survive.
 */
import { REQUEST_FRAMING_FIELDS } from '../../http1';

/** Always connection-specific, named in Connection or not. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authorization',
  'proxy-authenticate',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

/**
 * The field names a message's Connection (or legacy Proxy-Connection)
 * headers declare hop-by-hop, or null when it has neither: the usual case,
 * which then costs one scan and no allocation per message.
 */
export function connectionNamedFields(raw: readonly string[]): Set<string> | null {
  let named: Set<string> | null = null;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i];
    // 10 and 16 letters: only Connection and Proxy-Connection are lowercased.
    if (name.length !== 10 && name.length !== 16) continue;
    const lower = name.toLowerCase();
    if (lower !== 'connection' && lower !== 'proxy-connection') continue;
    for (const token of raw[i + 1].split(',')) {
      const t = token.trim().toLowerCase();
      if (t !== '') (named ??= new Set()).add(t);
    }
  }
  return named;
}

/** Whether a field (lowercase name) stays with this connection: always, or because Connection named it. */
export function isHopByHop(lower: string, named: ReadonlySet<string> | null): boolean {
  return HOP_BY_HOP.has(lower) || (named !== null && named.has(lower));
}

const NONE: ReadonlySet<string> = new Set();
const NO_FIELDS: readonly string[] = [];
const CONTENT_LENGTH: ReadonlySet<string> = new Set(['content-length']);

/** The raw headers without hop-by-hop fields and without `alsoRemove` (lowercase names). */
export function endToEndHeaders(raw: readonly string[], alsoRemove: ReadonlySet<string> = NONE): string[] {
  const named = connectionNamedFields(raw);
  const out: string[] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const lower = raw[i].toLowerCase();
    if (!isHopByHop(lower, named) && !alsoRemove.has(lower)) out.push(raw[i], raw[i + 1]);
  }
  return out;
}

/**
 * The end-to-end fields of `raw` minus `alsoRemove`, between `lead` and
 * `tail`; then, when a value is given, the Via and X-Forwarded-For lists:
 * every such field of `raw` joined into one, the value appended (RFC 9110
 * 5.3: repeated fields are one list). One pass, each name lowercased once.
 */
function rewriteFields(
  raw: readonly string[],
  alsoRemove: ReadonlySet<string>,
  lead: readonly string[],
  tail: readonly string[],
  via: string | null,
  forwardedFor: string | null,
): string[] {
  const named = connectionNamedFields(raw);
  const out = lead.slice();
  const vias: string[] | null = via === null ? null : [];
  const forwarded: string[] | null = forwardedFor === null ? null : [];
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const lower = raw[i].toLowerCase();
    if (isHopByHop(lower, named) || alsoRemove.has(lower)) continue;
    const list = lower === 'via' ? vias : lower === 'x-forwarded-for' ? forwarded : null;
    if (list !== null) {
      const value = raw[i + 1].trim();
      if (value !== '') list.push(value);
    } else {
      out.push(raw[i], raw[i + 1]);
    }
  }
  for (let i = 0; i < tail.length; i++) out.push(tail[i]);
  if (vias !== null) out.push('Via', vias.length === 0 ? (via as string) : `${vias.join(', ')}, ${via as string}`);
  if (forwarded !== null) out.push('X-Forwarded-For', forwarded.length === 0 ? (forwardedFor as string) : `${forwarded.join(', ')}, ${forwardedFor as string}`);
  return out;
}

export interface RequestRewrite {
  /** The Host header sent upstream: the request target's authority (RFC 9112 3.2.2: a proxy replaces Host with it). */
  authority: string;
  via: string | null;
  /** The client address to append to X-Forwarded-For, or null to leave the header as it came. */
  forwardedFor: string | null;
  /** The body's framing field (src/http1 requestFraming): the only Content-Length/Transfer-Encoding sent. */
  framing: readonly string[];
}

/**
 * Host is replaced; the framing is the proxy's own. Expect goes on (RFC
 * 9110 10.1.1): the upstream's 100 Continue comes back through the relay
 * as an interim answer, so an upload starts when the upstream is ready.
 */
const NOT_COPIED: ReadonlySet<string> = new Set(['host', ...REQUEST_FRAMING_FIELDS]);

/** Headers for the upstream request. */
export function upstreamRequestHeaders(raw: readonly string[], rewrite: RequestRewrite): string[] {
  return rewriteFields(raw, NOT_COPIED, ['Host', rewrite.authority], rewrite.framing, rewrite.via, rewrite.forwardedFor);
}

/**
 * Headers for the response to the client: Node frames the body again, so the
 * upstream's Transfer-Encoding goes, and its Content-Length too when
 * `dropLength` says the body is not delimited by it (chunked, or until close).
 */
export function clientResponseHeaders(raw: readonly string[], via: string | null, dropLength = false): string[] {
  return rewriteFields(raw, dropLength ? CONTENT_LENGTH : NONE, NO_FIELDS, NO_FIELDS, via, null);
}
