/**
 * CPU per SigV4 signature: the ingress's Lattice signer (smithy's canonical
 * request, hashes on node:crypto, per-day key and per-second strings held)
 * against a plain smithy SignatureV4.sign() over the same request, built as
 * the signer did before it held anything. Alternating, so both see the same
 * machine load; a tight loop of awaited calls, measured with
 * process.cpuUsage (user + system), and a warm-up round not reported.
 *
 *   node dist/bench/lib/sign-cost.js [--calls 20000] [--rounds 3]
 *
 * Prints one line per round and contender, then the median of each.
 */
import { parseArgs } from 'node:util';
import { SignatureV4 } from '@smithy/signature-v4';
import type { AwsCredentialIdentity, HttpRequest } from '@smithy/types';
import { createLatticeSigner, LATTICE_SERVICE, splitPathAndQuery, UNSIGNED_PAYLOAD } from '../../src/ingress/sigv4/lattice-signer';
import { NodeSha256 } from '../../src/ingress/sigv4/node-sha256';

const MAX_CALLS = 1_000_000;
const MAX_ROUNDS = 20;
const REGION = 'us-east-1';
const HOST = 'svc-0123456789abcdef0.7d67968.vpc-lattice-svcs.us-east-1.on.aws';
const CREDENTIALS: AwsCredentialIdentity = {
  accessKeyId: 'ASIAEXAMPLEEXAMPLE',
  secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY',
  sessionToken: 'FwoGZXIvYXdzEXAMPLE//////////wEaDExampleSessionToken+/=',
};

type SignOnce = (i: number) => Promise<unknown>;

/** The ingress's signer, with a provider that answers at once as the memoised chain does. */
function latticeSigner(): SignOnce {
  const signer = createLatticeSigner({ region: REGION, credentials: async () => CREDENTIALS });
  return (i) => signer.sign({ method: 'GET', host: HOST, path: `/orders/${i}?limit=10&cursor=abc` });
}

/** smithy's own sign(), fed the request the signer built before it held anything. */
function plainSmithy(): SignOnce {
  const signer = new SignatureV4({ service: LATTICE_SERVICE, region: REGION, credentials: async () => CREDENTIALS, sha256: NodeSha256, applyChecksum: false });
  return (i) => {
    const { path, query } = splitPathAndQuery(`/orders/${i}?limit=10&cursor=abc`);
    const request: HttpRequest = { method: 'GET', protocol: 'https:', hostname: HOST, path, query, headers: { host: HOST, 'x-amz-content-sha256': UNSIGNED_PAYLOAD } };
    return signer.sign(request, { signingDate: new Date() });
  };
}

async function microsPerCall(signOnce: SignOnce, calls: number): Promise<number> {
  const start = process.cpuUsage();
  for (let i = 0; i < calls; i++) await signOnce(i);
  const used = process.cpuUsage(start);
  return (used.user + used.system) / calls;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

function count(text: string, name: string, max: number): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1 || n > max) throw new RangeError(`Expected an integer between 1 and ${max} for ${name} but received ${JSON.stringify(text)}`);
  return n;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { calls: { type: 'string', default: '20000' }, rounds: { type: 'string', default: '3' } } });
  const calls = count(values.calls, '--calls', MAX_CALLS);
  const rounds = count(values.rounds, '--rounds', MAX_ROUNDS);
  const contenders: [string, SignOnce][] = [
    ['lattice-signer', latticeSigner()],
    ['smithy-sign', plainSmithy()],
  ];
  // Warm-up: JIT and the signer's day key, not reported.
  for (const [, signOnce] of contenders) await microsPerCall(signOnce, Math.min(calls, 5000));
  const results = new Map<string, number[]>(contenders.map(([name]) => [name, []]));
  for (let round = 1; round <= rounds; round++) {
    for (const [name, signOnce] of contenders) {
      const us = await microsPerCall(signOnce, calls);
      results.get(name)?.push(us);
      console.log(`round ${round} ${name.padEnd(15)} ${us.toFixed(1)} us CPU/sign`);
    }
  }
  for (const [name, samples] of results) console.log(`median ${name.padEnd(15)} ${median(samples).toFixed(1)} us CPU/sign (${calls} calls x ${rounds} rounds)`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
