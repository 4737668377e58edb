import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { TLS_HELLO_MAX_BYTES, TLS_MALFORMED_REASONS, parseTlsClientHello, type TlsHelloResult } from '../../../src/inspect/parse';
import { clientHello, concat, ext, fragmentSizes, hostName, record, records } from './fixtures';

const REASONS = new Set<string>(TLS_MALFORMED_REASONS);

/** Every result must be one of the documented shapes. */
function assertValidResult(r: TlsHelloResult): void {
  switch (r.status) {
    case 'complete':
      assert.ok(r.sni === null || (r.sni.length > 0 && r.sni === r.sni.toLowerCase() && !r.sni.endsWith('.')));
      assert.ok(['none', 'ech', 'esni'].includes(r.ech));
      assert.ok(Array.isArray(r.alpn) && Array.isArray(r.supportedVersions));
      assert.ok(Number.isInteger(r.tlsVersion) && r.tlsVersion >= 0 && r.tlsVersion <= 0xffff);
      return;
    case 'incomplete':
      assert.ok(r.bytesWanted === undefined || (Number.isInteger(r.bytesWanted) && r.bytesWanted > 0));
      return;
    case 'not-tls':
      return;
    case 'malformed':
      assert.ok(REASONS.has(r.reason), r.reason);
      return;
    default:
      assert.fail(`unknown status ${JSON.stringify(r)}`);
  }
}

const fullHello = clientHello({
  extensions: [
    ext.opaque(0x0a0a, 0), // GREASE
    ext.serverName('WWW.Example.COM.'),
    ext.alpn(['h2', 'http/1.1']),
    ext.supportedVersions([0x3a3a, 0x0304, 0x0303]),
    ext.opaque(0x0033, 38), // key_share-sized filler
  ],
});

test('a single-record hello gives SNI (lowercased, no trailing dot), ALPN and versions', () => {
  assert.deepEqual(parseTlsClientHello(records(fullHello)), {
    status: 'complete',
    sni: 'www.example.com',
    ech: 'none',
    alpn: ['h2', 'http/1.1'],
    tlsVersion: 0x0303,
    supportedVersions: [0x3a3a, 0x0304, 0x0303],
  });
});

test('bytes after the hello (another record, early data) do not matter', () => {
  const r = parseTlsClientHello(concat([records(fullHello), record(Uint8Array.of(1, 2, 3), 0x17)]));
  assert.equal(r.status, 'complete');
});

test('ECH and the ESNI draft are reported, and the outer SNI is still returned', () => {
  const echHello = clientHello({ extensions: [ext.serverName('public.example.net'), ext.ech()] });
  const r = parseTlsClientHello(records(echHello));
  assert.equal(r.status, 'complete');
  assert.equal(r.status === 'complete' && r.ech, 'ech');
  assert.equal(r.status === 'complete' && r.sni, 'public.example.net');

  const esni = parseTlsClientHello(records(clientHello({ extensions: [ext.esni()] })));
  assert.deepEqual(esni.status === 'complete' && [esni.ech, esni.sni], ['esni', null]);
});

test('a hello without SNI, or without any extensions, gives sni null', () => {
  const noSni = parseTlsClientHello(records(clientHello({ extensions: [ext.alpn(['h2'])] })));
  assert.deepEqual(noSni.status === 'complete' && [noSni.sni, noSni.alpn], [null, ['h2']]);
  const bare = parseTlsClientHello(records(clientHello({ extensions: null, legacyVersion: 0x0301 })));
  assert.deepEqual(bare, { status: 'complete', sni: null, ech: 'none', alpn: [], tlsVersion: 0x0301, supportedVersions: [] });
});

test('not-tls: first byte not handshake, or not a 3.x record', () => {
  assert.deepEqual(parseTlsClientHello(Buffer.from('GET / HTTP/1.1\r\n')), { status: 'not-tls' });
  assert.deepEqual(parseTlsClientHello(Uint8Array.of(0x16, 0x02)), { status: 'not-tls' });
  assert.deepEqual(parseTlsClientHello(Uint8Array.of(0x80, 0x2e, 0x01)), { status: 'not-tls' }); // SSLv2-style hello
});

