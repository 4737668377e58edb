/**
 * Reading the generator's latency histogram (NativeGenerator.latency).
 *
 * Log-linear buckets, the layout native/src/generator_checker.h writes: a
 * value v below 16 ns counts in bucket v; above, with e = floor(log2 v), in
 * bucket (e - 3) * 16 + the four bits of v below its top bit. So every power
 * of two is cut into 16 equal sub-buckets: at most 1/16 (6.25 %) wide.
 */
import { GatehouseError } from '../errors';

export const LATENCY_BUCKETS = 64 * 16;

/** Smallest latency (ns) counted in bucket i; i = LATENCY_BUCKETS gives the end of the last. */
export function latencyBucketLowerNs(i: number): number {
  if (!Number.isInteger(i) || i < 0 || i > LATENCY_BUCKETS) {
    throw new GatehouseError(
      'ERR_INVALID_ARG',
      `Expected integer between 0 and ${LATENCY_BUCKETS} for bucket but received ${String(i)} of type ${typeof i}`,
    );
  }
  if (i < 16) return i;
  const exponent = Math.floor(i / 16) + 3;
  return (16 + (i % 16)) * 2 ** (exponent - 4);
}

/**
 * The p-th percentile (0..100) of a latency histogram, in ns: the largest
 * value of the bucket holding that rank (HdrHistogram's "highest equivalent
 * value"), so the true percentile is at most this and within one bucket of it.
 * With `maxNs` (NativeGenerator.latencyMax) the answer never exceeds the
 * largest sample, which makes p100 exact. An empty histogram gives 0 (no
 * sample, no latency to report; callers show sample counts next to it).
 */
export function percentileNs(hist: ArrayLike<bigint>, p: number, maxNs?: bigint): number {
  if (typeof p !== 'number' || !(p >= 0 && p <= 100)) {
    throw new GatehouseError('ERR_INVALID_ARG', `Expected number between 0 and 100 for p but received ${String(p)} of type ${typeof p}`);
  }
  if (hist.length !== LATENCY_BUCKETS) {
    throw new GatehouseError(
      'ERR_INVALID_ARG',
      `Expected ${LATENCY_BUCKETS} buckets for hist but received ${hist.length}`,
    );
  }
  let total = 0n;
  for (let i = 0; i < hist.length; i++) total += hist[i];
  if (total === 0n) return 0;
  // Rank of the sample at p (1-based); p = 0 means the smallest sample.
  const scaled = BigInt(Math.round(p * 1e6));
  let rank = (total * scaled + 100_000_000n - 1n) / 100_000_000n;
  if (rank < 1n) rank = 1n;
  let seen = 0n;
  for (let i = 0; i < hist.length; i++) {
    seen += hist[i];
    if (seen >= rank) {
      const highest = latencyBucketLowerNs(i + 1) - 1;
      return maxNs === undefined ? highest : Math.min(highest, Number(maxNs));
    }
  }
  return 0; // not reached: seen ends at total >= rank
}
