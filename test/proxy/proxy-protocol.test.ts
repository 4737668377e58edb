/**
 * PROXY protocol v1/v2: table-driven cases written byte by byte from
 * HAProxy's specification and AWS's TLV layout, properties over a test-side
 * encoder, and readProxyHeader on real sockets, with curl
 * (--haproxy-protocol) as an independent v1 sender.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createServer as createHttpServer, type IncomingMessage } from 'node:http';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import fc from 'fast-check';
import { GatehouseError } from '../../src/errors';
import { ipv6ToBytes } from '../../src/packet/address';
import {
  parseProxyHeader,
  PROXY_V2_SIGNATURE,
  ProxyProtocolError,
  readProxyHeader,
  type ProxyHeader,
  type ProxyHeaderParse,
} from '../../src/proxy/proxy-protocol';

const SIG = [...PROXY_V2_SIGNATURE];
const ascii = (s: string): number[] => [...Buffer.from(s, 'latin1')];
const bytes = (...parts: (number | number[])[]): Uint8Array => Uint8Array.from(parts.flat());
const u16 = (n: number): number[] => [n >> 8, n & 0xff];
const VPCE = 'vpce-0123456789abcdef0';
/** AWS's TLV: 0xEA, length, subtype 0x01, the id in ASCII. */
const awsTlv = (id: string): number[] => [0xea, ...u16(1 + id.length), 0x01, ...ascii(id)];

function complete(p: ProxyHeaderParse): ProxyHeader {
  assert.equal(p.status, 'complete', JSON.stringify(p));
  return p as ProxyHeader;
}

/** The client and proxy addresses both the v1 line and the v2 NLB header below carry. */
const TCP4_ENDS = { source: { address: '192.0.2.10', port: 56324 }, destination: { address: '198.51.100.1', port: 3128 } };

// ---------------------------------------------------------------- v1

test('v1: TCP4, TCP6 and UNKNOWN lines', () => {
  const line = 'PROXY TCP4 192.0.2.10 198.51.100.1 56324 3128\r\n';
  assert.deepEqual(parseProxyHeader(bytes(ascii(line + 'GET / HTTP/1.1\r\n'))), {
    status: 'complete',
    length: line.length,
    version: 1,
    command: 'proxy',
    ...TCP4_ENDS,
    vpceId: null,
    tlvs: [],
  });
  // IPv6 text comes out canonical (as Node prints a peer's address).
  const v6 = complete(parseProxyHeader(bytes(ascii('PROXY TCP6 2001:DB8:0:0:0:0:0:10 2001:db8::1 0 65535\r\n'))));
  assert.deepEqual([v6.source, v6.destination], [
    { address: '2001:db8::10', port: 0 },
    { address: '2001:db8::1', port: 65535 },
  ]);
  const unknown = complete(parseProxyHeader(bytes(ascii('PROXY UNKNOWN ffff::1 whatever\r\nrest'))));
  assert.deepEqual(
    { length: unknown.length, command: unknown.command, source: unknown.source, destination: unknown.destination },
    { length: 32, command: 'proxy', source: null, destination: null },
  );
  assert.equal(complete(parseProxyHeader(bytes(ascii('PROXY UNKNOWN\r\n')))).length, 15);
});

test('v1: the longest line (107 bytes) is accepted; one byte more is not', () => {
  const full = 'PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n';
  assert.equal(full.length, 104);
  const longest = `PROXY UNKNOWN ${'x'.repeat(107 - 16)}\r\n`;
  assert.equal(longest.length, 107);
  assert.equal(complete(parseProxyHeader(bytes(ascii(longest)))).length, 107);
  assert.equal(complete(parseProxyHeader(bytes(ascii(full)))).length, 104);
  const tooLong = `PROXY UNKNOWN ${'x'.repeat(107 - 15)}\r\n`;
  assert.deepEqual(parseProxyHeader(bytes(ascii(tooLong))), { status: 'invalid', reason: 'v1-too-long' });
  // Without a CRLF, 106 bytes are enough to know (the CR would have to be at index 105 at most).
  assert.deepEqual(parseProxyHeader(bytes(ascii(`PROXY UNKNOWN ${'x'.repeat(92)}`))), { status: 'invalid', reason: 'v1-too-long' });
  assert.deepEqual(parseProxyHeader(bytes(ascii(`PROXY UNKNOWN ${'x'.repeat(91)}`))), { status: 'incomplete' });
});

