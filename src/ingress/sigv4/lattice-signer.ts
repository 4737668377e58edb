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
import { createHmac, createSecretKey, hash, type KeyObject } from 'node:crypto';
import { createScope, getCanonicalHeaders, getSigningKey, SignatureV4 } from '@smithy/signature-v4';
import type { AwsCredentialIdentity, AwsCredentialIdentityProvider, HeaderBag, HttpRequest, QueryParameterBag } from '@smithy/types';
import type { SigningParts } from '../../native/binding';
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
  /**
   * The headers to add (lower-case names): host, x-amz-date,
   * x-amz-content-sha256, [x-amz-security-token], authorization. Frozen:
   * the same object may be handed out again for the same request.
   */
  sign(req: LatticeSignRequest): Promise<SignedHeaders>;
  /**
   * The same headers at once, when the credentials a sign() resolved less
   * than CREDENTIALS_REUSE_MS ago and their day's signing key are held;
   * else null (then sign()). Throws as sign() rejects on a bad request.
   */
  signNow(req: LatticeSignRequest): SignedHeaders | null;
  /**
   * What signs further requests to the same host in the same second as
   * `signature` was signed, with the same credentials (for the relay,
   * which signs plain targets itself: native/src/sigv4_target.h); null for
   * headers this signer did not make, a host it did not remember, or
   * credentials that expire less than a second after that second.
   */
  signingParts(signature: SignedHeaders): SigningParts | null;
}

export type SignedHeaders = Readonly<Record<string, string>>;

/**
 * How long signNow may reuse the credentials sign() last resolved before
 * asking the provider again (never past their expiration): the provider
 * refreshes minutes before expiry, so a second's reuse cannot outlive them.
 */
export const CREDENTIALS_REUSE_MS = 1000;

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
  // No prototype: a parameter named "constructor" or "toString" is a parameter, not Object's.
  const query: Record<string, string | string[]> = Object.create(null) as Record<string, string | string[]>;
  if (mark !== -1) {
    for (const pair of pathAndQuery.slice(mark + 1).split('&')) {
      if (pair === '') continue;
      const eq = pair.indexOf('=');
      const name = decodeQueryPart(eq === -1 ? pair : pair.slice(0, eq), pathAndQuery);
      // smithy writes the canonical query into a plain object, where this name cannot be a key.
      if (name === '__proto__') invalidArg('a query without a parameter named __proto__', 'path', pathAndQuery);
      const value = eq === -1 ? '' : decodeQueryPart(pair.slice(eq + 1), pathAndQuery);
      const seen = query[name];
      query[name] = seen === undefined ? value : Array.isArray(seen) ? [...seen, value] : [seen, value];
    }
  }
  return { path, query };
}

function decodeQueryPart(part: string, whole: string): string {
  // Without "%" there is nothing to decode (nor to refuse): skips most of the per-request decoding.
  if (!part.includes('%')) return part;
  try {
    return decodeURIComponent(part);
  } catch {
    return invalidArg('a query string with valid percent-encoding', 'path', whole);
  }
}

/**
 * smithy's SignatureV4, for its canonical request: path normalisation and
 * double escaping, query encoding and sorting, header canonicalisation and
 * the signed-header list. Its own sign() wraps that in request cloning, an
 * HMAC of the secret per call (its key cache's key), date regexes and
 * several awaits: about 50 us of CPU per request here, more than the rest of
 * the ingress's work on one. So every canonicalisation rule stays smithy's
 * (and the property test compares every header with its sign()), and what
 * sign() adds around it is done once where it can be: the day's signing key
 * (a KeyObject), the second's x-amz-date and scope, and a host's canonical
 * headers in that second. Per request remain smithy's path and query
 * canonicalisation, a one-shot SHA-256 of the canonical request and the
 * HMAC of the string to sign, both node:crypto's: about 12 us of CPU.
 */
