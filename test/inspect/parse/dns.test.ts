import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  DNS_MALFORMED_REASONS,
  DNS_MAX_POINTERS,
  dnsTypeName,
  parseDnsMessage,
  parseDnsTcpStream,
  type DnsMessageResult,
} from '../../../src/inspect/parse';
import { concat, dnsCnameResponse, dnsQuery, encodeName, hostName, tcpFramed } from './fixtures';

const REASONS = new Set<string>(DNS_MALFORMED_REASONS);

function assertValidResult(r: DnsMessageResult): void {
  if (r.status === 'malformed') {
    assert.ok(REASONS.has(r.reason), r.reason);
    return;
  }
  assert.equal(r.status, 'complete');
  assert.ok(r.id >= 0 && r.id <= 0xffff && r.opcode >= 0 && r.opcode <= 15 && r.rcode >= 0 && r.rcode <= 15);
  for (const q of [...r.questions, ...r.answers]) {
    assert.equal(typeof q.name, 'string');
    assert.ok(!q.name.endsWith('.') || q.name.endsWith('\\.'), q.name);
    assert.equal(q.name, q.name.toLowerCase());
  }
  for (const a of r.answers) assert.ok(a.ttl >= 0 && a.ttl <= 0xffffffff);
}

const header = (id: number, flags: number, qd: number, an: number): Uint8Array =>
  Uint8Array.of(id >> 8, id & 0xff, flags >> 8, flags & 0xff, 0, qd, 0, an, 0, 0, 0, 0);

/** A message of one question (qdcount 1) made of these bytes. */
const withQuestion = (...parts: Uint8Array[]): Uint8Array => concat([header(1, 0, 1, 0), ...parts]);
/** A response of one answer (ancount 1): root owner name, class IN, TTL 1, then rdlength and rdata. */
const withAnswer = (type: number, rdlength: number, rdata: number[]): Uint8Array =>
  concat([header(1, 0x8000, 0, 1), Uint8Array.of(0, 0, type, 0, 1, 0, 0, 0, 1, 0, rdlength, ...rdata)]);
const longName = Array.from({ length: 4 }, () => 'x'.repeat(63)).join('.'); // 4 * 64 + 1 = 257 bytes

test('a query: id, flags, one question with the name lowercased', () => {
  assert.deepEqual(parseDnsMessage(dnsQuery(0xbeef, 'WWW.Example.COM', 28)), {
    status: 'complete',
    id: 0xbeef,
    response: false,
    opcode: 0,
    rcode: 0,
    questions: [{ name: 'www.example.com', type: 28 }],
    answers: [],
  });
});

test('a response with a compressed CNAME chain and an A record', () => {
  assert.deepEqual(parseDnsMessage(dnsCnameResponse(7)), {
    status: 'complete',
    id: 7,
    response: true,
    opcode: 0,
    rcode: 0,
    questions: [{ name: 'alias.example.com', type: 1 }],
    answers: [
      { name: 'alias.example.com', type: 5, ttl: 300, target: 'www.example.com' },
      { name: 'www.example.com', type: 1, ttl: 60, address: '203.0.113.10' },
    ],
  });
});

test('AAAA answers as RFC 5952 text; other types carry no address; NXDOMAIN rcode', () => {
  const aaaa = Uint8Array.from([0x20, 0x01, 0x0d, 0xb8, ...new Array<number>(11).fill(0), 0x05]);
  const msg = concat([
    header(1, 0x8183, 1, 2),
    encodeName('v6.example'),
    Uint8Array.of(0, 28, 0, 1),
    Uint8Array.of(0xc0, 12, 0, 28, 0, 1, 0xff, 0xff, 0xff, 0xff, 0, 16),
    aaaa,
    Uint8Array.of(0xc0, 12, 0, 16, 0, 1, 0, 0, 0, 5, 0, 3, 2, 0x68, 0x69), // TXT "hi"
  ]);
  const r = parseDnsMessage(msg);
  assert.equal(r.status, 'complete');
  assert.equal(r.status === 'complete' && r.rcode, 3);
  assert.deepEqual(r.status === 'complete' && r.answers, [
    { name: 'v6.example', type: 28, ttl: 0xffffffff, address: '2001:db8::5' },
    { name: 'v6.example', type: 16, ttl: 5 },
  ]);
});

