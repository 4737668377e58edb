/**
 * What the ingress reads from a client's request head before routing: the
 * host and path it asks for (origin-form with a Host header, or the
 * absolute-form a server must also accept, RFC 9112 section 3.2.2, where the
 * target's authority wins over Host), and the few header values the access
 * log and X-Forwarded-For need. One pass over the raw headers; the parsed
 * `req.headers` object is never built.
 */

export interface RequestHead {
  /** The host the client asked for, as sent (port and case included); '' without one. */
  host: string;
  /** Path and query as sent, starting with "/". */
  path: string;
  /** X-Forwarded-For values as received, joined; '' without any. */
  forwardedFor: string;
  userAgent: string;
  referer: string;
  /** The Content-Length header as sent; '' without one. */
  contentLength: string;
  /** The body is chunked (Transfer-Encoding present; Node refuses other codings with a length). */
  chunked: boolean;
  /** An Expect or Upgrade field is present: node:http answers 100 Continue and takes upgrades (the relay hands these over). */
  expectOrUpgrade: boolean;
}

export type RequestHeadResult = { ok: true; head: RequestHead } | { ok: false; reason: string };

const SLASH = 0x2f;
const ABSOLUTE = /^https?:\/\/([^/?#]*)([^#]*)/i;

export function readRequestHead(url: string, raw: readonly string[]): RequestHeadResult {
  const head: RequestHead = { host: '', path: url, forwardedFor: '', userAgent: '', referer: '', contentLength: '', chunked: false, expectOrUpgrade: false };
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i];
    // Length first: most headers are skipped without lowercasing their name.
    switch (name.length) {
      case 4:
        if (name.toLowerCase() === 'host') head.host = raw[i + 1];
        break;
      case 6:
        if (name.toLowerCase() === 'expect') head.expectOrUpgrade = true;
        break;
      case 7: {
        const lower = name.toLowerCase();
        if (lower === 'referer') head.referer = raw[i + 1];
        else if (lower === 'upgrade') head.expectOrUpgrade = true;
        break;
      }
      case 10:
        if (name.toLowerCase() === 'user-agent') head.userAgent = raw[i + 1];
        break;
      case 14:
        if (name.toLowerCase() === 'content-length') head.contentLength = raw[i + 1];
        break;
      case 15:
        if (name.toLowerCase() === 'x-forwarded-for') head.forwardedFor = head.forwardedFor === '' ? raw[i + 1] : `${head.forwardedFor}, ${raw[i + 1]}`;
        break;
      case 17:
        if (name.toLowerCase() === 'transfer-encoding') head.chunked = true;
        break;
    }
  }
  if (url.charCodeAt(0) === SLASH) return { ok: true, head };
  const m = ABSOLUTE.exec(url);
  if (m === null) return { ok: false, reason: `the request target ${JSON.stringify(url.slice(0, 100))} is neither a path nor an http(s) URL` };
  if (m[1].includes('@')) return { ok: false, reason: 'credentials in the request URL are not forwarded' };
  head.host = m[1];
  head.path = m[2] === '' ? '/' : m[2].charCodeAt(0) === SLASH ? m[2] : `/${m[2]}`;
  return { ok: true, head };
}
