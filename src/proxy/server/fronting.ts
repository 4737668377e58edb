/**
 * The domain-fronting check on a CONNECT tunnel. A policy that allows
 * `CONNECT cdn.example:443` must not let the client then ask, inside TLS,
 * for another name the same front end serves: the ClientHello's SNI must be
 * the CONNECT host, or a name the policy allows on the same port by itself.
 *
 * The relay holds the client's bytes until this check has an answer; none
 * reaches the upstream before. Bytes that are not TLS at all follow the
 * operator's `fronting.nonTls` setting; TLS that cannot be read (malformed,
 * or not complete in time) is refused, since a hello we cannot read is a
 * hello we cannot check.
 */
import { parseTlsClientHello } from '../../inspect/parse/tls';

export interface FrontingContext {
  /** The CONNECT host, normalised (lowercase name, or canonical IP text). */
  host: string;
  hostIsIp: boolean;
  nonTls: 'allow' | 'deny';
  /** Whether the policy allows a CONNECT to this name on the tunnel's port. */
  sniAllowed: (sni: string) => boolean;
}

export type FrontingWhy =
  | 'sni-matches' // the SNI is the CONNECT host
  | 'sni-allowed' // another name, but one the policy allows here by itself
  | 'ip-without-sni' // CONNECT to an address, hello names nothing: nothing to compare
  | 'not-tls' // the first bytes are not TLS (outcome per fronting.nonTls)
  | 'sni-mismatch' // another name the policy does not allow
  | 'no-sni' // CONNECT to a name, hello names nothing
  | 'malformed-tls'; // starts like TLS but is not a readable ClientHello

export type FrontingVerdict = { verdict: 'wait' } | { verdict: 'allow' | 'deny'; why: FrontingWhy; sni: string | null };

/** Judges the client's first bytes of a tunnel; 'wait' while the ClientHello is incomplete. */
export function judgeTunnelStart(bytes: Uint8Array, ctx: FrontingContext): FrontingVerdict {
  const hello = parseTlsClientHello(bytes);
  switch (hello.status) {
    case 'incomplete':
      return { verdict: 'wait' };
    case 'not-tls':
      return { verdict: ctx.nonTls, why: 'not-tls', sni: null };
    case 'malformed':
      return { verdict: 'deny', why: 'malformed-tls', sni: null };
    case 'complete': {
      const sni = hello.sni;
      if (sni === null) return ctx.hostIsIp ? { verdict: 'allow', why: 'ip-without-sni', sni } : { verdict: 'deny', why: 'no-sni', sni };
      if (sni === ctx.host.toLowerCase()) return { verdict: 'allow', why: 'sni-matches', sni };
      return ctx.sniAllowed(sni) ? { verdict: 'allow', why: 'sni-allowed', sni } : { verdict: 'deny', why: 'sni-mismatch', sni };
    }
  }
}