test('v1: malformed lines and their reasons', () => {
  const cases: [string, string][] = [
    ['PROXY TCP4 192.0.2.10 198.51.100.1 56324\r\n', 'v1-syntax'],
    ['PROXY TCP4 192.0.2.10 198.51.100.1 56324 3128 extra\r\n', 'v1-syntax'],
    ['PROXY TCP4  192.0.2.10 198.51.100.1 56324 3128\r\n', 'v1-syntax'],
    ['PROXY TCP5 192.0.2.10 198.51.100.1 56324 3128\r\n', 'v1-syntax'],
    ['PROXY tcp4 192.0.2.10 198.51.100.1 56324 3128\r\n', 'v1-syntax'],
    ['PROXY TCP4 192.0.2.10 198.51.100.1 56324 3128\n', 'v1-syntax'],
    ['PROXY TCP4 192.0.2.10 198.51.100.1 56324 3128\rX', 'v1-syntax'],
    ['PROXY TCP4 2001:db8::1 198.51.100.1 56324 3128\r\n', 'v1-address'],
    ['PROXY TCP6 192.0.2.10 2001:db8::1 56324 3128\r\n', 'v1-address'],
    ['PROXY TCP4 192.0.2.256 198.51.100.1 56324 3128\r\n', 'v1-address'],
    ['PROXY TCP4 192.0.02.1 198.51.100.1 56324 3128\r\n', 'v1-address'],
    ['PROXY TCP6 fe80::1%eth0 2001:db8::1 56324 3128\r\n', 'v1-address'],
    ['PROXY TCP4 192.0.2.10 198.51.100.1 65536 3128\r\n', 'v1-port'],
    ['PROXY TCP4 192.0.2.10 198.51.100.1 056324 3128\r\n', 'v1-port'],
    ['PROXY TCP4 192.0.2.10 198.51.100.1 -1 3128\r\n', 'v1-port'],
    ['PROXY TCP4 192.0.2.10 198.51.100.1 0x10 3128\r\n', 'v1-port'],
    ['PROXZ TCP4', 'not-proxy-protocol'],
    ['GET / HTTP/1.1\r\n', 'not-proxy-protocol'],
    ['PROXY\tTCP4', 'not-proxy-protocol'],
  ];
  for (const [line, reason] of cases) {
    assert.deepEqual(parseProxyHeader(bytes(ascii(line))), { status: 'invalid', reason }, JSON.stringify(line));
  }
});

test('v1: every strict prefix of a valid line is incomplete', () => {
  const line = ascii('PROXY TCP4 192.0.2.10 198.51.100.1 56324 3128\r\n');
  for (let n = 0; n < line.length; n++) assert.deepEqual(parseProxyHeader(bytes(line.slice(0, n))), { status: 'incomplete' }, `${n} bytes`);
});

// ---------------------------------------------------------------- v2

/** What an NLB sends for an IPv4 client that came through a VPC endpoint. */
const NLB_V4 = bytes(
  SIG,
  0x21, // version 2, command PROXY
  0x11, // AF_INET, STREAM
  u16(12 + 3 + 1 + VPCE.length),
  [192, 0, 2, 10], // source
  [198, 51, 100, 1], // destination
  u16(56324),
  u16(3128),
  awsTlv(VPCE),
);

test('v2: an NLB header with the VPC endpoint TLV', () => {
  const payload = ascii('CONNECT api.example.com:443 HTTP/1.1\r\n\r\n');
  const p = complete(parseProxyHeader(bytes([...NLB_V4], payload)));
  assert.deepEqual(p, {
    status: 'complete',
    length: NLB_V4.length,
    version: 2,
    command: 'proxy',
    ...TCP4_ENDS,
    vpceId: VPCE,
    tlvs: [{ type: 0xea, value: Uint8Array.from([0x01, ...ascii(VPCE)]) }],
  });
  assert.equal(NLB_V4.length, 16 + 12 + 3 + 23);
});

