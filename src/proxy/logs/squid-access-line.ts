/**
 * Squid's native access.log line, so tools that read Squid logs read ours:
 *
 *   %ts.%03tu %6tr %>a %Ss/%03>Hs %<st %rm %ru %[un %Sh/%<a %mt
 *
 *   1795319402.756      5 10.0.1.5 TCP_MISS/200 1251 GET http://api.example.com/v1? - HIER_DIRECT/203.0.113.20 text/plain
 *   1795319404.783   1894 10.0.1.5 TCP_TUNNEL/200 43 CONNECT api.example.com:443 - HIER_DIRECT/203.0.113.20 -
 *   1795319415.597      1 10.0.1.5 TCP_DENIED/403 3411 GET http://blocked.example/x - HIER_NONE/- text/html
 *
 * What Squid 5.7 does, checked against its own lines (test/proxy/logs):
 * %ts.%03tu is when the transaction ended (logging time), not when it
 * started; %mt is the media type without its parameters ("text/plain" for
 * "text/plain; charset=utf-8"); the upstream is "-" without a connection;
 * and by default (strip_query_terms on) the query is cut after the "?".
 * Fields are separated by single spaces, so no field may contain one: bytes
 * outside printable ASCII are percent-encoded, an empty field is "-".
 */
import type { AccessEntry } from '../types';

export interface SquidAccessLineOptions {
  /** Cut URLs after their "?", as Squid's strip_query_terms (on by default there and here): queries often carry secrets. */
  stripQueryTerms?: boolean;
}

export function squidAccessLine(e: AccessEntry, opts: SquidAccessLineOptions = {}): string {
  const durationMs = wholeNonNegative(e.durationMs);
  const startMs = e.start.getTime();
  const endMs = Number.isFinite(startMs) ? Math.max(0, Math.floor(startMs + (Number.isFinite(e.durationMs) ? e.durationMs : 0))) : 0;
  const seconds = Math.floor(endMs / 1000);
  const millis = String(endMs % 1000).padStart(3, '0');
  const status = String(Math.min(999, wholeNonNegative(e.status))).padStart(3, '0');
  const url = opts.stripQueryTerms === false || e.method === 'CONNECT' ? e.url : stripQueryTerms(e.url);
  return [
    `${seconds}.${millis}`,
    String(durationMs).padStart(6, ' '),
    field(e.client),
    `${field(e.squidResult)}/${status}`,
    String(wholeNonNegative(e.bytesToClient)),
    field(e.method),
    field(url),
    '-', // %[un: no proxy authentication, so no user name
    `${field(e.hierarchy)}/${field(e.upstreamAddress)}`,
    field(mediaType(e.contentType)),
  ].join(' ');
}

function wholeNonNegative(n: number): number {
  return Number.isFinite(n) && n > 0 ? Math.round(n) : 0;
}

/** "http://h/p?a=1" -> "http://h/p?" (Squid keeps the "?" so a reader sees there was a query). */
export function stripQueryTerms(url: string): string {
  const q = url.indexOf('?');
  return q < 0 ? url : url.slice(0, q + 1);
}

/** "text/plain; charset=utf-8" -> "text/plain". */
function mediaType(contentType: string | null): string | null {
  if (contentType === null) return null;
  const semi = contentType.indexOf(';');
  return (semi < 0 ? contentType : contentType.slice(0, semi)).trim();
}

/** One space-free token: "-" when empty, anything outside printable ASCII (and "%" is kept as is) percent-encoded. */
export function field(value: string | null): string {
  if (value === null || value === '') return '-';
  // The common case, checked without allocating: every character printable ASCII.
  let clean = true;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c <= 0x20 || c >= 0x7f) {
      clean = false;
      break;
    }
  }
  if (clean) return value;
  let out = '';
  for (const ch of value) {
    const c = ch.codePointAt(0) ?? 0;
    if (c > 0x20 && c < 0x7f) out += ch;
    else for (const b of Buffer.from(ch, 'utf8')) out += `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}