test('incomplete: empty and header-only streams, with a lower bound on the bytes wanted', () => {
  assert.deepEqual(parseTlsClientHello(new Uint8Array(0)), { status: 'incomplete', bytesWanted: 5 });
  const whole = records(fullHello);
  // Record header only: at least the handshake header is wanted.
  assert.deepEqual(parseTlsClientHello(whole.subarray(0, 5)), { status: 'incomplete', bytesWanted: 4 });
  // Once the handshake header is there, the rest of the hello is wanted.
  assert.deepEqual(parseTlsClientHello(whole.subarray(0, 9)), { status: 'incomplete', bytesWanted: whole.length - 9 });
  // One byte short.
  assert.deepEqual(parseTlsClientHello(whole.subarray(0, whole.length - 1)), { status: 'incomplete', bytesWanted: 1 });
});

const malformedCases: [string, Uint8Array, string][] = [
  ['a ServerHello', records(Uint8Array.of(0x02, 0, 0, 2, 3, 3)), 'not-client-hello'],
  ['an empty record', concat([record(new Uint8Array(0)), records(fullHello)]), 'empty-record'],
  ['a record longer than 2^14', concat([Uint8Array.of(0x16, 3, 1, 0x40, 0x01), fullHello]), 'record-too-long'],
  ['an alert between fragments', concat([record(fullHello.subarray(0, 10)), record(Uint8Array.of(2, 40), 0x15)]), 'unexpected-record-type'],
  ['a 4.x record after the first', concat([record(fullHello.subarray(0, 10)), record(fullHello.subarray(10), 0x16, 0x0401)]), 'bad-record-version'],
  ['a handshake length over the cap', records(Uint8Array.of(0x01, 0x01, 0x00, 0x00, 3, 3)), 'too-large'],
  ['a body of only a version', records(Uint8Array.of(0x01, 0, 0, 2, 3, 3)), 'short-client-hello'],
  ['a 33-byte session id', records(clientHello({ sessionIdLength: 33 })), 'bad-session-id'],
  ['two SNI extensions', records(clientHello({ extensions: [ext.serverName('a.example'), ext.serverName('b.example')] })), 'duplicate-extension'],
  ['an SNI with a slash', records(clientHello({ extensions: [ext.serverName('evil.example/x')] })), 'bad-server-name'],
  ['an SNI with a NUL', records(clientHello({ extensions: [ext.serverName('allowed.example\0.evil')] })), 'bad-server-name'],
  ['an SNI of only a dot', records(clientHello({ extensions: [ext.serverName('.')] })), 'bad-server-name'],
  ['an empty ALPN protocol', records(clientHello({ extensions: [ext.alpn([''])] })), 'bad-alpn'],
  ['an odd supported_versions list', records(clientHello({ extensions: [{ type: 0x2b, data: Uint8Array.of(3, 3, 4, 3) }] })), 'bad-supported-versions'],
];

for (const [what, bytes, reason] of malformedCases) {
  test(`malformed '${reason}': ${what}`, () => {
    assert.deepEqual(parseTlsClientHello(bytes), { status: 'malformed', reason });
  });
}

test('malformed length fields inside the hello body', () => {
  const h = clientHello({ extensions: [ext.serverName('www.example.com')] });
  const body = 4;
  const cipherAt = body + 2 + 32 + 1 + 32;
  const compAt = cipherAt + 2 + 6;
  const extsAt = compAt + 2;
  const patch = (at: number, bytes: number[]): Uint8Array => {
    const c = Uint8Array.from(h);
    c.set(bytes, at);
    return records(c);
  };
  const reason = (b: Uint8Array): string => {
    const r = parseTlsClientHello(b);
    return r.status === 'malformed' ? r.reason : r.status;
  };
  assert.equal(reason(patch(cipherAt, [0, 5])), 'bad-cipher-suites');
  assert.equal(reason(patch(compAt, [0])), 'bad-compression-methods');
  assert.equal(reason(patch(extsAt, [0, 1])), 'bad-extensions-length');
  assert.equal(reason(patch(extsAt + 4, [0xff, 0xff])), 'bad-extension-length');
});