test('v2: IPv6 addresses, several TLVs in order, NOOP padding and unknown types kept', () => {
  const src = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10];
  const dst = [0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01];
  const tlvs = [0x04, ...u16(2), 0, 0, 0x02, ...u16(3), ...ascii('a.b'), ...awsTlv('vpce-1'), 0xe0, ...u16(0)];
  const p = complete(parseProxyHeader(bytes(SIG, 0x21, 0x21, u16(36 + tlvs.length), src, dst, u16(1), u16(443), tlvs)));
  assert.deepEqual(p.source, { address: '2001:db8::10', port: 1 });
  assert.deepEqual(p.destination, { address: '2001:db8:1::1', port: 443 });
  assert.equal(p.vpceId, 'vpce-1');
  assert.deepEqual(
    p.tlvs.map((t) => [t.type, [...t.value]]),
    [
      [0x04, [0, 0]],
      [0x02, ascii('a.b')],
      [0xea, [1, ...ascii('vpce-1')]],
      [0xe0, []],
    ],
  );
  // IPv4-mapped IPv6 prints as Node prints such a peer.
  const mapped = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 1];
  const m = complete(parseProxyHeader(bytes(SIG, 0x21, 0x21, u16(36), mapped, mapped, u16(1), u16(2))));
  assert.equal(m.source?.address, '::ffff:192.0.2.1');
});

test('v2: LOCAL (an NLB health check) has no addresses, whatever the family says', () => {
  const plain = complete(parseProxyHeader(bytes(SIG, 0x20, 0x00, u16(0), ascii('GET /'))));
  assert.deepEqual(plain, { status: 'complete', length: 16, version: 2, command: 'local', source: null, destination: null, vpceId: null, tlvs: [] });
  const withInet = complete(parseProxyHeader(bytes(SIG, 0x20, 0x11, u16(12), [192, 0, 2, 1, 192, 0, 2, 2, 0, 1, 0, 2])));
  assert.deepEqual([withInet.length, withInet.source, withInet.destination], [28, null, null]);
  // The family and transport are ignored for LOCAL, even values PROXY may not use.
  const odd = complete(parseProxyHeader(bytes(SIG, 0x20, 0xff, u16(5), [1, 2, 3, 4, 5])));
  assert.deepEqual([odd.command, odd.length, odd.tlvs], ['local', 21, []]);
});

test('v2: PROXY with UNSPEC or UNIX families carries no usable addresses', () => {
  const unspec = complete(parseProxyHeader(bytes(SIG, 0x21, 0x00, u16(0))));
  assert.deepEqual([unspec.command, unspec.source, unspec.destination], ['proxy', null, null]);
  const unix = complete(parseProxyHeader(bytes(SIG, 0x21, 0x31, u16(216 + 4), new Array<number>(216).fill(0x2f), 0x04, ...u16(1), 0)));
  assert.deepEqual([unix.source, unix.tlvs.length, unix.length], [null, 1, 16 + 220]);
});

