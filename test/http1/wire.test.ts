import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ChunkedDecoder, encodeChunk, LAST_CHUNK, parseResponseHead, responseFraming, serializeRequestHead, type ResponseHead } from '../../src/http1';

const head = (text: string): ResponseHead => {
  const r = parseResponseHead(Buffer.from(text, 'latin1'), 16384);
  assert.equal(r.kind, 'head', text);
  return (r as { head: ResponseHead }).head;
};

test('parseResponseHead reads status, reason and fields as sent; incomplete until CRLF CRLF', () => {
  const text = 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nX-Empty:\r\nX-Space:   padded  \r\n\r\nbody';
  const r = parseResponseHead(Buffer.from(text, 'latin1'), 16384);
  assert.deepEqual(r, {
    kind: 'head',
    bytes: text.indexOf('body'),
    head: { minorVersion: 1, statusCode: 200, statusMessage: 'OK', rawHeaders: ['Content-Type', 'text/plain', 'Set-Cookie', 'a=1', 'Set-Cookie', 'b=2', 'X-Empty', '', 'X-Space', 'padded'] },
  });
  assert.deepEqual(head('HTTP/1.0 404\r\n\r\n'), { minorVersion: 0, statusCode: 404, statusMessage: '', rawHeaders: [] });
  const partial = parseResponseHead(Buffer.from('HTTP/1.1 200 OK\r\nA: b\r\n\r'), 16384);
  assert.deepEqual(partial, { kind: 'incomplete', scanFrom: 24 });
  // Resuming the search where it stopped still finds an end that straddles the two reads.
  assert.equal(parseResponseHead(Buffer.from('HTTP/1.1 200 OK\r\nA: b\r\n\r\n'), 16384, 24).kind, 'head');
});

test('parseResponseHead refuses what a lenient reader would guess at', () => {
  const cases: Array<[string, string]> = [
    ['HTTP/1.1 200 OK\r\nA: b\r\n folded\r\n\r\n', 'obs-fold'],
    ['HTTP/1.1 200 OK\r\nA : b\r\n\r\n', 'field-line'],
    ['HTTP/1.1 200 OK\r\nA: b\nC: d\r\n\r\n', 'field-line'],
    ['HTTP/1.1 200 OK\r\nA: b\x00\r\n\r\n', 'field-value'],
    ['HTTP/1.1 200 OK\r\n: empty name\r\n\r\n', 'field-line'],
    ['HTTP/2 200 OK\r\n\r\n', 'status-line'],
    ['HTTP/1.1 99 Low\r\n\r\n', 'status-line'],
    ['HTTP/1.1 2000 Long\r\n\r\n', 'status-line'],
    ['ICY 200 OK\r\n\r\n', 'status-line'],
  ];
  for (const [text, reason] of cases) assert.deepEqual(parseResponseHead(Buffer.from(text, 'latin1'), 16384), { kind: 'invalid', reason }, JSON.stringify(text));
  assert.deepEqual(parseResponseHead(Buffer.from(`HTTP/1.1 200 OK\r\nA: ${'x'.repeat(100)}\r\n\r\n`), 64), { kind: 'invalid', reason: 'head-too-large' });
  assert.deepEqual(parseResponseHead(Buffer.alloc(100, 0x61), 64), { kind: 'invalid', reason: 'head-too-large' });
});

test('responseFraming follows RFC 9112 6.3', () => {
  const f = (text: string, method = 'GET') => responseFraming(head(text), method);
  assert.deepEqual(f('HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n'), { ok: true, framing: { kind: 'length', length: 12 }, reusable: true });
  assert.deepEqual(f('HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n', 'HEAD'), { ok: true, framing: { kind: 'none' }, reusable: true });
  assert.deepEqual(f('HTTP/1.1 204 No Content\r\n\r\n'), { ok: true, framing: { kind: 'none' }, reusable: true });
  assert.deepEqual(f('HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n'), { ok: true, framing: { kind: 'none' }, reusable: true });
  // Codings the proxy never asked for (it does not forward TE) would reach the client unlabelled: refused.
  assert.deepEqual(f('HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n'), { ok: false, reason: 'transfer-coding' });
  assert.deepEqual(f('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n'), { ok: false, reason: 'transfer-coding' });
  assert.deepEqual(f('HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n'), { ok: true, framing: { kind: 'chunked' }, reusable: true });
  // Both: Transfer-Encoding decides, and the connection is not used again.
  assert.deepEqual(f('HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n'), { ok: true, framing: { kind: 'chunked' }, reusable: false });
  assert.deepEqual(f('HTTP/1.1 200 OK\r\n\r\n'), { ok: true, framing: { kind: 'close' }, reusable: false });
  assert.deepEqual(f('HTTP/1.1 200 OK\r\nContent-Length: 4\r\nConnection: close\r\n\r\n'), { ok: true, framing: { kind: 'length', length: 4 }, reusable: false });
  assert.deepEqual(f('HTTP/1.0 200 OK\r\nContent-Length: 4\r\n\r\n'), { ok: true, framing: { kind: 'length', length: 4 }, reusable: false });
  assert.deepEqual(f('HTTP/1.0 200 OK\r\nContent-Length: 4\r\nConnection: keep-alive\r\n\r\n'), { ok: true, framing: { kind: 'length', length: 4 }, reusable: true });
  assert.deepEqual(f('HTTP/1.1 200 OK\r\nContent-Length: 4, 4\r\nContent-Length: 4\r\n\r\n'), { ok: true, framing: { kind: 'length', length: 4 }, reusable: true });
  for (const bad of ['4, 5', '-1', '0x10', '', '1e3', '9999999999999999']) {
    assert.deepEqual(f(`HTTP/1.1 200 OK\r\nContent-Length: ${bad}\r\n\r\n`), { ok: false, reason: 'content-length' }, bad);
  }
});

