/**
 * The access log's two line formats, made from one IngressAccessEntry.
 *
 * JSON (the default): one object a line, fixed field names, every fact.
 *
 * Combined (Apache's "combined" LogFormat, which log tools read):
 *
 *   %h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-agent}i"
 *   192.0.2.10 - - [22/Nov/2026:05:25:20 +0000] "GET /api/items? HTTP/1.1" 200 1532 "-" "curl/7.88.1"
 *
 * with two differences said here: %b counts the bytes written to the client
 * for the request, head included (Apache's %O), and the request line's query
 * is cut after its "?" as in the JSON log (queries often carry secrets).
 * Quoted fields escape '"', '\' and control bytes as \xHH, as Apache does.
 */
import type { IngressAccessEntry } from '../server/access';

export const ACCESS_LOG_FORMATS = ['json', 'combined'] as const;
export type AccessLogFormat = (typeof ACCESS_LOG_FORMATS)[number];

// Printable ASCII except '"' and backslash: a JSON string's content exactly as it is.
const JSON_PLAIN = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;

/** A JSON string: most values need no escaping, and skip JSON.stringify. */
function jsonString(value: string): string {
  return JSON_PLAIN.test(value) ? `"${value}"` : JSON.stringify(value);
}

function jsonStringOrNull(value: string | null): string {
  return value === null ? 'null' : jsonString(value);
}

function jsonNumber(value: number): string {
  return Number.isFinite(value) ? String(value) : 'null';
}

/**
 * What JSON.stringify makes of the entry's fields (the test compares the
 * two on random entries), written out field by field: half the CPU of
 * building an object for JSON.stringify, once per request.
 */
export function jsonAccessLine(e: IngressAccessEntry): string {
  const upstreamMs = e.upstreamMs === null ? 'null' : jsonNumber(Math.round(e.upstreamMs * 10) / 10);
  return (
    `{"time":"${e.start.toISOString()}","client":${jsonString(e.client)},"client_port":${jsonNumber(e.clientPort)},` +
    `"method":${jsonString(e.method)},"host":${jsonString(e.host)},"path":${jsonString(e.path)},"protocol":${jsonString(e.protocol)},` +
    `"status":${jsonNumber(e.status)},"bytes_in":${jsonNumber(e.bytesIn)},"bytes_out":${jsonNumber(e.bytesOut)},"duration_ms":${jsonNumber(e.durationMs)},` +
    `"route":${jsonStringOrNull(e.route)},"upstream":${jsonStringOrNull(e.upstream)},"upstream_ms":${upstreamMs},` +
    `"signed":${e.signed},"tls":${e.tls},"upgrade":${e.upgrade},"error":${jsonStringOrNull(e.error)},"reason":${jsonStringOrNull(e.reason)},` +
    `"user_agent":${jsonString(e.userAgent)},"referer":${jsonString(e.referer)}}`
  );
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

function two(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}

/** [22/Nov/2026:05:25:20 +0000], in UTC. */
function apacheTime(d: Date): string {
  return `[${two(d.getUTCDate())}/${MONTHS[d.getUTCMonth()]}/${d.getUTCFullYear()}:${two(d.getUTCHours())}:${two(d.getUTCMinutes())}:${two(d.getUTCSeconds())} +0000]`;
}

/** A quoted field's content: '"' and '\' escaped, bytes outside printable ASCII as \xHH; "-" when empty. */
export function quoted(value: string): string {
  if (value === '') return '-';
  let plain = true;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c < 0x20 || c >= 0x7f || c === 0x22 || c === 0x5c) {
      plain = false;
      break;
    }
  }
  if (plain) return value;
  let out = '';
  for (const b of Buffer.from(value, 'utf8')) {
    if (b === 0x22 || b === 0x5c) out += `\\${String.fromCharCode(b)}`;
    else if (b < 0x20 || b >= 0x7f) out += `\\x${b.toString(16).padStart(2, '0')}`;
    else out += String.fromCharCode(b);
  }
  return out;
}

export function combinedAccessLine(e: IngressAccessEntry): string {
  const request = `${e.method} ${e.path === '' ? '-' : e.path} ${e.protocol}`;
  return `${e.client || '-'} - - ${apacheTime(e.start)} "${quoted(request)}" ${e.status === 0 ? '-' : e.status} ${e.bytesOut} "${quoted(e.referer)}" "${quoted(e.userAgent)}"`;
}

export function accessLine(format: AccessLogFormat, e: IngressAccessEntry): string {
  return format === 'json' ? jsonAccessLine(e) : combinedAccessLine(e);
}
