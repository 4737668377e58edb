/**
 * The two GENEVE decoders must agree: for any bytes, native/src/geneve.cc
 * (through the addon's decodeGeneve) and src/geneve/decode.ts give the same
 * verdict, the same reason, and for valid datagrams the same fields.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { GENEVE_REASONS, decodeGeneve, geneveHeaderLength, malformedDatagram, readGwlbFields } from '../../src/geneve';
import { loadNative } from '../../src/native/addon';
import type { NativeGeneveResult } from '../../src/native/binding';
import { GOOD_V4, GOOD_V6, nearValidDatagram, validDatagram } from './fixtures';

/** What the TypeScript decoder says, in the native result's shape. */
function tsVerdict(bytes: Uint8Array): NativeGeneveResult {
  const r = decodeGeneve(bytes);
  if (!r.ok) return { ok: false, reason: r.reason };
  return { ok: true, headerLength: geneveHeaderLength(r.value), protocol: r.value.protocol, ...readGwlbFields(r.value) };
}

function nativeVerdict(bytes: Uint8Array): NativeGeneveResult {
  const r = loadNative().decodeGeneve(bytes);
  // Only the contract's fields: extra ones the binding may add do not count.
  if (!r.ok) return { ok: false, reason: r.reason };
  return {
    ok: true,
    headerLength: r.headerLength,
    protocol: r.protocol,
    eni: r.eni,
    attachment: r.attachment,
    cookie: r.cookie,
  };
}

function assertAgree(bytes: Uint8Array): void {
  assert.deepStrictEqual(nativeVerdict(bytes), tsVerdict(bytes), `bytes: ${Buffer.from(bytes).toString('hex')}`);
}

/** Valid datagrams, broken the ways the wire and the emulator break them. */
const mutated: fc.Arbitrary<Uint8Array> = fc.oneof(
  // flipped bits (1 to 4)
  fc
    .tuple(validDatagram, fc.array(fc.nat(), { minLength: 1, maxLength: 4 }), fc.array(fc.nat(7), { minLength: 4, maxLength: 4 }))
    .map(([b, at, bits]) => {
      at.forEach((n, i) => (b[n % b.length] ^= 1 << bits[i]));
      return b;
    }),
  // a byte overwritten where the checks look: header, options, first inner bytes
  fc.tuple(validDatagram, fc.nat(), fc.nat(255)).map(([b, at, v]) => {
    const r = decodeGeneve(b);
    const header = r.ok ? geneveHeaderLength(r.value) : 8;
    b[at % Math.min(b.length, header + 2)] = v;
    return b;
  }),
  // the inner packet's first byte (version, IHL) set to anything
  fc.tuple(validDatagram, fc.nat(255)).map(([b, v]) => {
    const r = decodeGeneve(b);
    if (r.ok) b[geneveHeaderLength(r.value)] = v;
    return b;
  }),
  // truncated anywhere
  fc.tuple(validDatagram, fc.nat()).map(([b, n]) => b.subarray(0, n % (b.length + 1))),
  // random bytes appended (inner grows; the header stays valid)
  fc.tuple(validDatagram, fc.uint8Array({ maxLength: 16 })).map(([b, tail]) => new Uint8Array([...b, ...tail])),
  // every malformed kind the emulator sends
  fc.tuple(fc.constantFrom(...GENEVE_REASONS), validDatagram).map(([reason, b]) => malformedDatagram(reason, b)),
);

test('native and TypeScript decoders use the same reason names', () => {
  // Every reason is produced by the native decoder under its TypeScript name.
  for (const reason of GENEVE_REASONS) {
    const bad = malformedDatagram(reason, GOOD_V4);
    assert.deepStrictEqual(nativeVerdict(bad), { ok: false, reason });
  }
});

test('native and TypeScript decoders agree on GWLB datagrams', () => {
  assertAgree(GOOD_V4);
  assertAgree(GOOD_V6);
  assert.equal(nativeVerdict(GOOD_V4).ok, true);
});

test('native and TypeScript decoders agree on views that do not start at offset 0', () => {
  // A view into a bigger buffer, as a Buffer from a socket pool is: the
  // binding must honour byteOffset and byteLength.
  fc.assert(
    fc.property(validDatagram, fc.uint8Array({ minLength: 1, maxLength: 9 }), fc.nat(20), (b, before, cut) => {
      const backing = new Uint8Array([...before, ...b, 0x45, 0, 0, 0]);
      const view = backing.subarray(before.length, before.length + b.length - (cut % (b.length + 1)));
      assertAgree(view);
    }),
    { numRuns: 1000 },
  );
});

test('native and TypeScript decoders agree on random bytes', () => {
  const bytes = fc.oneof(
    fc.uint8Array({ maxLength: 300 }),
    fc.uint8Array({ minLength: 8, maxLength: 300 }).map((b) => {
      b[0] &= 0x3f; // version 0, so the option walk runs
      return b;
    }),
  );
  fc.assert(fc.property(bytes, assertAgree), { numRuns: 4000 });
});

test('native and TypeScript decoders agree on datagrams built near the edge of validity', () => {
  fc.assert(fc.property(nearValidDatagram, assertAgree), { numRuns: 6000 });
});

test('native and TypeScript decoders agree on mutated GWLB datagrams', () => {
  fc.assert(fc.property(mutated, assertAgree), { numRuns: 6000 });
});

test('native and TypeScript decoders agree on valid datagrams, fields included', () => {
  fc.assert(
    fc.property(validDatagram, (b) => {
      assert.equal(nativeVerdict(b).ok, true);
      assertAgree(b);
    }),
    { numRuns: 2000 },
  );
});
