import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  BASE60_ALPHABET,
  MAX_INTERFACE_NAME,
  eniFromInterfaceName,
  interfaceNames,
  toBase60,
} from '../../src/tunnel/interface-names';

const U64_MAX = (1n << 64n) - 1n;

/**
 * A reference written the other way round: greedy over descending powers of
 * 60, the alphabet spelled out from character codes rather than a literal.
 */
function referenceBase60(value: bigint): string {
  const alphabet: string[] = [];
  for (let c = 48; c <= 57; c++) alphabet.push(String.fromCharCode(c)); // 0-9
  for (let c = 97; c <= 122; c++) alphabet.push(String.fromCharCode(c)); // a-z
  for (let c = 65; c <= 88; c++) alphabet.push(String.fromCharCode(c)); // A-X
  const powers = [1n];
  while (powers[powers.length - 1] * 60n <= value) powers.push(powers[powers.length - 1] * 60n);
  let rest = value;
  let out = '';
  for (let i = powers.length - 1; i >= 0; i--) {
    let digit = 0;
    while (rest >= powers[i]) {
      rest -= powers[i];
      digit++;
    }
    out += alphabet[digit];
  }
  return out;
}

test('hand-checked base 60 vectors (gwlbtun: 2^64-1 is "uur953OEv0f", 0 is "0")', () => {
  assert.equal(toBase60(0n), '0');
  assert.equal(toBase60(9n), '9');
  assert.equal(toBase60(10n), 'a');
  assert.equal(toBase60(36n), 'A');
  assert.equal(toBase60(59n), 'X');
  assert.equal(toBase60(60n), '10');
  assert.equal(toBase60(3599n), 'XX'); // 59*60 + 59
  assert.equal(toBase60(3600n), '100');
  assert.equal(toBase60(0x123456789abcdefn), '887epl1uMf');
  assert.equal(toBase60(U64_MAX), 'uur953OEv0f'); // the maximum gwlbtun's source comment gives
});

test('a pair seen in a real gwlbtun log: ENI 076bc493b822cd32f -> gwi-e8WXgsTQDkf', () => {
  // From a gwlbtun journal quoted in its issue #22 ("New interface gwi-e8WXgsTQDkf
  // and gwo-e8WXgsTQDkf for ENI ID 076bc493b822cd32f created").
  assert.deepEqual(interfaceNames(0x076bc493b822cd32fn), { gwi: 'gwi-e8WXgsTQDkf', gwo: 'gwo-e8WXgsTQDkf' });
});

test('interfaceNames for 0 and the largest id; both fit IFNAMSIZ-1', () => {
  assert.deepEqual(interfaceNames(0n), { gwi: 'gwi-0', gwo: 'gwo-0' });
  const max = interfaceNames(U64_MAX);
  assert.deepEqual(max, { gwi: 'gwi-uur953OEv0f', gwo: 'gwo-uur953OEv0f' });
  assert.equal(max.gwi.length, MAX_INTERFACE_NAME);
});

test('the alphabet is the first 60 characters of 0-9a-zA-Z', () => {
  assert.equal(BASE60_ALPHABET.length, 60);
  assert.equal(BASE60_ALPHABET, '0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ'.slice(0, 60));
  assert.equal(new Set(BASE60_ALPHABET).size, 60);
});

test('toBase60 agrees with the reference for every u64 (property)', () => {
  fc.assert(
    fc.property(fc.bigInt({ min: 0n, max: U64_MAX }), (id) => {
      const text = toBase60(id);
      assert.equal(text, referenceBase60(id));
      assert.ok(text.length >= 1 && text.length <= 11);
      assert.ok(/^[0-9a-zA-X]+$/.test(text));
      assert.ok(text === '0' || text[0] !== '0', 'no leading zero');
    }),
    { numRuns: 2000 },
  );
  // Around every power of 60, where the digit count changes.
  for (let p = 1n; p <= U64_MAX; p *= 60n) {
    for (const v of [p - 1n, p, p + 1n]) if (v <= U64_MAX) assert.equal(toBase60(v), referenceBase60(v));
  }
});

test('eniFromInterfaceName inverts interfaceNames (property)', () => {
  fc.assert(
    fc.property(fc.bigInt({ min: 0n, max: U64_MAX }), (eni) => {
      const { gwi, gwo } = interfaceNames(eni);
      assert.equal(eniFromInterfaceName(gwi), eni);
      assert.equal(eniFromInterfaceName(gwo), eni);
    }),
    { numRuns: 1000 },
  );
});

test('eniFromInterfaceName refuses names gwlbtun could not have made', () => {
  for (const name of ['eth0', 'gwi-', 'gwx-1', 'gwi-Y', 'gwi-Z', 'gwi-00', 'gwi-01', 'gwi-uur953OEv0g', 'gwi-uuuuuuuuuuu', 'gwi-1234567890ab', ' gwi-1']) {
    assert.equal(eniFromInterfaceName(name), undefined, name);
  }
});

test('toBase60 refuses values that are not a u64', () => {
  assert.throws(() => toBase60(-1n), { code: 'ERR_INVALID_ARG', message: 'Expected bigint between 0 and 2^64-1 for id but received -1 of type bigint' });
  assert.throws(() => toBase60(1n << 64n), { code: 'ERR_INVALID_ARG' });
  assert.throws(() => toBase60(5 as unknown as bigint), { code: 'ERR_INVALID_ARG' });
});