test('the cap: a stream of 1-byte records that runs past 64 KiB is too-large', () => {
  const tiny = records(fullHello, new Array<number>(fullHello.length).fill(1));
  assert.equal(parseTlsClientHello(tiny).status, 'complete'); // 6 bytes per hello byte, still under the cap
  const big = clientHello({ extensions: [ext.serverName('x.example'), ext.opaque(0x5555, 12000)] });
  const fragmented = records(big, new Array<number>(big.length).fill(1));
  assert.ok(fragmented.length > TLS_HELLO_MAX_BYTES);
  assert.deepEqual(parseTlsClientHello(fragmented), { status: 'malformed', reason: 'too-large' });
  // Same answer before the cap is reached, once what is still missing cannot fit under it.
  assert.deepEqual(parseTlsClientHello(fragmented.subarray(0, 65_000)), { status: 'malformed', reason: 'too-large' });
  // Earlier, more records might still be larger ones: keep waiting.
  assert.equal(parseTlsClientHello(fragmented.subarray(0, 30_000)).status, 'incomplete');
});

const helloArb = fc
  .record({
    sni: fc.option(hostName, { nil: undefined }),
    alpn: fc.array(fc.constantFrom('h2', 'http/1.1', 'h3', 'acme-tls/1'), { maxLength: 3 }),
    ech: fc.boolean(),
    padding: fc.integer({ min: 0, max: 600 }),
  })
  .map(({ sni, alpn, ech, padding }) => {
    const extensions = [ext.supportedVersions([0x0304, 0x0303])];
    if (sni !== undefined) extensions.push(ext.serverName(sni));
    if (alpn.length > 0) extensions.push(ext.alpn(alpn));
    if (ech) extensions.push(ext.ech());
    extensions.push(ext.opaque(0x0015, padding));
    return { hello: clientHello({ extensions }), sni: sni ?? null, alpn, ech };
  });

test('property: split into 1..n records at random cut points, the hello gives the same facts', () => {
  fc.assert(
    fc.property(helloArb, fragmentSizes, ({ hello, sni, alpn, ech }, sizes) => {
      const unsplit = parseTlsClientHello(records(hello));
      const split = parseTlsClientHello(records(hello, sizes));
      assert.equal(split.status, 'complete');
      assert.deepEqual(split, unsplit);
      assert.deepEqual(split.status === 'complete' && [split.sni, split.alpn, split.ech], [sni, alpn, ech ? 'ech' : 'none']);
    }),
    { numRuns: 500 },
  );
});

test('property: every prefix of a valid (fragmented) hello is incomplete, and bytesWanted never overshoots', () => {
  fc.assert(
    fc.property(helloArb, fragmentSizes, ({ hello }, sizes) => {
      const stream = records(hello, sizes);
      for (let cut = 0; cut < stream.length; cut++) {
        const r = parseTlsClientHello(stream.subarray(0, cut));
        assert.equal(r.status, 'incomplete', `cut ${cut} of ${stream.length}: ${JSON.stringify(r)}`);
        // A lower bound: the stream really needs at least that many more bytes.
        assert.ok(r.status === 'incomplete' && r.bytesWanted !== undefined && cut + r.bytesWanted <= stream.length);
      }
      assert.equal(parseTlsClientHello(stream).status, 'complete');
    }),
    { numRuns: 60 },
  );
});

test('property: random bytes never throw and give a valid result', () => {
  const bytes = fc.oneof(
    fc.uint8Array({ maxLength: 300 }),
    // start like a handshake record so the walk gets further
    fc.uint8Array({ minLength: 2, maxLength: 600 }).map((b) => {
      b[0] = 0x16;
      b[1] = 0x03;
      return b;
    }),
  );
  fc.assert(fc.property(bytes, (b) => assertValidResult(parseTlsClientHello(b))), { numRuns: 5000 });
});

test('property: random mutations of valid hellos never throw and give a valid result', () => {
  const mutated = fc
    .tuple(helloArb, fragmentSizes, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }))
    .map(([{ hello }, sizes, edits]) => {
      const b = Uint8Array.from(records(hello, sizes));
      for (const [at, value] of edits) b[at % b.length] = value;
      return b;
    });
  fc.assert(fc.property(mutated, (b) => assertValidResult(parseTlsClientHello(b))), { numRuns: 3000 });
});

test('property: every truncation of a mutated hello gives a valid result', () => {
  const cases = fc.tuple(helloArb, fc.nat(), fc.integer({ min: 0, max: 255 })).map(([{ hello }, at, value]) => {
    const b = Uint8Array.from(records(hello));
    b[at % b.length] = value;
    return b;
  });
  fc.assert(
    fc.property(cases, (b) => {
      for (let cut = 0; cut <= b.length; cut++) assertValidResult(parseTlsClientHello(b.subarray(0, cut)));
    }),
    { numRuns: 100 },
  );
});
