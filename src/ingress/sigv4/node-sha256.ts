/**
 * SHA-256 and HMAC-SHA-256 for @smithy/signature-v4, backed by node:crypto
 * (OpenSSL) rather than a JavaScript implementation: the signer hashes the
 * canonical request and runs an HMAC on every request, so this sits on the
 * proxy's per-request path.
 *
 * The shape is smithy's Checksum constructor: `new Sha256()` hashes,
 * `new Sha256(secret)` computes an HMAC keyed with `secret`.
 */
import { createHash, createHmac, type Hash, type Hmac } from 'node:crypto';
import type { Checksum, SourceData } from '@smithy/types';

function bytes(data: SourceData): Buffer | string {
  if (typeof data === 'string') return data;
  if (ArrayBuffer.isView(data)) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return Buffer.from(data);
}

export class NodeSha256 implements Checksum {
  readonly digestLength = 32;
  private readonly secret: Buffer | string | undefined;
  private hash: Hash | Hmac;

  constructor(secret?: SourceData) {
    this.secret = secret === undefined ? undefined : bytes(secret);
    this.hash = this.fresh();
  }

  private fresh(): Hash | Hmac {
    return this.secret === undefined ? createHash('sha256') : createHmac('sha256', this.secret);
  }

  update(data: Uint8Array | string): void {
    this.hash.update(bytes(data));
  }

  digest(): Promise<Uint8Array> {
    return Promise.resolve(this.hash.digest());
  }

  reset(): void {
    this.hash = this.fresh();
  }
}
