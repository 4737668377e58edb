/**
 * Our access.log line against a real Squid's: the same requests go through
 * Squid (a connection closed before any request, GET with a query, POST,
 * CONNECT with a round trip, a denial), then
 * the facts Squid logged, plus what we know as the client did (the URL with
 * its query, the upstream's full Content-Type), are formatted by
 * squidAccessLine, which must give Squid's line byte for byte.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createServer as createHttpServer } from 'node:http';
import { connect, createServer, type AddressInfo, type Server } from 'node:net';
import { squidAccessLine, stripQueryTerms } from '../../../src/proxy/logs';
import type { AccessEntry } from '../../../src/proxy/types';
import { entry } from './entry';
import { parseSquidLine, type SquidLine } from './squid-line';
import { SquidProcess, squidVersion } from './squid-process';

async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

function curl(args: string[]): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile('curl', ['-sS', '--max-time', '10', '-o', '/dev/null', '-w', '%{http_code}', ...args], (err, stdout, stderr) =>
      err && !stdout ? reject(new Error(`${err.message} ${stderr}`)) : resolve(stdout),
    ),
  );
}

/** CONNECT through the proxy, one round trip through the tunnel, then close. */
async function tunnelRoundTrip(proxyPort: number, target: string): Promise<string> {
  const socket = connect(proxyPort, '127.0.0.1');
  socket.setEncoding('latin1');
  let got = '';
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  socket.on('error', () => undefined);
  socket.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`);
  const waitFor = async (pattern: RegExp): Promise<void> => {
    for (let i = 0; i < 100 && !pattern.test(got); i++) await new Promise((r) => setTimeout(r, 50));
  };
  socket.on('data', (d: string) => (got += d));
  await waitFor(/\r\n\r\n/);
  socket.write('ping');
  await waitFor(/\r\n\r\nping$/);
  socket.end();
  await closed;
  return got;
}

/** The facts only Squid knows (timing, result, sizes, upstream), read from its line. */
function factsOf(s: SquidLine): Partial<AccessEntry> {
  return {
    start: new Date(s.seconds * 1000 + s.millis - s.durationMs),
    durationMs: s.durationMs,
    client: s.client,
    squidResult: s.result,
    status: Number(s.status),
    bytesToClient: s.bytes,
    hierarchy: s.hierarchy as AccessEntry['hierarchy'],
    upstreamAddress: s.upstream === '-' ? null : s.upstream,
  };
}

test('squidAccessLine gives a real Squid\'s own access.log lines for the same facts', async (t) => {
  const version = squidVersion();
  if (version === null) {
    t.skip('squid is not installed (Debian: apt-get install squid); the documented format is tested in squid-access-line.test.ts');
    return;
  }
  t.diagnostic(`squid ${version}`);
  const upstream = createHttpServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.setHeader('content-type', 'text/plain; charset=utf-8');
      res.end('x'.repeat(1024));
    });
  });
  const echo = createServer((c) => c.pipe(c));
  const upPort = await listen(upstream);
  const echoPort = await listen(echo);
  const squid = await SquidProcess.start(['acl blocked dstdomain blocked.test', 'http_access deny blocked']);
  t.after(async () => {
    await squid.stop();
    upstream.closeAllConnections();
    await new Promise((r) => upstream.close(r));
    await new Promise((r) => echo.close(r));
  });
  const proxy = `http://127.0.0.1:${squid.port}`;

  const getUrl = `http://127.0.0.1:${upPort}/path/a?secret=1&b=2`;
  const postUrl = `http://127.0.0.1:${upPort}/p`;
  assert.equal(await curl(['-x', proxy, getUrl]), '200');
  assert.equal(await curl(['-x', proxy, '-d', 'hello', postUrl]), '200');
  assert.match(await tunnelRoundTrip(squid.port, `127.0.0.1:${echoPort}`), /^HTTP\/1\.1 200 [^\r]*\r\n(?:[^\r]+\r\n)*\r\nping$/);
  assert.equal(await curl(['-x', proxy, 'http://blocked.test/x']), '403');
  // Squid logs a transaction when it ends, so lines are matched by content, not position. The
  // start-up probe (connect, close without a request) is one of them: NONE_NONE/000, no method.
  const all = await squid.accessLines(5);
  assert.equal(all.length, 5, all.join('\n'));
  const probe = all.find((l) => parseSquidLine(l).url === 'error:transaction-end-before-headers');
  assert.ok(probe, all.join('\n'));
  assert.equal(squidAccessLine(entry({ ...factsOf(parseSquidLine(probe)), method: '', url: 'error:transaction-end-before-headers', contentType: null })), probe);

  // What the proxy would know about each request, beside what Squid logged.
  const known: Partial<AccessEntry>[] = [
    { method: 'GET', url: getUrl, contentType: 'text/plain; charset=utf-8' },
    { method: 'POST', url: postUrl, contentType: 'text/plain; charset=utf-8' },
    { method: 'CONNECT', url: `127.0.0.1:${echoPort}`, contentType: null },
    { method: 'GET', url: 'http://blocked.test/x', contentType: 'text/html;charset=utf-8' },
  ];
  const squidLines = known.map((k) => {
    const line = all.find((l) => {
      const p = parseSquidLine(l);
      return p.method === k.method && (p.url === k.url || p.url === stripQueryTerms(k.url ?? ''));
    });
    assert.ok(line, `no Squid line for ${k.method} ${k.url}: ${all.join('\n')}`);
    return line;
  });
  for (const [i, line] of squidLines.entries()) {
    assert.equal(squidAccessLine(entry({ ...known[i], ...factsOf(parseSquidLine(line)) })), line);
  }
  // The facts themselves, as Squid wrote them.
  const parsed = squidLines.map(parseSquidLine);
  assert.deepEqual(
    parsed.map((p) => [p.result, p.status, p.hierarchy, p.upstream, p.mediaType]),
    [
      ['TCP_MISS', '200', 'HIER_DIRECT', '127.0.0.1', 'text/plain'],
      ['TCP_MISS', '200', 'HIER_DIRECT', '127.0.0.1', 'text/plain'],
      ['TCP_TUNNEL', '200', 'HIER_DIRECT', '127.0.0.1', '-'],
      ['TCP_DENIED', '403', 'HIER_NONE', '-', 'text/html'],
    ],
  );
  assert.equal(parsed[0].url, `http://127.0.0.1:${upPort}/path/a?`, 'Squid strips query terms by default, as we do');
});
