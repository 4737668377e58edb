/**
 * Upstreams as the SSRF check approved them, and how a failure to reach
 * one is told. The relay connects to the address only: nothing below the
 * check resolves a name.
 */

export type UpstreamFailure = { reason: 'timeout'; status: 504 } | { reason: string; status: 502 };

/** Why a connection attempt or an exchange failed, as an AccessEntry reason and a status. */
export function upstreamFailure(err: unknown): UpstreamFailure {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  if (code === 'ETIMEDOUT' || code === 'ERR_UPSTREAM_TIMEOUT') return { reason: 'timeout', status: 504 };
  const known = typeof code === 'string' && /^[A-Z0-9_]{1,32}$/.test(code) ? code.toLowerCase() : 'failed';
  return { reason: `upstream:${known}`, status: 502 };
}

/** An upstream as the SSRF check approved it: an address, never a name. */
export interface UpstreamTarget {
  readonly address: string;
  readonly family: 4 | 6;
  readonly port: number;
}
