import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { MAX_OUT_OF_ORDER, TcpStream } from '../../src/inspect/stream';

const bytes = (n: number, from = 0): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (from + i) & 0xff);

test('segments in order, a retransmission, an overlap and a gap that fills', () => {
  const s = new TcpStream(1000);
  s.begin(100);
  const data = bytes(50);
  assert.equal(s.add(100, data.subarray(0, 10)), true);
  assert.equal(s.add(100, data.subarray(0, 10)), false, 'a retransmission adds nothing');
  assert.equal(s.add(105, data.subarray(5, 20)), true, 'an overlap adds its new part');
  assert.equal(s.add(130, data.subarray(30, 50)), false, 'after a gap: kept, not added');
  assert.equal(s.length, 20);
  assert.equal(s.add(120, data.subarray(20, 30)), true);
  assert.deepEqual(s.bytes(), data);
  assert.equal(s.start, 100);
});

test('the cap bounds the bytes kept; the start is the first seq when nothing set it', () => {
  const s = new TcpStream(16);
  s.add(7, bytes(40));
  assert.equal(s.start, 7);
  assert.equal(s.full, true);
  assert.deepEqual(s.bytes(), bytes(16));
  assert.equal(s.add(47, bytes(5)), false);
});

test(`at most ${MAX_OUT_OF_ORDER} segments wait after a gap`, () => {
  const s = new TcpStream(10_000);
  s.begin(0);
  for (let i = 1; i <= MAX_OUT_OF_ORDER + 4; i++) s.add(i * 10, bytes(10, i * 10));
  s.add(0, bytes(10));
  assert.equal(s.length, (MAX_OUT_OF_ORDER + 1) * 10);
});

test('property: any cut, order and duplication of a stream, across the sequence wrap, gives the stream back', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 600 }),
      fc.integer({ min: 0, max: 0xffffffff }),
      // At least 40 bytes a segment: at most 15 segments, within the waiting room.
      fc.array(fc.integer({ min: 40, max: 120 }), { minLength: 1, maxLength: 12 }),
      fc.array(fc.nat(), { maxLength: 30 }),
      (length, isn, sizes, shuffle) => {
        const data = bytes(length, 3);
        const segments: Array<[number, Uint8Array]> = [];
        for (let at = 0, i = 0; at < length; i++) {
          const size = Math.min(sizes[i % sizes.length], length - at);
          segments.push([(isn + at) >>> 0, data.subarray(at, at + size)]);
          at += size;
        }
        // A few swaps and duplicates.
        const sent = [...segments];
        for (const k of shuffle.slice(0, 8)) {
          const i = k % sent.length;
          const j = (k >> 3) % sent.length;
          [sent[i], sent[j]] = [sent[j], sent[i]];
          if (k % 5 === 0) sent.push(sent[i]);
        }
        const s = new TcpStream(10_000);
        s.begin(isn);
        for (const [seq, d] of sent) s.add(seq, d);
        assert.ok(segments.length <= MAX_OUT_OF_ORDER);
        assert.deepEqual(s.bytes(), data);
      },
    ),
  );
});