test('v2: malformed headers and their reasons', () => {
  const inet = (...rest: (number | number[])[]): Uint8Array => bytes(SIG, rest.flat());
  const addr = [192, 0, 2, 10, 198, 51, 100, 1, 0, 1, 0, 2];
  const cases: [Uint8Array, string][] = [
    [inet(0x11, 0x11, u16(12), addr), 'v2-version'],
    [inet(0x31, 0x11, u16(12), addr), 'v2-version'],
    [inet(0x22, 0x11, u16(12), addr), 'v2-command'],
    [inet(0x2f, 0x11, u16(12), addr), 'v2-command'],
    [inet(0x21, 0x41, u16(12), addr), 'v2-family'],
    [inet(0x21, 0x13, u16(12), addr), 'v2-transport'],
    [inet(0x21, 0x11, u16(11), addr.slice(0, 11)), 'v2-length'],
    [inet(0x21, 0x21, u16(12), addr), 'v2-length'],
    [inet(0x21, 0x31, u16(0)), 'v2-length'],
    [inet(0x21, 0x11, u16(14), addr, 0x04, 0x00), 'v2-tlv'],
    [inet(0x21, 0x11, u16(16), addr, 0x04, ...u16(2), 0), 'v2-tlv'],
    [inet(0x21, 0x11, u16(12 + 3 + 8), addr, 0xea, ...u16(8), 0x01, ...ascii('vpce 01')), 'aws-vpce-id'],
    [inet(0x21, 0x11, u16(12 + 4), addr, 0xea, ...u16(1), 0x01), 'aws-vpce-id'],
    [bytes(SIG.slice(0, 11), 0x0b), 'not-proxy-protocol'],
  ];
  for (const [input, reason] of cases) {
    assert.deepEqual(parseProxyHeader(input), { status: 'invalid', reason }, Buffer.from(input).toString('hex'));
  }
  // Other AWS subtypes and empty 0xEA values are carried, not read as an endpoint id.
  const other = complete(parseProxyHeader(inet(0x21, 0x11, u16(12 + 3 + 3 + 3), addr, 0xea, ...u16(3), 0x02, 0x41, 0x42, 0xea, ...u16(0))));
  assert.deepEqual([other.vpceId, other.tlvs.length], [null, 2]);
});

test('v2: a header is judged on its fixed 16 bytes before the rest arrives', () => {
  // A huge declared length with a bad command is invalid at once, not "incomplete" until 64 KiB came.
  assert.deepEqual(parseProxyHeader(bytes(SIG, 0x23, 0x11, u16(0xffff))), { status: 'invalid', reason: 'v2-command' });
  assert.deepEqual(parseProxyHeader(bytes(SIG, 0x21, 0x11, u16(0xffff), [1, 2, 3])), { status: 'incomplete' });
  for (let n = 0; n < NLB_V4.length; n++) assert.deepEqual(parseProxyHeader(NLB_V4.subarray(0, n)), { status: 'incomplete' }, `${n} bytes`);
});

// ---------------------------------------------------------------- properties

interface Spec {
  v6: boolean;
  src: number[];
  dst: number[];
  sport: number;
  dport: number;
  tlvs: { type: number; value: number[] }[];
}

/** A test-side v2 encoder, written from the layout in the spec. */
function encodeV2(s: Spec): Uint8Array {
  const tlvBytes = s.tlvs.flatMap((t) => [t.type, ...u16(t.value.length), ...t.value]);
  const body = [...s.src, ...s.dst, ...u16(s.sport), ...u16(s.dport), ...tlvBytes];
  return bytes(SIG, 0x21, s.v6 ? 0x21 : 0x11, u16(body.length), body);
}

const specArb: fc.Arbitrary<Spec> = fc.boolean().chain((v6) =>
  fc.record({
    v6: fc.constant(v6),
    src: fc.array(fc.integer({ min: 0, max: 255 }), { minLength: v6 ? 16 : 4, maxLength: v6 ? 16 : 4 }),
    dst: fc.array(fc.integer({ min: 0, max: 255 }), { minLength: v6 ? 16 : 4, maxLength: v6 ? 16 : 4 }),
    sport: fc.integer({ min: 0, max: 65535 }),
    dport: fc.integer({ min: 0, max: 65535 }),
    // Type 0xEA is left out here: its value has a shape (tested above).
    tlvs: fc.array(
      fc.record({ type: fc.integer({ min: 0, max: 0xe9 }), value: fc.array(fc.integer({ min: 0, max: 255 }), { maxLength: 40 }) }),
      { maxLength: 5 },
    ),
  }),
);

