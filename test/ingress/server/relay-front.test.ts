/**
 * The ingress's two engines for plain-HTTP listeners — the native relay
 * (relay-front.ts) and node:http — side by side on the same requests: the
 * upstream must receive the same requests (line, header fields, bodies,
 * signature), the client the same answers, the log the same entries. Then
 * the relay's hand-over: a connection that asks for what only node:http
 * speaks goes on there, pipelined bytes and an unread answer included.
 * Real sockets on loopback, servers in-process.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import * as net from 'node:net';
import type { AddressInfo } from 'node:net';
import { startIngressServer, type IngressAccessEntry, type IngressEngine, type IngressServer } from '../../../src/ingress/server';
import { parseRoutes, type RouteTable } from '../../../src/ingress/routes';
import { createLatticeSigner } from '../../../src/ingress/sigv4/lattice-signer';
import fc from 'fast-check';
import { smithySigned } from '../sigv4/smithy-signed';
import { waitWhile } from '../../helpers/wait';

interface Seen {
  method: string;
  url: string;
  headers: string[];
  body: string;
  /** Trailer fields after a chunked body, as received. */
  trailers: string[];
}

/** A node:http upstream that records each request and answers from its path, without a Date field (answers compare byte for byte). */
async function recordingUpstream(t: TestContext): Promise<{ port: number; seen: Seen[] }> {
  const seen: Seen[] = [];
  let onceAnswered = false;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (d: Buffer) => chunks.push(d));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('latin1');
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.rawHeaders, body, trailers: req.rawTrailers });
      res.sendDate = false;
      if (req.url === '/once') {
        // Answered the first time; after that the upstream goes silent.
        if (onceAnswered) return;
        onceAnswered = true;
      }
      if (req.url === '/hop') {
        // An answer the relay does not rewrite itself (its Connection names a field): TypeScript does.
        res.writeHead(200, { Connection: 'x-hop', 'X-Hop': '1', 'Content-Length': '3' });
        res.end('hop');
        return;
      }
      if (req.url === '/bighead') {
        // A 20 KB field: past the forward proxy's 16 KiB limit, within the ingress's 64 KiB on both engines.
        res.writeHead(200, { 'X-Policy': 'p'.repeat(20_000), 'Content-Length': '2' });
        res.end('ok');
        return;
      }
      if (req.url === '/big') {
        res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': String(BIG.length) });
        res.end(BIG);
        return;
      }
      const text = `${req.method} ${req.url} ${body.length}`;
      res.writeHead(req.url?.startsWith('/missing') ? 404 : 200, { 'Content-Type': 'text/plain', 'X-Upstream': 'yes', 'Content-Length': String(text.length) });
      res.end(req.method === 'HEAD' ? undefined : text);
    });
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    server.closeAllConnections();
    server.close();
  });
  return { port: (server.address() as AddressInfo).port, seen };
}

const BIG = Buffer.alloc(3 * 1024 * 1024, 0x61);

function routes(upstreamPort: number): RouteTable {
  return parseRoutes(
    `routes:
  - host: plain.example.test
    upstream: { url: http://127.0.0.1:${upstreamPort} }
    sign: false
    strip_authorization: true
  - host: signed.example.test
    upstream: { url: http://127.0.0.1:${upstreamPort} }
    sign: true
  - host: paths.example.test
    paths:
      - prefix: /api/
        upstream: { url: http://127.0.0.1:${upstreamPort}/v1 }
        sign: false
`,
    'routes.yaml',
  );
}