test('odd label bytes are escaped, so a dot inside a label cannot fake a name', () => {
  const r = parseDnsMessage(
    withQuestion(Uint8Array.of(11), Buffer.from('allowed.com'), Uint8Array.of(4), Buffer.from('e\\v\0'), Uint8Array.of(0, 0, 1, 0, 1)),
  );
  assert.deepEqual(r.status === 'complete' && r.questions, [{ name: 'allowed\\.com.e\\\\v\\000', type: 1 }]);
});

test('the root name is the empty string; opcode is read', () => {
  const r = parseDnsMessage(concat([header(9, 0x2800, 1, 0), Uint8Array.of(0, 0, 2, 0, 1)]));
  assert.deepEqual(r.status === 'complete' && [r.opcode, r.questions], [5, [{ name: '', type: 2 }]]);
});

const malformedCases: [string, Uint8Array, string][] = [
  ['11 bytes', new Uint8Array(11), 'short-header'],
  ['a question count with no question', withQuestion(), 'name-past-end'],
  ['a name without its end', withQuestion(Uint8Array.of(3, 0x61, 0x62)), 'name-past-end'],
  ['a question without type and class', withQuestion(encodeName('a.example'), Uint8Array.of(0, 1)), 'question-past-end'],
  [
    'an answer count with a cut record',
    concat([header(1, 0x8000, 1, 1), encodeName('a.example'), Uint8Array.of(0, 1, 0, 1, 0xc0, 12, 0, 1)]),
    'record-past-end',
  ],
  ['rdlength past the end', withAnswer(1, 4, [1, 2]), 'record-past-end'],
  ['an extended label type (0x40)', withQuestion(Uint8Array.of(0x41, 0, 0, 1, 0, 1)), 'bad-label-type'],
  ['a pointer to itself', withQuestion(Uint8Array.of(0xc0, 12, 0, 1, 0, 1)), 'bad-pointer'],
  ['a forward pointer', withQuestion(Uint8Array.of(0xc0, 14, 0, 0, 1, 0, 1)), 'bad-pointer'],
  // label "a" at 12, then a pointer back to 12: a loop that only ever points backwards
  ['a backwards loop', withQuestion(Uint8Array.of(1, 0x61, 0xc0, 12, 0, 1, 0, 1)), 'bad-pointer'],
  ['a 257-byte name', withQuestion(encodeName(longName), Uint8Array.of(0, 1, 0, 1)), 'name-too-long'],
  ['an A record of 5 bytes', withAnswer(1, 5, [1, 2, 3, 4, 5]), 'bad-rdata'],
  ['an AAAA record of 4 bytes', withAnswer(28, 4, [1, 2, 3, 4]), 'bad-rdata'],
  ['a CNAME rdata longer than its name', withAnswer(5, 4, [1, 0x61, 0, 0x99]), 'bad-rdata'],
  ['a CNAME name running past its rdata', withAnswer(5, 2, [1, 0x61, 0]), 'bad-rdata'],
];

for (const [what, bytes, reason] of malformedCases) {
  test(`malformed '${reason}': ${what}`, () => {
    assert.deepEqual(parseDnsMessage(bytes), { status: 'malformed', reason });
  });
}

test(`a chain of ${DNS_MAX_POINTERS} pointers is followed, one more is refused`, () => {
  // Question 0 at offset 12 is the root; question k (k >= 1) is a pointer to
  // question k-1, so reading question k follows k pointers.
  const chain = (n: number): Uint8Array => {
    const questions = [Uint8Array.of(0, 0, 1, 0, 1)];
    for (let k = 1; k <= n; k++) questions.push(Uint8Array.of(0xc0, k === 1 ? 12 : 17 + 6 * (k - 2), 0, 1, 0, 1));
    return concat([header(1, 0, n + 1, 0), ...questions]);
  };
  const r = parseDnsMessage(chain(DNS_MAX_POINTERS));
  assert.equal(r.status === 'complete' && r.questions.length, DNS_MAX_POINTERS + 1);
  assert.deepEqual(parseDnsMessage(chain(DNS_MAX_POINTERS + 1)), { status: 'malformed', reason: 'too-many-pointers' });
});

