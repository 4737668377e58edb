import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { LATENCY_BUCKETS, latencyBucketLowerNs, percentileNs } from '../../src/native/latency';

/** The bucket of a value, written from the layout binding.ts describes (not from latency.ts). */
function bucketOf(v: bigint): number {
  if (v < 16n) return Number(v);
  const e = v.toString(2).length - 1;
  return (e - 3) * 16 + Number((v >> BigInt(e - 4)) & 15n);
}

function histogram(samples: [bucket: number, count: number][]): BigUint64Array {
  const h = new BigUint64Array(LATENCY_BUCKETS);
  for (const [b, n] of samples) h[b] += BigInt(n);
  return h;
}

test('buckets below 32 hold one value each; above, 16 equal sub-buckets per power of two', () => {
  for (let i = 0; i < 32; i++) assert.equal(latencyBucketLowerNs(i), i);
  assert.equal(latencyBucketLowerNs(32), 32);
  assert.equal(latencyBucketLowerNs(33), 34);
  assert.equal(latencyBucketLowerNs(48), 64);
  assert.equal(latencyBucketLowerNs(49), 68);
  assert.equal(latencyBucketLowerNs(16 * 17), 2 ** 20); // 1 ms is near bucket 272
  for (let i = 1; i <= LATENCY_BUCKETS; i++) assert.ok(latencyBucketLowerNs(i) > latencyBucketLowerNs(i - 1), `bucket ${i} grows`);
});

test('every 64-bit value falls in the bucket whose bounds contain it', () => {
  const edges = [0n, 1n, 15n, 16n, 31n, 32n, 33n, 1000n, 999_999n, 2n ** 32n, 2n ** 63n - 1n, 2n ** 64n - 1n];
  const check = (v: bigint): void => {
    const b = bucketOf(v);
    assert.ok(b < LATENCY_BUCKETS);
    assert.ok(BigInt(latencyBucketLowerNs(b)) <= v, `${v} >= lower bound of bucket ${b}`);
    assert.ok(v < BigInt(latencyBucketLowerNs(b + 1)), `${v} < lower bound of bucket ${b + 1}`);
  };
  edges.forEach(check);
  fc.assert(fc.property(fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), (v) => check(v)));
});

test('latencyBucketLowerNs rejects indices outside the histogram', () => {
  assert.throws(() => latencyBucketLowerNs(-1), { code: 'ERR_INVALID_ARG', message: 'Expected integer between 0 and 1024 for bucket but received -1 of type number' });
  assert.throws(() => latencyBucketLowerNs(1025), { code: 'ERR_INVALID_ARG' });
  assert.throws(() => latencyBucketLowerNs(1.5), { code: 'ERR_INVALID_ARG' });
});

test('percentileNs gives the largest value of the bucket holding the rank', () => {
  const h = histogram([
    [20, 50], // exactly 20 ns
    [100, 49], // [640, 672) ns
    [300, 1], // [3670016, 3801088) ns
  ]);
  assert.equal(percentileNs(h, 0), 20);
  assert.equal(percentileNs(h, 50), 20);
  assert.equal(percentileNs(h, 50.5), 671);
  assert.equal(percentileNs(h, 99), 671);
  assert.equal(percentileNs(h, 99.5), 3801087);
  assert.equal(percentileNs(h, 100), 3801087);
  // With the largest sample known, no answer exceeds it.
  assert.equal(percentileNs(h, 100, 3700000n), 3700000);
  assert.equal(percentileNs(h, 50, 3700000n), 20);
});

test('percentileNs of one sample is that sample for every p; of none, 0', () => {
  const h = histogram([[7, 1]]);
  for (const p of [0, 1, 50, 99.9, 100]) assert.equal(percentileNs(h, p), 7);
  assert.equal(percentileNs(new BigUint64Array(LATENCY_BUCKETS), 99), 0);
});

test('percentileNs never decreases as p grows', () => {
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.integer({ min: 0, max: LATENCY_BUCKETS - 1 }), fc.integer({ min: 1, max: 1000 })), { minLength: 1, maxLength: 20 }),
      fc.double({ min: 0, max: 100, noNaN: true }),
      fc.double({ min: 0, max: 100, noNaN: true }),
      (samples, a, b) => {
        const h = histogram(samples);
        const [lo, hi] = a <= b ? [a, b] : [b, a];
        assert.ok(percentileNs(h, lo) <= percentileNs(h, hi));
      },
    ),
  );
});

test('percentileNs rejects bad arguments', () => {
  const h = histogram([[1, 1]]);
  assert.throws(() => percentileNs(h, 101), { code: 'ERR_INVALID_ARG', message: 'Expected number between 0 and 100 for p but received 101 of type number' });
  assert.throws(() => percentileNs(h, Number.NaN), { code: 'ERR_INVALID_ARG' });
  assert.throws(() => percentileNs(new BigUint64Array(10), 50), { code: 'ERR_INVALID_ARG', message: 'Expected 1024 buckets for hist but received 10' });
});
