/**
 * Request paths in the form prefixes are compared in. Two spellings of one
 * path must pick the same route, or a client could reach an upstream through
 * another route's prefix (`/public/../admin/`, `/%61dmin/`): percent-encoded
 * unreserved characters are decoded (RFC 3986 section 6.2.2.2) and paths
 * with dot segments are refused rather than guessed at.
 */

const UNRESERVED = /^[A-Za-z0-9\-._~]$/;

function decodeUnreserved(path: string): string {
  if (!path.includes('%')) return path;
  return path.replace(/%([0-9A-Fa-f]{2})/g, (_whole, hex: string) => {
    const c = String.fromCharCode(parseInt(hex, 16));
    return UNRESERVED.test(c) ? c : `%${hex.toUpperCase()}`;
  });
}

function hasDotSegment(path: string): boolean {
  for (const segment of path.split('/')) if (segment === '.' || segment === '..') return true;
  return false;
}

/**
 * The path of a request target without query and fragment, normalised; null
 * for a target that is not an origin-form path or that holds dot segments.
 */
export function normaliseRequestPath(target: string): string | null {
  let end = target.length;
  const query = target.indexOf('?');
  if (query >= 0) end = query;
  const hash = target.indexOf('#');
  if (hash >= 0 && hash < end) end = hash;
  const path = decodeUnreserved(target.slice(0, end));
  if (!path.startsWith('/') || hasDotSegment(path)) return null;
  return path;
}

/** `/api/` matches what starts with it; `/api` matches `/api` and `/api/...` but not `/apix`. */
export function prefixMatches(prefix: string, path: string): boolean {
  if (prefix.endsWith('/')) return path.startsWith(prefix);
  return path === prefix || (path.startsWith(prefix) && path.charCodeAt(prefix.length) === 0x2f);
}
