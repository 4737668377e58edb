/**
 * An independent SigV4 implementation, written from the AWS documentation
 * ("Create a signed AWS API request": canonical request, string to sign,
 * HMAC key chain) with node:crypto only. lattice-signer.test.ts checks it
 * against the AWS SigV4 test suite's published "get-vanilla" signature, then
 * checks the signer against it; the ingress acceptance tests verify the
 * Authorization headers an upstream receives with it.
 */
import { createHash, createHmac } from 'node:crypto';

// RFC 3986 unreserved characters stay; everything else is %XX upper-case, per byte of UTF-8.
function uriEncode(text: string): string {
  let out = '';
  for (const byte of Buffer.from(text, 'utf8')) {
    const ch = String.fromCharCode(byte);
    out += /[A-Za-z0-9\-_.~]/.test(ch) ? ch : '%' + byte.toString(16).toUpperCase().padStart(2, '0');
  }
  return out;
}

export interface ReferenceInput {
  method: string;
  path: string; // as sent, already percent-encoded once
  query: string; // raw, without "?"
  headers: Record<string, string>;
  payloadHash: string;
  region: string;
  service: string;
  secretKey: string;
  accessKey: string;
  amzDate: string;
}

export function referenceSigV4(input: ReferenceInput): { authorization: string; signature: string; signedHeaders: string } {
  // Canonical URI: non-S3 services encode each segment of the sent path once more.
  const canonicalUri = input.path
    .split('/')
    .map((segment) => uriEncode(segment))
    .join('/');
  // Canonical query: decoded names and values, re-encoded, sorted by name then value.
  const pairs = input.query === '' ? [] : input.query.split('&').filter((p) => p !== '');
  const canonicalQuery = pairs
    .map((pair) => {
      const eq = pair.indexOf('=');
      const name = decodeURIComponent(eq === -1 ? pair : pair.slice(0, eq));
      const value = eq === -1 ? '' : decodeURIComponent(pair.slice(eq + 1));
      return [uriEncode(name), uriEncode(value)] as const;
    })
    .sort((a, b) => (a[0] === b[0] ? (a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0) : a[0] < b[0] ? -1 : 1))
    .map(([n, v]) => `${n}=${v}`)
    .join('&');
  const names = Object.keys(input.headers)
    .map((n) => n.toLowerCase())
    .sort();
  const lowered = Object.fromEntries(Object.entries(input.headers).map(([n, v]) => [n.toLowerCase(), v]));
  const canonicalHeaders = names.map((n) => `${n}:${lowered[n]!.trim().replace(/\s+/g, ' ')}\n`).join('');
  const signedHeaders = names.join(';');
  const canonicalRequest = [input.method, canonicalUri, canonicalQuery, canonicalHeaders, signedHeaders, input.payloadHash].join('\n');
  const date = input.amzDate.slice(0, 8);
  const scope = `${date}/${input.region}/${input.service}/aws4_request`;
  const stringToSign = ['AWS4-HMAC-SHA256', input.amzDate, scope, createHash('sha256').update(canonicalRequest).digest('hex')].join('\n');
  const hmac = (key: Buffer | string, data: string): Buffer => createHmac('sha256', key).update(data, 'utf8').digest();
  const signingKey = hmac(hmac(hmac(hmac('AWS4' + input.secretKey, date), input.region), input.service), 'aws4_request');
  const signature = createHmac('sha256', signingKey).update(stringToSign, 'utf8').digest('hex');
  return {
    signature,
    signedHeaders,
    authorization: `AWS4-HMAC-SHA256 Credential=${input.accessKey}/${scope}, SignedHeaders=${signedHeaders}, Signature=${signature}`,
  };
}