class LatticeCanonicalRequest extends SignatureV4 {
  canonical(request: HttpRequest, canonicalHeaders: HeaderBag): string {
    return this.createCanonicalRequest(request, canonicalHeaders, UNSIGNED_PAYLOAD);
  }

  signedHeaderList(canonicalHeaders: HeaderBag): string {
    return this.getCanonicalHeaderList(canonicalHeaders);
  }
}

/** The signing key of one day, region, service and secret (smithy's getSigningKey derives it). */
interface DayKey {
  readonly shortDate: string;
  // The secret's own string, not the credentials object: a provider may update its object in place.
  readonly secretAccessKey: string;
  readonly key: KeyObject;
  readonly bytes: Buffer;
}

/** A host's signed headers in one second with one set of credentials, canonicalised by smithy once. */
interface HostHeaders {
  readonly canonical: HeaderBag;
  /** "AWS4-HMAC-SHA256 Credential=<id>/<scope>, SignedHeaders=<list>, Signature=" */
  readonly authorizationPrefix: string;
  /** The canonical request after its query line (SigningParts). */
  readonly canonicalRest: string;
}

/**
 * Signatures one second remembers. The Authorization of a request is a
 * function of its method, host and path, the second and the credentials
 * alone, so a request repeated within the second (the same API call from
 * many clients, a poller, a health check) gets the headers signed for its
 * first time, at the cost of a Map lookup. Bounded: past this many, requests
 * are signed without being remembered.
 */
const SIGNATURES_PER_SECOND = 1024;

/** What every request signed in one second with one set of credentials shares. */
interface SecondContext {
  readonly second: number;
  readonly amzDate: string;
  // The credentials as strings, not the provider's object (which it may update in place).
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken: string | undefined;
  /** When the credentials expire (ms; Infinity without an expiration). */
  readonly expiresAt: number;
  /** The day's signing key it signs with. */
  readonly day: DayKey;
  /** "AWS4-HMAC-SHA256\n<amzDate>\n<scope>\n": the string to sign up to the canonical request's hash. */
  readonly stringToSignPrefix: string;
  /** "AWS4-HMAC-SHA256 Credential=<id>/<scope>, SignedHeaders=" */
  readonly credentialPart: string;
  readonly hosts: Map<string, HostHeaders>;
  /** By signatureKey(). */
  readonly signatures: Map<string, SignedHeaders>;
}

/**
 * "METHOD host path": none of the three may hold a space once checked, so
 * a checked request's key (exactly two spaces) is never another request's,
 * checked or not.
 */
function signatureKey(req: LatticeSignRequest): string {
  return `${req.method} ${req.host} ${req.path}`;
}

/**
 * Hosts whose canonical headers a second remembers: an ingress signs for a
 * handful of Lattice services; past this, a host is canonicalised per request.
 */
const HOSTS_PER_SECOND = 64;

/** The canonical request's first lines for "GET /" (no query), before canonicalRest. */
const CANONICAL_ROOT_LINES = 'GET\n/\n\n';

/** A checked request's headers until signWith sets the ones we sign. */
const NO_HEADERS: HeaderBag = Object.freeze({});

/** "20150830T123600Z" for the second starting at `second` * 1000 ms. */
function amzDateOfSecond(second: number): string {
  // "2015-08-30T12:36:00.000Z" -> "20150830T123600Z", without smithy's two regexes.
  const iso = new Date(second * 1000).toISOString();
  return `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}Z`;
}