test('dnsTypeName: mnemonics, and TYPE<n> for the rest', () => {
  const expected: [number, string][] = [
    [1, 'A'],
    [28, 'AAAA'],
    [5, 'CNAME'],
    [15, 'MX'],
    [16, 'TXT'],
    [2, 'NS'],
    [12, 'PTR'],
    [6, 'SOA'],
    [33, 'SRV'],
    [65, 'HTTPS'],
    [64, 'SVCB'],
    [255, 'ANY'],
    [257, 'CAA'],
    [999, 'TYPE999'],
    [0, 'TYPE0'],
  ];
  for (const [type, name] of expected) assert.equal(dnsTypeName(type), name);
});

test('DNS over TCP: complete messages in order, then incomplete for a partial one', () => {
  const q1 = dnsQuery(1, 'a.example', 1);
  const q2 = dnsQuery(2, 'b.example', 28);
  const stream = concat([tcpFramed(q1), tcpFramed(q2)]);
  const names = (r: ReturnType<typeof parseDnsTcpStream>): string[] =>
    r.messages.map((m) => (m.status === 'complete' ? m.questions[0].name : m.reason));
  assert.deepEqual(parseDnsTcpStream(new Uint8Array(0)), { messages: [], incomplete: false });
  assert.deepEqual(parseDnsTcpStream(stream.subarray(0, 1)), { messages: [], incomplete: true });
  assert.deepEqual(names(parseDnsTcpStream(stream)), ['a.example', 'b.example']);
  assert.equal(parseDnsTcpStream(stream).incomplete, false);
  const cut = parseDnsTcpStream(stream.subarray(0, stream.length - 3));
  assert.deepEqual([names(cut), cut.incomplete], [['a.example'], true]);
  // A zero-length frame is a message too short to be DNS.
  assert.deepEqual(parseDnsTcpStream(Uint8Array.of(0, 0)), {
    messages: [{ status: 'malformed', reason: 'short-header' }],
    incomplete: false,
  });
});

const queryArb = fc
  .tuple(fc.integer({ min: 0, max: 0xffff }), hostName, fc.constantFrom(1, 28, 5, 65, 255))
  .map(([id, name, type]) => ({ id, name, type, bytes: dnsQuery(id, name, type) }));
const validMessage = fc.oneof(
  queryArb.map((q) => q.bytes),
  fc.integer({ min: 0, max: 0xffff }).map(dnsCnameResponse),
);

test('property: generated queries read back', () => {
  fc.assert(
    fc.property(queryArb, ({ id, name, type, bytes }) => {
      const r = parseDnsMessage(bytes);
      assert.deepEqual(r.status === 'complete' && [r.id, r.questions], [id, [{ name, type }]]);
    }),
    { numRuns: 1000 },
  );
});

test('property: random bytes never throw and give a valid result', () => {
  const bytes = fc.oneof(
    fc.uint8Array({ maxLength: 300 }),
    // small counts and pointer-heavy bytes so the walk gets into names
    fc.uint8Array({ minLength: 12, maxLength: 200 }).map((b) => {
      b[4] = 0;
      b[5] &= 3;
      b[6] = 0;
      b[7] &= 3;
      for (let i = 12; i < b.length; i += 5) b[i] |= 0xc0;
      return b;
    }),
  );
  fc.assert(
    fc.property(bytes, (b) => {
      assertValidResult(parseDnsMessage(b));
      for (const m of parseDnsTcpStream(b).messages) assertValidResult(m);
    }),
    { numRuns: 5000 },
  );
});

test('property: every truncation and random mutation of valid messages gives a valid result', () => {
  const cases = fc.tuple(validMessage, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }));
  fc.assert(
    fc.property(cases, ([message, edits]) => {
      const b = Uint8Array.from(message);
      for (const [at, value] of edits) b[at % b.length] = value;
      for (let cut = 0; cut <= b.length; cut++) {
        assertValidResult(parseDnsMessage(b.subarray(0, cut)));
        const framed = tcpFramed(b);
        const r = parseDnsTcpStream(framed.subarray(0, cut));
        assert.equal(r.incomplete, cut > 0 && cut < framed.length);
      }
    }),
    { numRuns: 1000 },
  );
});
