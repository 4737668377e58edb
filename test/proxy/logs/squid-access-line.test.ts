/**
 * squidAccessLine against Squid's documented native format, field by field,
 * through a parser that mirrors Squid's field order
 * (%ts.%03tu %6tr %>a %Ss/%03>Hs %<st %rm %ru %[un %Sh/%<a %mt).
 * The comparison with lines a real Squid wrote is in squid-real.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { squidAccessLine, squidField, stripQueryTerms } from '../../../src/proxy/logs';
import { entry } from './entry';
import { parseSquidLine } from './squid-line';

test('a plain HTTP request: every field where Squid puts it', () => {
  const line = squidAccessLine(entry());
  assert.equal(line, '1795315185.128      5 10.0.1.5 TCP_MISS/200 1251 GET http://api.example.com/v1/items - HIER_DIRECT/203.0.113.20 text/plain');
  assert.deepEqual(parseSquidLine(line), {
    seconds: 1795315185,
    millis: 128,
    durationField: '     5',
    durationMs: 5,
    client: '10.0.1.5',
    result: 'TCP_MISS',
    status: '200',
    bytes: 1251,
    method: 'GET',
    url: 'http://api.example.com/v1/items',
    user: '-',
    hierarchy: 'HIER_DIRECT',
    upstream: '203.0.113.20',
    mediaType: 'text/plain',
  });
});

test('the timestamp is when the transaction ended (start + duration), seconds and zero-padded millis', () => {
  const at = (iso: string, durationMs: number): string => squidAccessLine(entry({ start: new Date(iso), durationMs })).split(' ')[0];
  assert.equal(at('2026-11-22T02:39:45.000Z', 5), '1795315185.005');
  assert.equal(at('2026-11-22T02:39:45.998Z', 3), '1795315186.001');
  assert.equal(at('2026-11-22T02:39:45.123Z', 1894), '1795315187.017');
  assert.equal(at('1970-01-01T00:00:00.000Z', 0), '0.000');
});

test('tunnels, denials, errors: status, hierarchy and the dashes', () => {
  const tunnel = squidAccessLine(
    entry({ method: 'CONNECT', url: 'api.example.com:443', port: 443, squidResult: 'TCP_TUNNEL', bytesToClient: 43, durationMs: 1894, contentType: null }),
  );
  assert.equal(tunnel, '1795315187.017   1894 10.0.1.5 TCP_TUNNEL/200 43 CONNECT api.example.com:443 - HIER_DIRECT/203.0.113.20 -');
  const denied = squidAccessLine(
    entry({ squidResult: 'TCP_DENIED', status: 403, bytesToClient: 3411, hierarchy: 'HIER_NONE', upstreamAddress: null, contentType: 'text/html', durationMs: 1 }),
  );
  assert.equal(denied, '1795315185.124      1 10.0.1.5 TCP_DENIED/403 3411 GET http://api.example.com/v1/items - HIER_NONE/- text/html');
  // Nothing sent at all (client gone before an answer): status 000, no bytes, no type.
  const nothing = squidAccessLine(
    entry({ squidResult: 'NONE_NONE', status: 0, bytesToClient: 0, hierarchy: 'HIER_NONE', upstreamAddress: null, contentType: null, durationMs: 0 }),
  );
  assert.equal(nothing, '1795315185.123      0 10.0.1.5 NONE_NONE/000 0 GET http://api.example.com/v1/items - HIER_NONE/- -');
});

test('%6tr: right-aligned in six columns, wider when it must; fractions rounded, nonsense is 0', () => {
  const tr = (durationMs: number): string => {
    const p = parseSquidLine(squidAccessLine(entry({ durationMs })));
    return p.durationField;
  };
  assert.equal(tr(0), '     0');
  assert.equal(tr(999999), '999999');
  assert.equal(tr(1234567), '1234567');
  assert.equal(tr(2.4), '     2');
  assert.equal(tr(2.5), '     3');
  assert.equal(tr(-3), '     0');
  assert.equal(tr(Number.NaN), '     0');
});

test('IPv6 addresses as they are; status over 999 and bytes nonsense clamp', () => {
  const p = parseSquidLine(squidAccessLine(entry({ client: '2001:db8::5', upstreamAddress: '2001:db8::20', status: 1200, bytesToClient: -1 })));
  assert.deepEqual([p.client, p.upstream, p.status, p.bytes], ['2001:db8::5', '2001:db8::20', '999', 0]);
});

test('queries are cut after "?" by default (strip_query_terms on), kept on request', () => {
  const url = 'http://api.example.com/v1/items?token=s3cret&x=1';
  assert.equal(parseSquidLine(squidAccessLine(entry({ url }))).url, 'http://api.example.com/v1/items?');
  assert.equal(parseSquidLine(squidAccessLine(entry({ url }), { stripQueryTerms: false })).url, url);
  assert.equal(stripQueryTerms('http://h/p'), 'http://h/p');
  assert.equal(stripQueryTerms('http://h/p?'), 'http://h/p?');
});

test('no field can break the line or shift the columns: spaces, controls and non-ASCII are percent-encoded', () => {
  const line = squidAccessLine(
    entry({
      url: 'http://h/a b\r\nFAKE 1 2',
      contentType: 'text/plain ünïcode',
      method: 'GE T',
      client: '',
      squidResult: '',
    }),
    { stripQueryTerms: false },
  );
  assert.ok(!/[\r\n]/.test(line));
  const p = parseSquidLine(line);
  assert.equal(p.url, 'http://h/a%20b%0D%0AFAKE%201%202');
  assert.equal(p.mediaType, 'text/plain%20%C3%BCn%C3%AFcode');
  assert.equal(p.method, 'GE%20T');
  assert.equal(p.client, '-');
  assert.equal(p.result, '-');
  assert.equal(squidField('ok%20already'), 'ok%20already');
  assert.equal(squidField(null), '-');
  assert.equal(squidField('\u{1F600}'), '%F0%9F%98%80');
});

test('property: any entry gives one line of exactly 10 fields that parse back to the entry', () => {
  const text = fc.string({ unit: 'binary', maxLength: 30 }).map((s) => s.replace(/%/g, ''));
  fc.assert(
    fc.property(
      fc.record({
        startMs: fc.integer({ min: 0, max: 4_102_444_800_000 }),
        durationMs: fc.integer({ min: 0, max: 10_000_000 }),
        client: text,
        status: fc.integer({ min: 0, max: 999 }),
        bytes: fc.nat(),
        method: text,
        url: text,
        upstream: fc.option(text, { nil: null }),
        contentType: fc.option(text, { nil: null }),
      }),
      (r) => {
        const e = entry({
          start: new Date(r.startMs),
          durationMs: r.durationMs,
          client: r.client,
          status: r.status,
          bytesToClient: r.bytes,
          method: r.method,
          url: r.url,
          upstreamAddress: r.upstream,
          contentType: r.contentType,
        });
        const line = squidAccessLine(e, { stripQueryTerms: false });
        assert.ok(!line.includes('\n'));
        const p = parseSquidLine(line);
        const end = r.startMs + r.durationMs;
        assert.deepEqual([p.seconds, p.millis, p.durationMs, p.bytes, Number(p.status)], [Math.floor(end / 1000), end % 1000, r.durationMs, r.bytes, r.status]);
        assert.equal(decodeURIComponentSafe(p.url), r.url === '' ? '-' : r.url);
        assert.equal(decodeURIComponentSafe(p.client), r.client === '' ? '-' : r.client);
      },
    ),
    { numRuns: 2000 },
  );
});

/** Undoes our percent-encoding (the generated text has no "%" of its own, so every %XX is ours). */
function decodeURIComponentSafe(s: string): string {
  return s.replace(/(?:%[0-9A-F]{2})+/g, (run) => Buffer.from(run.replace(/%/g, ''), 'hex').toString('utf8'));
}
