/**
 * What smithy's own SignatureV4.sign() returns for a Lattice request (the
 * library the signer is built on, used whole): the reference the signer
 * and the relay's signatures are compared with.
 */
import { SignatureV4 } from '@smithy/signature-v4';
import type { AwsCredentialIdentity, HttpRequest } from '@smithy/types';
import { LATTICE_SERVICE, splitPathAndQuery, UNSIGNED_PAYLOAD } from '../../../src/ingress/sigv4/lattice-signer';
import { NodeSha256 } from '../../../src/ingress/sigv4/node-sha256';

/** smithy's signed headers (lower-case names) for `method host pathAndQuery` at `at`. */
export async function smithySigned(region: string, credentials: AwsCredentialIdentity, at: Date, method: string, host: string, pathAndQuery: string): Promise<Record<string, string>> {
  const signer = new SignatureV4({ service: LATTICE_SERVICE, region, credentials, sha256: NodeSha256, applyChecksum: false });
  const { path, query } = splitPathAndQuery(pathAndQuery);
  const request: HttpRequest = { method, protocol: 'https:', hostname: host, path, query, headers: { host, 'x-amz-content-sha256': UNSIGNED_PAYLOAD } };
  const signed = await signer.sign(request, { signingDate: at });
  return Object.fromEntries(Object.entries(signed.headers).map(([name, value]) => [name.toLowerCase(), value]));
}