test('property: encode -> parse gives back the addresses, ports and TLVs; any cut is incomplete', () => {
  fc.assert(
    fc.property(specArb, fc.nat(), (s, cutSeed) => {
      const wire = encodeV2(s);
      const p = complete(parseProxyHeader(bytes([...wire], [0x47, 0x45, 0x54])));
      assert.equal(p.length, wire.length);
      for (const [got, want] of [
        [p.source?.address ?? '', s.src],
        [p.destination?.address ?? '', s.dst],
      ] as const) {
        if (!s.v6) {
          assert.equal(got, want.join('.'));
          continue;
        }
        assert.deepEqual([...ipv6ToBytes(got)], want);
        // WHATWG URL serialises IPv6 RFC 5952 style, but prints an embedded IPv4 in hex, where inet_ntop uses dots.
        const groups = want.filter((_, i) => i % 2 === 0).map((_, g) => ((want[2 * g] << 8) | want[2 * g + 1]).toString(16));
        if (!got.includes('.')) assert.equal(got, new URL(`http://[${groups.join(':')}]/`).hostname.slice(1, -1));
      }
      assert.equal(p.source?.port, s.sport);
      assert.equal(p.destination?.port, s.dport);
      assert.deepEqual(
        p.tlvs.map((t) => ({ type: t.type, value: [...t.value] })),
        s.tlvs.map((t) => ({ type: t.type, value: t.value })),
      );
      assert.deepEqual(parseProxyHeader(wire.subarray(0, cutSeed % wire.length)), { status: 'incomplete' });
    }),
    { numRuns: 1000 },
  );
});

test('property: arbitrary bytes never throw, and a complete header fits in what was given', () => {
  const prefixed = fc.oneof(
    fc.uint8Array({ maxLength: 300 }),
    fc.uint8Array({ maxLength: 300 }).map((b) => bytes(SIG, [...b])),
    fc.string({ maxLength: 120 }).map((s) => bytes(ascii(`PROXY ${s}`))),
  );
  fc.assert(
    fc.property(prefixed, (input) => {
      const p = parseProxyHeader(input);
      if (p.status === 'complete') assert.ok(p.length <= input.length && p.length >= 15);
      if (p.status === 'invalid') assert.ok(p.reason.length > 0);
    }),
    { numRuns: 3000 },
  );
});

// ---------------------------------------------------------------- readProxyHeader on real sockets

async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

/**
 * A server that reads the PROXY header, then hands the socket to a real
 * node:http server, which answers with what it parsed; the test reads the
 * header and the request back.
 */
async function proxyThenHttp(t: { after: (fn: () => Promise<void> | void) => void }, timeoutMs = 2000) {
  const results: { header?: ProxyHeader; error?: unknown }[] = [];
  const requests: { method?: string; url?: string; body: string }[] = [];
  const http = createHttpServer((req: IncomingMessage, res) => {
    let body = '';
    req.setEncoding('utf8').on('data', (d: string) => (body += d));
    req.on('end', () => {
      requests.push({ method: req.method, url: req.url, body });
      res.end(`${req.method} ${req.url} ${body}`);
    });
  });
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    readProxyHeader(socket, { timeoutMs }).then(
      (header) => {
        results.push({ header });
        http.emit('connection', socket);
      },
      (error: unknown) => {
        results.push({ error });
        socket.destroy();
      },
    );
  });
  const port = await listen(server);
  t.after(
    () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        http.close();
        server.close(() => resolve());
      }),
  );
  return { port, results, requests };
}

/**
 * Writes `chunks` one by one (each in its own write, a tick apart), then
 * collects the reply until the server closes (Connection: close, or its
 * error path). `endAfter` half-closes after the last chunk.
 */
async function exchange(port: number, chunks: Uint8Array[], endAfter = false): Promise<string> {
  const socket = connect(port, '127.0.0.1');
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  let reply = '';
  socket.setEncoding('latin1').on('data', (d: string) => (reply += d));
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  socket.on('error', () => undefined);
  for (const c of chunks) {
    await new Promise<void>((resolve) => socket.write(c, () => resolve()));
    await new Promise((resolve) => setImmediate(resolve));
  }
  if (endAfter) socket.end();
  await closed;
  return reply;
}