async function startIngress(t: TestContext, engine: IngressEngine, table: RouteTable): Promise<{ server: IngressServer; port: number; entries: IngressAccessEntry[] }> {
  const entries: IngressAccessEntry[] = [];
  const signer = createLatticeSigner({
    region: 'us-east-1',
    credentials: async () => ({ accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY', sessionToken: 'session-token' }),
    clock: () => new Date('2026-11-22T12:00:00Z'),
  });
  const server = await startIngressServer({ listen: [{ host: '127.0.0.1', port: 0 }], tls: null, proxyProtocol: false, routes: () => table, signer, onAccess: (e) => entries.push(e), engine });
  t.after(() => server.close({ drainMs: 0 }));
  return { server, port: server.addresses()[0].port, entries };
}

/** Writes `bytes` on a new connection and reads until the server closes it or `until` holds; the raw answer. */
function exchange(port: number, bytes: string, until: (got: string) => boolean, slowStartMs = 0): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let got = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no complete answer within 10 s; got ${JSON.stringify(got.slice(0, 300))}`));
    }, 10_000);
    socket.on('error', reject);
    socket.on('data', (d: Buffer) => {
      got += d.toString('latin1');
      if (until(got)) {
        clearTimeout(timer);
        socket.destroy();
        resolve(got);
      }
    });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(got);
    });
    if (slowStartMs > 0) {
      // Nothing read for a while: the first answer backs up in the server.
      socket.pause();
      setTimeout(() => socket.resume(), slowStartMs);
    }
    socket.write(bytes);
  });
}

interface Answer {
  status: number;
  contentType: string | undefined;
  upstreamMark: string | undefined;
  body: string;
}

/** Splits a raw stream of Content-Length framed answers into status, a few fields and body; final answer number `headAt` answers a HEAD (no body). */
function answers(raw: string, headAt = -1): Answer[] {
  const out: Answer[] = [];
  let at = 0;
  let n = 0;
  while (at < raw.length) {
    const end = raw.indexOf('\r\n\r\n', at);
    if (end < 0) break;
    const lines = raw.slice(at, end).split('\r\n');
    const status = Number(lines[0].split(' ')[1]);
    const fields = new Map(lines.slice(1).map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
    const length = status < 200 || n === headAt ? 0 : Number(fields.get('content-length') ?? 0);
    if (status >= 200) n++;
    out.push({ status, contentType: fields.get('content-type'), upstreamMark: fields.get('x-upstream'), body: raw.slice(end + 4, end + 4 + length) });
    at = end + 4 + length;
  }
  return out;
}

const CRLF = '\r\n';
function request(lines: string[], body = ''): string {
  return `${lines.join(CRLF)}${CRLF}${CRLF}${body}`;
}

/** The requests both engines get, one connection each, pipelined. */
const REQUESTS = [
  request(['GET /a?x=1 HTTP/1.1', 'Host: plain.example.test', 'X-Forwarded-For: 192.0.2.7', 'Authorization: Bearer client', 'X-Amzn-Lattice-Identity: forged', 'Connection: x-drop', 'X-Drop: 1', 'X-Keep: 2']),
  request(['POST /p HTTP/1.1', 'Host: plain.example.test', 'Content-Length: 5'], 'hello'),
  // Chunk extensions and trailers stay at the ingress: a trailer is a header the head's rewrite would have removed.
  request(['POST /c HTTP/1.1', 'Host: plain.example.test', 'Transfer-Encoding: chunked'], `5;ext=1${CRLF}hello${CRLF}3${CRLF}abc${CRLF}0${CRLF}X-Amzn-Lattice-Identity: spoofed${CRLF}X-Forwarded-For: 203.0.113.66${CRLF}${CRLF}`),
  request(['HEAD /h HTTP/1.1', 'Host: plain.example.test']),
  request(['GET /s?b=2&a=1 HTTP/1.1', 'Host: signed.example.test', 'Authorization: Bearer client', 'X-Amz-Date: 20000101T000000Z']),
  request(['GET /api/items HTTP/1.1', 'Host: paths.example.test']),
  request(['GET /other HTTP/1.1', 'Host: paths.example.test']),
  request(['GET /missing HTTP/1.1', 'Host: plain.example.test']),
  request(['GET /bighead HTTP/1.1', 'Host: plain.example.test']),
  request(['GET / HTTP/1.1', 'Host: unknown.example.test']),
  request(['GET /last HTTP/1.1', 'Host: plain.example.test', 'Connection: close']),
];
const PIPELINE = REQUESTS.join('');

/**
 * An entry's fields that do not depend on timing, on how each engine spells
 * its own answers' heads (bytesOut), or on how it reads pipelined bytes
 * (node:http bills what one read brought to the request it was reading;
 * the relay each request its own bytes: compared as totals).
 */
function comparable(e: IngressAccessEntry): Partial<IngressAccessEntry> {
  return { ...e, start: undefined, durationMs: 0, bytesOut: 0, bytesIn: 0, clientPort: 0, upstreamMs: e.upstreamMs === null ? null : 0 };
}

test('the relay and node:http send the same requests upstream and give the same answers and entries', async (t) => {
  const runs: { seen: Seen[]; answers: Answer[]; entries: Partial<IngressAccessEntry>[]; stats: { handedOver: number } }[] = [];
  // One upstream for both: its authority is signed, so the signatures compare too.
  const up = await recordingUpstream(t);
  for (const engine of ['relay', 'node'] as const) {
    const from = up.seen.length;
    const ingress = await startIngress(t, engine, routes(up.port));
    const raw = await exchange(ingress.port, PIPELINE, (got) => got.endsWith('GET /last 0'));
    // Entries are handed over at each exchange's end; the last may trail its answer by a turn.
    await waitWhile(() => ingress.entries.length < REQUESTS.length);
    // node:http dispatches pipelined requests before the earlier ones are answered (a signed one may arrive last): compared by URL.
    const seen = up.seen.slice(from).sort((a, b) => a.url.localeCompare(b.url));
    assert.equal(
      ingress.entries.reduce((n, e) => n + e.bytesIn, 0),
      Buffer.byteLength(PIPELINE),
      `${engine}: every byte the client sent is billed once`,
    );
    if (engine === 'relay') {
      assert.deepEqual(
        ingress.entries.map((e) => e.bytesIn),
        REQUESTS.map((r) => Buffer.byteLength(r)),
        'the relay bills each request its own bytes',
      );
    }
    runs.push({ seen, answers: answers(raw, 3), entries: ingress.entries.map(comparable), stats: ingress.server.stats() });
  }
  const [relay, node] = runs;
  assert.equal(relay.answers.length, REQUESTS.length);
  assert.deepEqual(
    relay.answers.map((a) => a.status),
    [200, 200, 200, 200, 200, 200, 404, 404, 200, 421, 200],
  );
  assert.equal(relay.answers[8].body, 'ok', 'a 20 KB answer head passes');
  const chunked = relay.seen.find((s) => s.url === '/c');
  assert.deepEqual([chunked?.body, chunked?.trailers], ['helloabc', []], 'the chunked body arrives without its trailers');
  assert.equal(relay.answers[2].body, 'POST /c 8');
  assert.equal(relay.answers[5].body, 'GET /v1/api/items 0');
  assert.equal(relay.answers[3].body, '', 'HEAD: no body');
  // The signature reached the upstream, the client's own Authorization and X-Amz-Date did not.
  const signed = relay.seen.find((s) => s.url === '/s?b=2&a=1');
  assert.ok(signed !== undefined);
  assert.match(signed.headers.join('\n'), /^Authorization\nAWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/20261122\/us-east-1\/vpc-lattice-svcs\/aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-security-token, Signature=[0-9a-f]{64}$/m);
  assert.doesNotMatch(signed.headers.join('\n'), /Bearer client|20000101T000000Z/);
  assert.deepEqual(relay.seen, node.seen);
  assert.deepEqual(relay.answers, node.answers);
  assert.deepEqual(relay.entries, node.entries);
  assert.equal(relay.stats.handedOver, 0, 'nothing here needs node:http');
});

// Plain targets (the relay routes and signs them itself): unreserved characters, empty segments, a final "/", queries with repeated names, names without "=", empty pairs.
const plainSegment = fc.oneof(fc.constant(''), fc.stringMatching(/^[A-Za-z0-9._~-]{1,6}$/).filter((s) => s !== '.' && s !== '..'));
const plainPath = fc.tuple(fc.array(plainSegment, { minLength: 1, maxLength: 4 }), fc.boolean()).map(([parts, slash]) => `/${parts.join('/')}${slash ? '/' : ''}`);
const plainPair = fc.oneof(fc.constant(''), fc.tuple(fc.constantFrom('a', 'b', 'A', 'n', '', 'constructor', 'toString'), fc.option(fc.stringMatching(/^[A-Za-z0-9._~-]{0,4}$/), { nil: undefined })).map(([n, v]) => (v === undefined ? n : `${n}=${v}`)));
const plainTarget = fc.tuple(plainPath, fc.option(fc.array(plainPair, { maxLength: 4 }), { nil: undefined })).map(([p, q]) => (q === undefined ? p : `${p}?${q.join('&')}`));
// Targets only TypeScript routes or signs: escapes, dot segments, "=" in a value, reserved characters, smithy's excluded parameter.
const ODD_TARGETS = ['/p%41th', '/a/../b', '/q?a=b=c', '/q?k=v!', "/it's", '/sp%20ace', '/x?X-Amz-Signature=1', '/x?__proto__=1'];

// Header fields a client may vary from request to request, each rewritten or kept by upstream-headers.ts.
const variedField = fc.oneof(
  fc.nat(99999).map((n) => `X-Request-Id: ${n}`),
  fc.constantFrom(
    'X-Forwarded-For: 192.0.2.7',
    'x-forwarded-for:198.51.100.1 ,203.0.113.9',
    'X-Forwarded-For: ',
    'X-Forwarded-Proto: https',
    'X-Forwarded-Host: evil.example.test',
    'Authorization: Bearer client',
    'X-Amz-Date: 20000101T000000Z',
    'x-amz-security-token: forged',
    'X-Amzn-Lattice-Identity: forged',
    'X-AMZN-LATTICE-NETWORK: x',
    'Keep-Alive: timeout=5',
    'TE: trailers',
    'Proxy-Authorization: Basic eA==',
    'Connection: keep-alive',
    'Cookie: a=1; b=2',
    'accept-language:  en-GB\t',
    'X-Empty:',
  ),
);
const variedFields = fc.array(variedField, { maxLength: 5 });

/** "20261122T120000Z" as a Date. */
function amzDateTime(amzDate: string): Date {
  const d = amzDate;
  return new Date(`${d.slice(0, 4)}-${d.slice(4, 6)}-${d.slice(6, 11)}:${d.slice(11, 13)}:${d.slice(13, 15)}Z`);
}

test('requests with the Host, User-Agent and Referer of the request decided before them are routed, rewritten and signed in the relay, each with its own target and fields: smithy\'s sign() gives every signature, node:http the same requests', async (t) => {
  const up = await recordingUpstream(t);
  const table = parseRoutes(
    `routes:
  - host: signed.example.test
    upstream: { url: http://127.0.0.1:${up.port}/base }
    sign: true
  - host: plain.example.test
    paths:
      - prefix: /api
        upstream: { url: http://127.0.0.1:${up.port}/v1 }
        sign: false
        strip_authorization: true
      - prefix: /
        upstream: { url: http://127.0.0.1:${up.port} }
        sign: false
`,
    'routes.yaml',
  );
  const credentials = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY', sessionToken: 'session-token' };
  const plain = [...new Set(fc.sample(plainTarget, { seed: 42, numRuns: 60 }))];
  const targets = plain.flatMap((target, i) => (i % 8 === 7 ? [target, ODD_TARGETS[(i - 7) / 8 % ODD_TARGETS.length]] : [target]));
  const signedPipeline = [...targets.map((target) => request([`GET ${target} HTTP/1.1`, 'Host: signed.example.test', 'User-Agent: route-test', 'Accept: */*'])), request(['GET /last HTTP/1.1', 'Host: signed.example.test', 'Connection: close'])].join('');
  // The /api route takes every path under it; "/" does not (a longer prefix of its host comes first). An absolute-form target's authority routes it, not Host.
  const pathsPipeline = [
    request(['GET http://signed.example.test/abs HTTP/1.1', 'Host: plain.example.test']),
    ...['/api/x?q=1', '/api', '/api/y/', '/apix', '/api/z', '/other', '/api/../x', '/api/w'].map((target) => request([`GET ${target} HTTP/1.1`, 'Host: plain.example.test'])),
    request(['GET /last HTTP/1.1', 'Host: plain.example.test', 'Connection: close']),
  ].join('');
  // Fields that change from request to request (the log's User-Agent, Referer and Host stay): rewritten by the relay as in TypeScript.
  const fieldSets = fc.sample(variedFields, { seed: 7, numRuns: 40 });
  const variedPipeline = [
    // The first half to the signed host, the second to the plain one.
    ...fieldSets.map((fields, i) => (i < fieldSets.length / 2 ? request([`GET /v/${i}?n=${i} HTTP/1.1`, 'Host: signed.example.test', 'User-Agent: varied', ...fields]) : request([`GET /api/v${i} HTTP/1.1`, 'Host: plain.example.test', 'User-Agent: varied', ...fields]))),
    // Another User-Agent or Referer: logged as sent, so decided in TypeScript.
    request(['GET /api/ua HTTP/1.1', 'Host: plain.example.test', 'User-Agent: other']),
    request(['GET /api/ref HTTP/1.1', 'Host: plain.example.test', 'User-Agent: other', 'Referer: http://example.test/']),
    request(['GET /last HTTP/1.1', 'Host: plain.example.test', 'Connection: close']),
  ].join('');
  const runs: { seen: Seen[]; answers: Answer[]; entries: Partial<IngressAccessEntry>[]; repeated: number; variedRepeated: number }[] = [];
  for (const engine of ['relay', 'node'] as const) {
    const from = up.seen.length;
    const entries: IngressAccessEntry[] = [];
    const server = await startIngressServer({
      listen: [{ host: '127.0.0.1', port: 0 }],
      tls: null,
      proxyProtocol: false,
      routes: () => table,
      // The real clock: the relay signs in the second it lives in.
      signer: createLatticeSigner({ region: 'us-east-1', credentials: async () => credentials }),
      onAccess: (e) => entries.push(e),
      engine,
    });
    t.after(() => server.close({ drainMs: 0 }));
    const port = server.addresses()[0].port;
    const raw = (await exchange(port, signedPipeline, () => false)) + (await exchange(port, pathsPipeline, () => false));
    const repeatedBefore = server.stats().repeated;
    const varied = await exchange(port, variedPipeline, () => false);
    const variedRepeated = server.stats().repeated - repeatedBefore;
    await waitWhile(() => entries.length < targets.length + 11 + fieldSets.length + 3);
    const seen = up.seen.slice(from);
    let signatures = 0;
    for (const s of seen) {
      const fields = new Map<string, string>();
      for (let i = 0; i + 1 < s.headers.length; i += 2) fields.set(s.headers[i].toLowerCase(), s.headers[i + 1]);
      if (!s.url.startsWith('/base/')) continue;
      const expected = await smithySigned('us-east-1', credentials, amzDateTime(fields.get('x-amz-date') ?? ''), 'GET', `127.0.0.1:${up.port}`, s.url);
      assert.equal(fields.get('authorization'), expected.authorization, `${engine}: ${s.url}`);
      signatures++;
    }
    // Every request to the signed host that reached the upstream was checked: the plain targets, the signable odd ones, /abs, half the varied ones, /last.
    assert.ok(signatures >= plain.length + 1 + fieldSets.length / 2 + 1, `${engine}: ${signatures} signatures checked`);
    // Compared without the signature's time and what it signs (their second differs from run to run), and by URL (node:http may reorder pipelined requests).
    const unsigned = seen
      .map((s) => ({ ...s, headers: s.headers.filter((_h, i) => !/^(x-amz-date|authorization)$/i.test(s.headers[i - (i % 2)])) }))
      .sort((a, b) => a.url.localeCompare(b.url));
    runs.push({ seen: unsigned, answers: [...answers(raw), ...answers(varied)], entries: entries.map(comparable), repeated: server.stats().repeated, variedRepeated });
  }
  const [relay, node] = runs;
  assert.equal(relay.answers.length, targets.length + 11 + fieldSets.length + 3);
  assert.deepEqual(relay.seen, node.seen);
  assert.deepEqual(relay.answers, node.answers);
  assert.deepEqual(relay.entries, node.entries);
  // Each path reached the route its prefix picks.
  const pathsBodies = relay.answers.slice(targets.length + 1, targets.length + 11).map((a) => a.body);
  assert.deepEqual(pathsBodies, ['GET /base/abs 0', 'GET /v1/api/x?q=1 0', 'GET /v1/api 0', 'GET /v1/api/y/ 0', 'GET /apix 0', 'GET /v1/api/z 0', 'GET /other 0', pathsBodies[7], 'GET /v1/api/w 0', 'GET /last 0']);
  assert.equal(relay.answers[targets.length + 8].status, 404, '/api/../x: a dot segment is refused');
  // Most plain targets went on the kept route (one decided here per connection and second, and after each odd one).
  assert.ok(relay.repeated >= plain.length / 2, `repeated ${relay.repeated} of ${plain.length}`);
  // So did most of those whose fields change from request to request (the relay rewrote them).
  assert.ok(relay.variedRepeated >= fieldSets.length / 2, `varied: repeated ${relay.variedRepeated} of ${fieldSets.length}`);
  assert.equal(node.repeated, 0);
});

test('an HTTP/1.0 client gets a 1.0-framed answer from either engine, and the connection ends', async (t) => {
  for (const engine of ['relay', 'node'] as const) {
    const up = await recordingUpstream(t);
    const ingress = await startIngress(t, engine, routes(up.port));
    const raw = await exchange(ingress.port, request(['GET /old HTTP/1.0', 'Host: plain.example.test']), () => false);
    assert.match(raw, /^HTTP\/1\.1 200 OK\r\n/, engine);
    assert.ok(raw.endsWith('\r\n\r\nGET /old 0'), `${engine}: ${JSON.stringify(raw)}`);
  }
});

test('a connection that asks for Expect: 100-continue goes on in node:http, pipelined requests and an unread answer with it', async (t) => {
  const up = await recordingUpstream(t);
  const ingress = await startIngress(t, 'relay', routes(up.port));
  const pipeline = [
    request(['GET /big HTTP/1.1', 'Host: plain.example.test']),
    request(['POST /e HTTP/1.1', 'Host: plain.example.test', 'Content-Length: 3', 'Expect: 100-continue'], 'xyz'),
    request(['GET /after HTTP/1.1', 'Host: plain.example.test', 'Connection: close']),
  ].join('');
  // The client reads nothing for a while: the 3 MiB answer backs up in the relay when the next request is handed over.
  const raw = await exchange(ingress.port, pipeline, () => false, 300);
  const got = answers(raw);
  const finals = got.filter((a) => a.status >= 200);
  assert.deepEqual(
    finals.map((a) => a.status),
    [200, 200, 200],
  );
  assert.equal(finals[0].body.length, BIG.length);
  assert.ok(Buffer.from(finals[0].body, 'latin1').equals(BIG), 'the big answer arrived whole and in order');
  assert.equal(finals[1].body, 'POST /e 3');
  assert.equal(finals[2].body, 'GET /after 0');
  assert.deepEqual(
    up.seen.map((s) => [s.method, s.url, s.body]),
    [
      ['GET', '/big', ''],
      ['POST', '/e', 'xyz'],
      ['GET', '/after', ''],
    ],
  );
  assert.equal(ingress.server.stats().handedOver, 1);
  await waitWhile(() => ingress.entries.length < 3);
  assert.deepEqual(
    ingress.entries.map((e) => [e.method, e.path, e.status]),
    [
      ['GET', '/big', 200],
      ['POST', '/e', 200],
      ['GET', '/after', 200],
    ],
  );
  // Each request's bytes from the client count once, on either side of the hand-over.
  assert.equal(
    ingress.entries.reduce((n, e) => n + e.bytesIn, 0),
    Buffer.byteLength(pipeline),
  );
});

test('a request whose head completes while the ingress drains is still handed over to node:http and answered, with Connection: close', async (t) => {
  const up = await recordingUpstream(t);
  const ingress = await startIngress(t, 'relay', routes(up.port));
  const socket = net.connect(ingress.port, '127.0.0.1');
  t.after(() => socket.destroy());
  let got = '';
  socket.on('data', (d: Buffer) => (got += d.toString('latin1')));
  const ended = new Promise<void>((resolve) => socket.on('close', () => resolve()));
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  // Half a head when the drain begins: the connection is not idle, and its request is read to the end.
  socket.write('POST /e HTTP/1.1\r\nHost: plain.example.test\r\n');
  await new Promise((r) => setTimeout(r, 100));
  const closed = ingress.server.close({ drainMs: 5000 });
  await new Promise((r) => setTimeout(r, 100));
  socket.write('Content-Length: 3\r\nExpect: 100-continue\r\n\r\nxyz');
  await Promise.race([ended, new Promise((_, reject) => setTimeout(() => reject(new Error(`not closed; got ${JSON.stringify(got)}`)), 5000))]);
  await closed;
  const finals = answers(got).filter((a) => a.status >= 200);
  assert.deepEqual(
    finals.map((a) => [a.status, a.body]),
    [[200, 'POST /e 3']],
  );
  assert.match(got, /\r\nconnection: close\r\n/i);
  assert.deepEqual(
    up.seen.map((s) => [s.method, s.url, s.body]),
    [['POST', '/e', 'xyz']],
  );
  assert.equal(ingress.server.stats().handedOver, 1);
  assert.deepEqual(
    ingress.entries.map((e) => [e.method, e.path, e.status]),
    [['POST', '/e', 200]],
  );
});

test('a repeated identical request is sent upstream as the one decided before it, signature included, and logged like it; a route reload ends that', async (t) => {
  const up = await recordingUpstream(t);
  let table = routes(up.port);
  const entries: IngressAccessEntry[] = [];
  const signer = createLatticeSigner({
    region: 'us-east-1',
    credentials: async () => ({ accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY', sessionToken: 'session-token' }),
    clock: () => new Date('2026-11-22T12:00:00Z'),
  });
  const server = await startIngressServer({ listen: [{ host: '127.0.0.1', port: 0 }], tls: null, proxyProtocol: false, routes: () => table, signer, onAccess: (e) => entries.push(e), engine: 'relay' });
  t.after(() => server.close({ drainMs: 0 }));
  const port = server.addresses()[0].port;
  const signed = request(['GET /s?b=2&a=1 HTTP/1.1', 'Host: signed.example.test', 'User-Agent: repeat-test', 'X-Amzn-Lattice-Identity: forged']);
  const hop = request(['GET /hop HTTP/1.1', 'Host: plain.example.test']);
  const last = request(['GET /s?b=2&a=1 HTTP/1.1', 'Host: signed.example.test', 'Connection: close']);
  const pipeline = [signed, signed, signed, hop, hop, signed, last].join('');
  const raw = await exchange(port, pipeline, () => false);
  const got = answers(raw);
  assert.deepEqual(
    got.map((a) => [a.status, a.body]),
    [
      [200, 'GET /s?b=2&a=1 0'],
      [200, 'GET /s?b=2&a=1 0'],
      [200, 'GET /s?b=2&a=1 0'],
      [200, 'hop'],
      [200, 'hop'],
      [200, 'GET /s?b=2&a=1 0'],
      [200, 'GET /s?b=2&a=1 0'],
    ],
  );
  assert.doesNotMatch(raw, /x-hop: 1/i, 'the field Connection named was dropped on the repeat too');
  // Two repeats of the signed request, one of /hop (whose answer TypeScript rewrote); the rest decided here.
  assert.equal(server.stats().repeated, 3);
  // Every repeat reached the upstream exactly as the request it repeats.
  assert.equal(up.seen.length, 7);
  for (const [repeat, first] of [[1, 0], [2, 0], [5, 0], [4, 3]]) {
    assert.deepEqual([up.seen[repeat].method, up.seen[repeat].url, up.seen[repeat].headers], [up.seen[first].method, up.seen[first].url, up.seen[first].headers]);
  }
  const header = (s: Seen, name: string): string | undefined => {
    const at = s.headers.findIndex((h, i) => i % 2 === 0 && h.toLowerCase() === name);
    return at < 0 ? undefined : s.headers[at + 1];
  };
  assert.match(header(up.seen[0], 'authorization') ?? '', /^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/20261122\/us-east-1\/vpc-lattice-svcs\/aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-security-token, Signature=[0-9a-f]{64}$/);
  assert.equal(header(up.seen[6], 'authorization'), header(up.seen[0], 'authorization'), 'the request that differs (Connection: close) is signed alike: same method, host, path, second');
  assert.equal(header(up.seen[0], 'x-amzn-lattice-identity'), undefined);
  await waitWhile(() => entries.length < 7);
  assert.deepEqual(
    entries.map((e) => [e.method, e.host, e.path, e.status, e.route, e.signed, e.userAgent]),
    [
      ...Array.from({ length: 3 }, () => ['GET', 'signed.example.test', '/s?', 200, 'signed.example.test/', true, 'repeat-test']),
      ['GET', 'plain.example.test', '/hop', 200, 'plain.example.test/', false, ''],
      ['GET', 'plain.example.test', '/hop', 200, 'plain.example.test/', false, ''],
      ['GET', 'signed.example.test', '/s?', 200, 'signed.example.test/', true, 'repeat-test'],
      ['GET', 'signed.example.test', '/s?', 200, 'signed.example.test/', true, ''],
    ],
  );
  assert.equal(entries.reduce((n, e) => n + e.bytesIn, 0), Buffer.byteLength(pipeline), 'each request\'s bytes count once');
  for (const e of entries) assert.ok(e.upstreamMs !== null && e.upstreamMs >= 0 && e.durationMs >= 0, JSON.stringify(e));

  // After a reload the same request is decided again, on the new table.
  const socket = net.connect(port, '127.0.0.1');
  t.after(() => socket.destroy());
  let second = '';
  socket.on('data', (d: Buffer) => (second += d.toString('latin1')));
  const plainRepeat = request(['GET /r HTTP/1.1', 'Host: plain.example.test']);
  socket.write(plainRepeat);
  await waitWhile(() => answers(second).length < 1);
  table = parseRoutes(`routes:\n  - host: plain.example.test\n    upstream: { url: http://127.0.0.1:${up.port}/moved }\n    sign: false\n`, 'routes.yaml');
  server.routesChanged();
  socket.write(plainRepeat);
  await waitWhile(() => answers(second).length < 2);
  assert.deepEqual(
    answers(second).map((a) => a.body),
    ['GET /r 0', 'GET /moved/r 0'],
  );
});

test('a repeat keeps its route\'s timeout: an upstream silent past timeout_ms gets the 504 a decided request gets', async (t) => {
  const up = await recordingUpstream(t);
  const table = parseRoutes(`routes:\n  - host: slow.example.test\n    upstream: { url: http://127.0.0.1:${up.port} }\n    sign: false\n    timeout_ms: 300\n`, 'routes.yaml');
  const ingress = await startIngress(t, 'relay', table);
  const once = request(['GET /once HTTP/1.1', 'Host: slow.example.test']);
  // exchange() gives up after 10 s: the relay's own idle timeout (65 s) would not answer in time.
  const raw = await exchange(ingress.port, once + once, (got) => answers(got).length >= 2);
  const got = answers(raw);
  assert.deepEqual(
    got.map((a) => a.status),
    [200, 504],
  );
  assert.match(got[1].body, /"error":"gateway-timeout".*sent nothing for 300 ms/);
  assert.equal(ingress.server.stats().repeated, 1);
  await waitWhile(() => ingress.entries.length < 2);
  assert.deepEqual(
    ingress.entries.map((e) => [e.path, e.status, e.error]),
    [
      ['/once', 200, null],
      ['/once', 504, 'gateway-timeout'],
    ],
  );
});

test('a request decided before a routes reload, still waiting for its signature, is not kept: the next one on its connection is routed on the new table', async (t) => {
  const up = await recordingUpstream(t);
  const tableFor = (base: string): RouteTable => parseRoutes(`routes:\n  - host: signed.example.test\n    upstream: { url: http://127.0.0.1:${up.port}${base} }\n    sign: true\n`, 'routes.yaml');
  let table = tableFor('/old');
  let release: () => void = () => undefined;
  let asked: () => void = () => undefined;
  const providerAsked = new Promise<void>((resolve) => (asked = resolve));
  const gate = new Promise<void>((resolve) => (release = resolve));
  const signer = createLatticeSigner({
    region: 'us-east-1',
    // The first request waits here for its credentials (no signNow before a sign() resolved).
    credentials: async () => {
      asked();
      await gate;
      return { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' };
    },
  });
  const server = await startIngressServer({ listen: [{ host: '127.0.0.1', port: 0 }], tls: null, proxyProtocol: false, routes: () => table, signer, onAccess: () => undefined, engine: 'relay' });
  t.after(() => server.close({ drainMs: 0 }));
  const socket = net.connect(server.addresses()[0].port, '127.0.0.1');
  t.after(() => socket.destroy());
  let got = '';
  socket.on('data', (d: Buffer) => (got += d.toString('latin1')));
  socket.write(request(['GET /a HTTP/1.1', 'Host: signed.example.test', 'User-Agent: reload-test']));
  await providerAsked;
  table = tableFor('/new');
  server.routesChanged();
  release();
  await waitWhile(() => answers(got).length < 1);
  socket.write(request(['GET /b HTTP/1.1', 'Host: signed.example.test', 'User-Agent: reload-test']));
  await waitWhile(() => answers(got).length < 2);
  assert.deepEqual(
    answers(got).map((a) => a.body),
    ['GET /old/a 0', 'GET /new/b 0'],
  );
});