/** Decodes `wire` fed in the given piece sizes; the data and whether the end was found, or the error. */
function decodePieces(wire: Buffer, sizes: number[]): { data: Buffer; done: boolean; consumed: number } | { error: string } {
  const decoder = new ChunkedDecoder(64);
  const out: Buffer[] = [];
  let at = 0;
  let consumed = 0;
  for (let k = 0; at < wire.length; k++) {
    const piece = wire.subarray(at, at + Math.max(1, sizes[k % Math.max(1, sizes.length)] ?? wire.length));
    at += piece.length;
    const r = decoder.push(piece, (d) => out.push(Buffer.from(d)));
    if (!r.ok) return { error: r.reason };
    consumed += r.consumed;
    if (r.done) break;
  }
  return { data: Buffer.concat(out), done: decoder.done, consumed };
}

test('chunked: what encodeChunk writes decodes to the same bytes, however the wire is split', () => {
  fc.assert(
    fc.property(fc.array(fc.uint8Array({ minLength: 1, maxLength: 300 }), { maxLength: 8 }), fc.array(fc.integer({ min: 1, max: 50 }), { maxLength: 10 }), (chunks, sizes) => {
      const wire = Buffer.concat([...chunks.flatMap((c) => encodeChunk(Buffer.from(c))), LAST_CHUNK, Buffer.from('NEXT')]);
      const r = decodePieces(wire, sizes);
      assert.ok('data' in r);
      assert.deepEqual(r.data, Buffer.concat(chunks.map((c) => Buffer.from(c))));
      assert.equal(r.done, true);
    }),
  );
});

test('chunked: extensions and trailers are skipped, the end is found exactly; bad framing refused', () => {
  const wire = Buffer.from('5;name=value\r\nhello\r\n6 ; x\r\n world\r\n0\r\nTrailer-A: 1\r\nTrailer-B: 2\r\n\r\nrest');
  const r = decodePieces(wire, [3]);
  assert.deepEqual(r, { data: Buffer.from('hello world'), done: true, consumed: wire.length - 4 });
  const bad: Array<[string, string]> = [
    ['x\r\n', 'chunk-size'],
    ['5\r\nhelloX\r\n', 'chunk-data'],
    ['5\nhello\r\n', 'chunk-size'],
    ['10000000000000\r\n', 'chunk-size'],
    [`1;${'e'.repeat(100)}\r\n`, 'chunk-extension'],
    [`0\r\nT: ${'v'.repeat(100)}\r\n\r\n`, 'trailer'],
    ['0\r\nT: v\n\r\n', 'trailer'],
  ];
  for (const [text, reason] of bad) assert.deepEqual(decodePieces(Buffer.from(text), [100]), { error: reason }, JSON.stringify(text));
});

test('serializeRequestHead writes fields in order and refuses CR, LF or NUL inside a piece', () => {
  assert.equal(serializeRequestHead('GET', '/a?b=c', ['Host', 'x.test', 'Via', '1.1 gatehouse']), 'GET /a?b=c HTTP/1.1\r\nHost: x.test\r\nVia: 1.1 gatehouse\r\n\r\n');
  for (const [m, t, h] of [
    ['GET', '/a\r\nX: y', []],
    ['GET', '/', ['X-Bad', 'v\r\nInjected: 1']],
    ['GET', '/', ['X\nY', 'v']],
    ['G\0T', '/', []],
  ] as Array<[string, string, string[]]>) {
    assert.throws(() => serializeRequestHead(m, t, h), { code: 'ERR_INVALID_ARG' });
  }
});