const REQUEST = bytes(ascii('POST /hello HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nConnection: close\r\n\r\nworld'));

test('readProxyHeader: header and request in one segment, or cut anywhere: the HTTP parser sees the request from its first byte', async (t) => {
  const { port, results, requests } = await proxyThenHttp(t);
  const stream = bytes([...NLB_V4], [...REQUEST]);
  const cuts = [[stream.length], [1, stream.length], [12, 16], [NLB_V4.length], [NLB_V4.length - 1], [NLB_V4.length + 1], [5, 20, 30, 60]];
  for (const cut of cuts) {
    const chunks: Uint8Array[] = [];
    let from = 0;
    for (const to of [...cut, stream.length]) {
      if (to > from) chunks.push(stream.subarray(from, to));
      from = Math.max(from, to);
    }
    const reply = await exchange(port, chunks);
    assert.match(reply, /^HTTP\/1\.1 200 OK\r\n[\s\S]*\r\n\r\nPOST \/hello world$/, `cut at ${cut.join(',')}`);
  }
  assert.equal(results.length, cuts.length);
  for (const r of results) assert.deepEqual([r.header?.vpceId, r.header?.source], [VPCE, { address: '192.0.2.10', port: 56324 }]);
  assert.deepEqual(requests.map((r) => r.body), new Array<string>(cuts.length).fill('world'));
});

test('readProxyHeader: curl --haproxy-protocol (an independent v1 sender)', async (t) => {
  const { port, results } = await proxyThenHttp(t);
  const out = await new Promise<string>((resolve, reject) =>
    execFile('curl', ['-sS', '--max-time', '10', '--haproxy-protocol', '-d', 'world', `http://127.0.0.1:${port}/hello`], (err, stdout, stderr) =>
      err ? reject(new Error(`${err.message} ${stderr}`)) : resolve(stdout),
    ),
  );
  assert.equal(out, 'POST /hello world');
  const header = results[0]?.header;
  assert.ok(header, JSON.stringify(results));
  assert.equal(header.version, 1);
  // curl puts its own socket's ends in the line: 127.0.0.1 and the server's port.
  assert.equal(header.source?.address, '127.0.0.1');
  assert.deepEqual(header.destination, { address: '127.0.0.1', port });
});

test('readProxyHeader: rejects garbage, early close and silence with ERR_PROXY_PROTOCOL', async (t) => {
  const { port, results } = await proxyThenHttp(t, 300);
  await exchange(port, [REQUEST]);
  await exchange(port, [NLB_V4.subarray(0, 20)], true);
  await exchange(port, [bytes(ascii('PROXY TCP4 192.0.2.1'))]); // then silence: the server's timeout closes it
  assert.equal(results.length, 3);
  const errors = results.map((r) => r.error);
  for (const e of errors) {
    assert.ok(e instanceof ProxyProtocolError && e instanceof GatehouseError, String(e));
    assert.equal(e.code, 'ERR_PROXY_PROTOCOL');
  }
  const [garbage, closed, silent] = errors as ProxyProtocolError[];
  assert.equal(garbage.reason, 'not-proxy-protocol');
  assert.match(garbage.message, /^Expected a PROXY protocol v1 or v2 header for the connection from 127\.0\.0\.1:\d+ but received not-proxy-protocol \(\d+ bytes\)$/);
  assert.equal(closed.reason, 'closed');
  assert.match(closed.message, / but received 20 bytes before the peer closed$/);
  assert.equal(silent.reason, 'timeout');
  assert.match(silent.message, / but received 20 bytes in 300 ms$/);
});

test('readProxyHeader: a bad timeout is an argument error', async () => {
  const socket = connect({ port: 9, host: '127.0.0.1' });
  socket.on('error', () => undefined);
  try {
    await assert.rejects(readProxyHeader(socket, { timeoutMs: 0 }), {
      code: 'ERR_INVALID_ARG',
      message: 'Expected a positive integer for timeoutMs but received 0 of type number',
    });
  } finally {
    socket.destroy();
  }
});
