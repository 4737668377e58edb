/**
 * SigV4 for Amazon VPC Lattice (service `vpc-lattice-svcs`), computed by
 * @smithy/signature-v4 over ONLY the headers we set: host, x-amz-date,
 * x-amz-content-sha256 and, with temporary credentials, x-amz-security-token.
 * The proxy adds the client's other headers unsigned, so a client header can
 * never change what was signed, and Lattice (which does not support payload
 * signing) gets `x-amz-content-sha256: UNSIGNED-PAYLOAD`.
 *
 * Sign *after* the host rewrite, with the rewritten host (DESIGN.md, "VPC
 * Lattice facts"): Lattice checks the signature against the Host it receives.
 */
import { SignatureV4 } from '@smithy/signature-v4';
import type { AwsCredentialIdentityProvider, HttpRequest, QueryParameterBag } from '@smithy/types';
import { expected, invalidArg } from '../../validate';
import { NodeSha256 } from './node-sha256';

export const LATTICE_SERVICE = 'vpc-lattice-svcs';
export const UNSIGNED_PAYLOAD = 'UNSIGNED-PAYLOAD';

export interface LatticeSignerOptions {
  /** AWS region; when absent, AWS_REGION then AWS_DEFAULT_REGION. */
  region?: string;
  credentials: AwsCredentialIdentityProvider;
  /** The signing time; tests fix it. */
  clock?: () => Date;
}

export interface LatticeSignRequest {
  method: string;
  /** The rewritten Lattice host, exactly as it will be sent in Host. */
  host: string;
  /** Path and query exactly as they will be sent ("/a/b?x=1"). */
  path: string;
}

export interface LatticeSigner {
  readonly region: string;
  /** The headers to add (lower-case names): host, x-amz-date, x-amz-content-sha256, [x-amz-security-token], authorization. */
  sign(req: LatticeSignRequest): Promise<Record<string, string>>;
}

/** The headers sign() returns; anything else the signer might add is not ours to send. */
const RETURNED_HEADERS = ['host', 'x-amz-date', 'x-amz-content-sha256', 'x-amz-security-token', 'authorization'];

// Commercial, GovCloud, China and ISO partitions all follow "xx(-word)+-N".
const REGION_PATTERN = /^[a-z]{2}(-[a-z]+)+-\d{1,2}$/;
const METHOD_PATTERN = /^[A-Z]{1,20}$/;
// A Host value: no whitespace or control characters (they would break the header or the canonical form).
const HOST_PATTERN = /^[A-Za-z0-9.\-:[\]]{1,300}$/;

/** The region from the option, else AWS_REGION, else AWS_DEFAULT_REGION. */
export function resolveRegion(explicit: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  const region = explicit ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION;
  if (region === undefined || region === '') {
    expected('an AWS region (option region, AWS_REGION or AWS_DEFAULT_REGION)', 'region', 'none');
  }
  if (!REGION_PATTERN.test(region)) invalidArg('an AWS region such as "us-east-1"', 'region', region);
  return region;
}

/**
 * Splits "path?query" into the path (kept encoded: SigV4 for non-S3 services
 * encodes it once more) and the decoded query parameters (the signer encodes
 * them the RFC 3986 way). A parameter without "=" signs as "name=".
 */
export function splitPathAndQuery(pathAndQuery: string): { path: string; query: QueryParameterBag } {
  if (!pathAndQuery.startsWith('/') || /[\s#]/.test(pathAndQuery)) {
    invalidArg('a request path starting with "/" without spaces or fragment', 'path', pathAndQuery);
  }
  const mark = pathAndQuery.indexOf('?');
  const path = mark === -1 ? pathAndQuery : pathAndQuery.slice(0, mark);
  const query: Record<string, string | string[]> = {};
  if (mark !== -1) {
    for (const pair of pathAndQuery.slice(mark + 1).split('&')) {
      if (pair === '') continue;
      const eq = pair.indexOf('=');
      const name = decodeQueryPart(eq === -1 ? pair : pair.slice(0, eq), pathAndQuery);
      const value = eq === -1 ? '' : decodeQueryPart(pair.slice(eq + 1), pathAndQuery);
      const seen = query[name];
      query[name] = seen === undefined ? value : Array.isArray(seen) ? [...seen, value] : [seen, value];
    }
  }
  return { path, query };
}

function decodeQueryPart(part: string, whole: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    return invalidArg('a query string with valid percent-encoding', 'path', whole);
  }
}

export function createLatticeSigner(opts: LatticeSignerOptions): LatticeSigner {
  const region = resolveRegion(opts.region);
  const clock = opts.clock ?? (() => new Date());
  const signer = new SignatureV4({
    service: LATTICE_SERVICE,
    region,
    credentials: opts.credentials,
    // OpenSSL's SHA-256 and HMAC: this runs on every request.
    sha256: NodeSha256,
    // Lattice refuses payload signing; the header below says so explicitly.
    applyChecksum: false,
  });

  return {
    region,
    async sign(req: LatticeSignRequest): Promise<Record<string, string>> {
      if (typeof req.method !== 'string' || !METHOD_PATTERN.test(req.method)) {
        invalidArg('an upper-case HTTP method', 'method', req.method);
      }
      if (typeof req.host !== 'string' || !HOST_PATTERN.test(req.host)) invalidArg('a host name', 'host', req.host);
      const { path, query } = splitPathAndQuery(req.path);
      const request: HttpRequest = {
        method: req.method,
        protocol: 'https:',
        hostname: req.host,
        path,
        query,
        // Only these go in: the signature covers exactly what we control.
        headers: { host: req.host, 'x-amz-content-sha256': UNSIGNED_PAYLOAD },
      };
      const signed = await signer.sign(request, { signingDate: clock() });
      const out: Record<string, string> = {};
      for (const [name, value] of Object.entries(signed.headers)) {
        const lower = name.toLowerCase();
        if (RETURNED_HEADERS.includes(lower)) out[lower] = value;
      }
      return out;
    },
  };
}