export function createLatticeSigner(opts: LatticeSignerOptions): LatticeSigner {
  const region = resolveRegion(opts.region);
  const clock = opts.clock;
  const now = clock === undefined ? Date.now : () => clock().getTime();
  const canonicalizer = new LatticeCanonicalRequest({
    service: LATTICE_SERVICE,
    region,
    credentials: opts.credentials,
    // OpenSSL's SHA-256 and HMAC, for the key derivation.
    sha256: NodeSha256,
    // Lattice refuses payload signing; the header below says so explicitly.
    applyChecksum: false,
  });
  let dayKey: DayKey | null = null;
  // The context each signature was made in, for signingParts.
  const madeIn = new WeakMap<SignedHeaders, SecondContext>();
  let context: SecondContext | null = null;
  // The credentials the last sign() resolved, and until when signNow may use them.
  let recent: AwsCredentialIdentity | null = null;
  let recentUntil = 0;

  /** The held day key when it is this day's and this secret's, else null (then deriveKey). */
  function heldKey(credentials: AwsCredentialIdentity, shortDate: string): DayKey | null {
    const held = dayKey;
    return held !== null && held.shortDate === shortDate && held.secretAccessKey === credentials.secretAccessKey ? held : null;
  }

  async function deriveKey(credentials: AwsCredentialIdentity, shortDate: string): Promise<DayKey> {
    const bytes = Buffer.from(await getSigningKey(NodeSha256, credentials, shortDate, region, LATTICE_SERVICE));
    dayKey = { shortDate, secretAccessKey: credentials.secretAccessKey, key: createSecretKey(bytes), bytes };
    return dayKey;
  }

  /** The held context when it is this second's and these credentials', else null. */
  function heldContext(second: number, credentials: AwsCredentialIdentity): SecondContext | null {
    const held = context;
    return held !== null &&
      held.second === second &&
      held.accessKeyId === credentials.accessKeyId &&
      held.secretAccessKey === credentials.secretAccessKey &&
      held.sessionToken === credentials.sessionToken
      ? held
      : null;
  }

  /** The second's context, held or made with the held day key; null when the day's key must be derived first. */
  function contextFromHeld(second: number, credentials: AwsCredentialIdentity): SecondContext | null {
    const held = heldContext(second, credentials);
    if (held !== null) return held;
    const amzDate = amzDateOfSecond(second);
    const key = heldKey(credentials, amzDate.slice(0, 8));
    return key === null ? null : newContext(second, amzDate, credentials, key);
  }

  function newContext(second: number, amzDate: string, credentials: AwsCredentialIdentity, day: DayKey): SecondContext {
    const scope = createScope(amzDate.slice(0, 8), region, LATTICE_SERVICE);
    const made: SecondContext = {
      second,
      amzDate,
      accessKeyId: credentials.accessKeyId,
      secretAccessKey: credentials.secretAccessKey,
      sessionToken: credentials.sessionToken,
      expiresAt: credentials.expiration?.getTime() ?? Number.POSITIVE_INFINITY,
      day,
      stringToSignPrefix: `AWS4-HMAC-SHA256\n${amzDate}\n${scope}\n`,
      credentialPart: `AWS4-HMAC-SHA256 Credential=${credentials.accessKeyId}/${scope}, SignedHeaders=`,
      hosts: new Map(),
      signatures: new Map(),
    };
    context = made;
    return made;
  }

  /** Only these are signed: the signature covers exactly what we control. */
  function signedHeaders(host: string, ctx: SecondContext): Record<string, string> {
    const headers: Record<string, string> = { host, 'x-amz-content-sha256': UNSIGNED_PAYLOAD, 'x-amz-date': ctx.amzDate };
    const token = ctx.sessionToken;
    if (token !== undefined && token !== '') headers['x-amz-security-token'] = token;
    return headers;
  }

  function hostHeaders(host: string, ctx: SecondContext, headers: Record<string, string>): HostHeaders {
    const held = ctx.hosts.get(host);
    if (held !== undefined) return held;
    const canonical = getCanonicalHeaders({ method: '', protocol: 'https:', hostname: host, path: '/', query: {}, headers });
    // smithy's canonical request of "GET /" without its first three lines: the part every request to the host shares.
    const rest = canonicalizer.canonical({ method: 'GET', protocol: 'https:', hostname: host, path: '/', query: {}, headers }, canonical).slice(CANONICAL_ROOT_LINES.length);
    const made: HostHeaders = { canonical, authorizationPrefix: `${ctx.credentialPart}${canonicalizer.signedHeaderList(canonical)}, Signature=`, canonicalRest: rest };
    if (ctx.hosts.size < HOSTS_PER_SECOND) ctx.hosts.set(host, made);
    return made;
  }

  /** The request to sign as smithy sees it, or ERR_INVALID_ARG; `headers` are set in signWith. */
  function check(req: LatticeSignRequest): HttpRequest {
    const { method, host } = req;
    if (typeof method !== 'string' || !METHOD_PATTERN.test(method)) invalidArg('an upper-case HTTP method', 'method', method);
    if (typeof host !== 'string' || !HOST_PATTERN.test(host)) invalidArg('a host name', 'host', host);
    const { path, query } = splitPathAndQuery(req.path);
    return { method, protocol: 'https:', hostname: host, path, query, headers: NO_HEADERS };
  }

  /**
   * The request's headers in `ctx`: remembered, or checked (ERR_INVALID_ARG;
   * `checked` when the caller did already), signed and remembered.
   */
  function signIn(req: LatticeSignRequest, ctx: SecondContext, checked?: HttpRequest): SignedHeaders {
    const key = signatureKey(req);
    const held = ctx.signatures.get(key);
    if (held !== undefined) return held;
    const made = Object.freeze(signWith(checked ?? check(req), ctx));
    madeIn.set(made, ctx);
    if (ctx.signatures.size < SIGNATURES_PER_SECOND) ctx.signatures.set(key, made);
    return made;
  }

  function signWith(request: HttpRequest, ctx: SecondContext): Record<string, string> {
    const headers = signedHeaders(request.hostname, ctx);
    const { canonical, authorizationPrefix } = hostHeaders(request.hostname, ctx, headers);
    request.headers = headers;
    // One-shot: no Hash object to allocate and collect per request.
    const hashed = hash('sha256', canonicalizer.canonical(request, canonical), 'hex');
    const signature = createHmac('sha256', ctx.day.key).update(`${ctx.stringToSignPrefix}${hashed}`).digest('hex');
    headers.authorization = `${authorizationPrefix}${signature}`;
    return headers;
  }

  return {
    region,
    async sign(req: LatticeSignRequest): Promise<SignedHeaders> {
      // A bad request is refused before credentials are asked for.
      const request = check(req);
      const credentials = await opts.credentials();
      if (typeof credentials?.accessKeyId !== 'string' || typeof credentials.secretAccessKey !== 'string') {
        throw new Error('Resolved credential object is not valid');
      }
      const at = now();
      const second = Math.floor(at / 1000);
      let ctx = contextFromHeld(second, credentials);
      if (ctx === null) {
        const amzDate = amzDateOfSecond(second);
        ctx = newContext(second, amzDate, credentials, await deriveKey(credentials, amzDate.slice(0, 8)));
      }
      recent = credentials;
      recentUntil = Math.min(at + CREDENTIALS_REUSE_MS, credentials.expiration?.getTime() ?? Number.POSITIVE_INFINITY);
      return signIn(req, ctx, request);
    },
    signNow(req: LatticeSignRequest): SignedHeaders | null {
      const at = now();
      const ctx = recent === null || at >= recentUntil ? null : contextFromHeld(Math.floor(at / 1000), recent);
      if (ctx !== null) return signIn(req, ctx);
      // A bad request is refused even when sign() must resolve credentials first.
      check(req);
      // Null on a new day: sign() derives its key.
      return null;
    },
    signingParts(signature: SignedHeaders): SigningParts | null {
      const ctx = madeIn.get(signature);
      const held = ctx?.hosts.get(signature.host);
      // The credentials must outlast what the relay does with the parts: sign in the second, repeat a head for up to one more.
      if (ctx === undefined || held === undefined || ctx.expiresAt < (ctx.second + 2) * 1000) return null;
      return { second: ctx.second, key: ctx.day.bytes, stringToSignPrefix: ctx.stringToSignPrefix, canonicalRest: held.canonicalRest, authorizationPrefix: held.authorizationPrefix };
    },
  };
}
