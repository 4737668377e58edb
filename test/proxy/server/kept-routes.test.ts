/**
 * Kept routes (keptRouteMs; native/src/http_route.h): the relay repeats a
 * connection's last decided GET or HEAD on its own. The same requests go
 * through a proxy with them and one without, over one keep-alive
 * connection each: the upstream must receive the same bytes, the client
 * the same answers, the log the same entries; only the number of policy
 * calls differs. Then: a policy change, a route's expiry and a failing
 * upstream on a repeated request.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import * as net from 'node:net';
import type { AccessEntry, ProxyRequestFacts } from '../../../src/proxy/types';
import type { ProxyDecision } from '../../../src/proxy/server';
import { hostListPolicy, startTestProxy, type TestProxy } from './helpers';

/** The upstream's answer per path (HEAD gets the same head, no body). */
function answerFor(path: string): string[] {
  switch (path) {
    case '/head':
      return ['HTTP/1.1 200 OK\r\nContent-Length: 1234\r\nContent-Type: a/b\r\n\r\n'];
    case '/chunked':
      return ['HTTP/1.1 200 Fine\r\nTransfer-Encoding: chunked\r\nX-Up:  y \r\nContent-Type: text/one\r\ncontent-type: text/two\r\n\r\n3\r\nabc\r\n0\r\n\r\n'];
    case '/with-via':
      return ['HTTP/1.1 200 OK\r\nVia: 1.1 origin\r\nVia:  \r\nVIA: 1.1 cdn\r\nKeep-Alive: timeout=5\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\nv'];
    case '/no-content':
      return ['HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n'];
    case '/no-reason':
      return ['HTTP/1.1 200\r\nContent-Length: 2\r\n\r\nnr'];
    case '/early':
      return ['HTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n', 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfinal'];
    case '/named':
      return ['HTTP/1.1 200 OK\r\nConnection: x-secret\r\nX-Secret: s\r\nContent-Length: 2\r\n\r\nok'];
    case '/until-close':
      return ['HTTP/1.1 200 OK\r\nContent-Type: text/close\r\n\r\nall of it'];
    case '/closing':
      return ['HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok'];
    default:
      return [`HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: ${path.length}\r\n\r\n${path}`];
  }
}

/** A raw upstream that records every request head it reads, in order, and answers per answerFor. */
async function recordingUpstream(t: TestContext): Promise<{ port: number; heads: string[]; connections: () => number; close(): Promise<void> }> {
  const heads: string[] = [];
  let connections = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    let pending = '';
    socket.on('data', (d: Buffer) => {
      pending += d.toString('latin1');
      for (let end = pending.indexOf('\r\n\r\n'); end >= 0; end = pending.indexOf('\r\n\r\n')) {
        const head = pending.slice(0, end + 4);
        pending = pending.slice(end + 4);
        heads.push(head);
        const [method, path] = head.split(' ');
        if (path === '/hang') return; // never answered
        const pieces = answerFor(path);
        const last = pieces.length - 1;
        pieces[last] = method === 'HEAD' ? pieces[last].slice(0, pieces[last].indexOf('\r\n\r\n') + 4) : pieces[last];
        for (const p of pieces) socket.write(p, 'latin1');
        if (path === '/until-close' || path === '/closing') socket.end();
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const close = async (): Promise<void> => {
    for (const s of sockets) s.destroy();
    if (server.listening) await new Promise<void>((r) => server.close(() => r()));
  };
  t.after(close);
  return { port: (server.address() as net.AddressInfo).port, heads, connections: () => connections, close };
}

interface Step {
  method: 'GET' | 'HEAD';
  path: string;
  host?: string;
  headers?: Record<string, string>;
}

interface Answer {
  status: number;
  headers: string[];
  body: string;
}

/** Sends the steps one after the other over one kept-alive client connection; every answer as the client saw it. */
async function sendAll(proxyPort: number, upstreamPort: number, steps: readonly Step[]): Promise<{ answers: Answer[]; sockets: number }> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const sockets = new Set<net.Socket>();
  const answers: Answer[] = [];
  try {
    for (const step of steps) {
      const authority = `${step.host ?? 'upstream.test'}:${upstreamPort}`;
      answers.push(
        await new Promise<Answer>((resolve, reject) => {
          const req = http.request(
            { host: '127.0.0.1', port: proxyPort, agent, method: step.method, path: `http://${authority}${step.path}`, headers: { Host: authority, ...step.headers } },
            (res) => {
              let body = '';
              res.setEncoding('latin1');
              res.on('data', (d: string) => (body += d));
              res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.rawHeaders, body }));
              res.on('error', reject);
            },
          );
          req.on('socket', (s) => sockets.add(s));
          req.setTimeout(10_000, () => req.destroy(new Error(`no answer to ${step.method} ${step.path} within 10 s`)));
          req.on('error', reject);
          req.end();
        }),
      );
    }
  } finally {
    agent.destroy();
  }
  return { answers, sockets: sockets.size };
}

/** An access entry without what differs from run to run (times, ports). */
function comparable(e: AccessEntry): Partial<AccessEntry> {
  const rest: Partial<AccessEntry> = { ...e };
  for (const varying of ['start', 'durationMs', 'clientPort', 'resolveMs', 'connectMs'] as const) delete rest[varying];
  return rest;
}

/** A host-list policy that counts its calls. */
function countingPolicy(allowed: string[]): { decide: (facts: ProxyRequestFacts) => ProxyDecision; calls: () => number } {
  const inner = hostListPolicy(allowed, { denyRule: 'deny-rest' });
  let calls = 0;
  return {
    decide: (facts) => {
      calls++;
      return inner(facts);
    },
    calls: () => calls,
  };
}

async function proxyWith(t: TestContext, keptRouteMs: number, decide: (facts: ProxyRequestFacts) => ProxyDecision): Promise<TestProxy> {
  const proxy = await startTestProxy({ keptRouteMs, decide });
  t.after(() => proxy.server.close({ drainMs: 0 }));
  return proxy;
}

async function settled(proxy: TestProxy, count: number): Promise<void> {
  if (proxy.entries.length < count) await proxy.nextEntry(count - 1);
}

const STEPS: Step[] = [
  { method: 'GET', path: '/a' },
  { method: 'GET', path: '/a' },
  { method: 'GET', path: '/b?x=1&y=%20', headers: { Via: '1.0 edge, 1.1 mid', 'X-Forwarded-For': '198.51.100.7', 'X-Custom': '  spaced  ', 'Proxy-Authorization': 'Basic eDp5' } },
  { method: 'GET', path: '/c', headers: { 'Proxy-Connection': 'keep-alive', TE: 'trailers', Upgrade: 'h2c', 'Keep-Alive': 'timeout=5', Expect: '100-continue' } },
  { method: 'HEAD', path: '/head' },
  { method: 'HEAD', path: '/head' },
  { method: 'GET', path: '/chunked' },
  { method: 'GET', path: '/with-via' },
  { method: 'GET', path: '/no-content' },
  { method: 'GET', path: '/no-reason' },
  { method: 'GET', path: '/early' }, // a 1xx: TypeScript answers
  { method: 'GET', path: '/named' }, // Connection names a field: TypeScript answers
  { method: 'GET', path: '/d', headers: { Connection: 'keep-alive, X-Hop', 'X-Hop': 'h' } }, // the request's own Connection names one
  { method: 'GET', path: '/until-close' }, // delimited by the close: TypeScript answers (chunked for the client)
  { method: 'GET', path: '/e' },
  { method: 'GET', path: '/closing' }, // the upstream closes after it: not pooled
  { method: 'GET', path: '/other', host: 'allowed.test' },
  { method: 'GET', path: '/denied', host: 'denied.test' },
  { method: 'GET', path: '/f', headers: { 'Content-Length': '0' } },
  { method: 'GET', path: '/last' },
  { method: 'GET', path: '/bye', headers: { Connection: 'close' } }, // the client's last: the answer says close
];

test('a kept route sends the same bytes upstream, the same answers to the client and the same log entries as deciding every request', async (t) => {
  const runs = [];
  for (const keptRouteMs of [0, 60_000]) {
    const up = await recordingUpstream(t);
    const policy = countingPolicy(['upstream.test', 'allowed.test']);
    const proxy = await proxyWith(t, keptRouteMs, policy.decide);
    const { answers, sockets } = await sendAll(proxy.port, up.port, STEPS);
    await settled(proxy, STEPS.length);
    runs.push({ heads: up.heads.map((h) => h.replaceAll(String(up.port), 'PORT')), answers, entries: proxy.entries.map(comparable).map((e) => ({ ...e, url: e.url?.replace(String(up.port), 'PORT'), port: e.port === up.port ? 'PORT' : e.port })), calls: policy.calls(), sockets, requests: proxy.server.stats().requests });
  }
  const [decided, kept] = runs;
  assert.equal(decided.sockets, 1, 'one client connection for all steps');
  assert.equal(kept.sockets, 1);
  assert.equal(decided.calls, STEPS.length, 'without kept routes every request is decided');
  // Repeats of the last decided GET/HEAD with the same authority (steps 2-10 and 12-16 after their first) skip the policy.
  assert.ok(kept.calls < decided.calls - 8, `kept routes decided ${kept.calls} of ${decided.calls} requests`);
  assert.equal(kept.requests, decided.requests);
  assert.equal(kept.heads.length, STEPS.length - 1, 'the denied request never went upstream');
  assert.deepEqual(kept.heads, decided.heads);
  assert.deepEqual(kept.answers, decided.answers);
  assert.deepEqual(kept.entries, decided.entries);
  // And what they are is right: the repeat's head rewritten as the first was.
  assert.match(kept.heads[2], /^GET \/b\?x=1&y=%20 HTTP\/1\.1\r\nHost: upstream\.test:PORT\r\n/);
  assert.match(kept.heads[2], /\r\nX-Custom: spaced\r\n/);
  assert.match(kept.heads[2], /\r\nVia: 1\.0 edge, 1\.1 mid, 1\.1 gatehouse\r\nX-Forwarded-For: 198\.51\.100\.7, 127\.0\.0\.1\r\n\r\n$/);
  assert.doesNotMatch(kept.heads[2], /Proxy-Authorization/i);
  assert.doesNotMatch(kept.heads[3], /Proxy-Connection|\r\nTE:|Upgrade|Keep-Alive/i);
  assert.doesNotMatch(kept.heads[12], /X-Hop/i);
  const chunked = kept.answers[6];
  assert.equal(chunked.body, 'abc');
  assert.deepEqual(chunked.headers.slice(0, 6), ['X-Up', 'y', 'Content-Type', 'text/one', 'content-type', 'text/two']);
  assert.equal(kept.entries[6].contentType, 'text/one');
  assert.deepEqual(kept.answers[7].headers.slice(0, 4), ['Content-Length', '1', 'Via', '1.1 origin, 1.1 cdn, 1.1 gatehouse']);
  assert.equal(kept.answers[13].body, 'all of it');
  assert.equal(kept.answers[17].status, 403);
  assert.deepEqual(
    kept.entries.map((e) => e.status),
    [200, 200, 200, 200, 200, 200, 200, 200, 204, 200, 200, 200, 200, 200, 200, 200, 200, 403, 200, 200, 200],
  );
  assert.deepEqual(kept.answers[20].headers.slice(-2), ['Connection', 'close']);
});

test('a policy change is seen by the next request on a kept-alive connection', async (t) => {
  const up = await recordingUpstream(t);
  let allowed = ['upstream.test'];
  const decide = (facts: ProxyRequestFacts): ProxyDecision => hostListPolicy(allowed, { denyRule: 'deny-rest' })(facts);
  const proxy = await proxyWith(t, 60_000, decide);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  t.after(() => agent.destroy());
  const get = (path: string): Promise<number> =>
    new Promise((resolve, reject) => {
      const authority = `upstream.test:${up.port}`;
      http
        .request({ host: '127.0.0.1', port: proxy.port, agent, path: `http://${authority}${path}`, headers: { Host: authority } }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        })
        .on('error', reject)
        .end();
    });
  assert.equal(await get('/a'), 200);
  assert.equal(await get('/a'), 200);
  allowed = [];
  // Without the news the relay repeats the route: that is the contract policyChanged() exists for.
  assert.equal(await get('/a'), 200);
  proxy.server.policyChanged();
  assert.equal(await get('/a'), 403);
  allowed = ['upstream.test'];
  proxy.server.policyChanged();
  assert.equal(await get('/a'), 200);
  await settled(proxy, 5);
  assert.deepEqual(
    proxy.entries.map((e) => [e.decision, e.rule]),
    [['allow', 'allow-upstream.test'], ['allow', 'allow-upstream.test'], ['allow', 'allow-upstream.test'], ['deny', 'deny-rest'], ['allow', 'allow-upstream.test']],
  );
  assert.equal(up.heads.length, 4, 'the denied request never went upstream');
});

test('a kept route expires: after its lifetime the request is decided again', async (t) => {
  const up = await recordingUpstream(t);
  const policy = countingPolicy(['upstream.test']);
  const proxy = await proxyWith(t, 1, policy.decide);
  const steps: Step[] = [{ method: 'GET', path: '/a' }, { method: 'GET', path: '/a' }];
  // Sent one at a time with a pause well past the 1 ms lifetime between them.
  const agentPort = proxy.port;
  await sendAll(agentPort, up.port, steps.slice(0, 1));
  await new Promise((r) => setTimeout(r, 30));
  await sendAll(agentPort, up.port, steps.slice(1));
  await settled(proxy, 2);
  assert.equal(policy.calls(), 2);
});

test('a repeated request whose upstream went away is answered 502 and logged as the upstream failure', async (t) => {
  const up = await recordingUpstream(t);
  const policy = countingPolicy(['upstream.test']);
  const proxy = await proxyWith(t, 60_000, policy.decide);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  t.after(() => agent.destroy());
  const authority = `upstream.test:${up.port}`;
  const get = (): Promise<{ status: number; body: string }> =>
    new Promise((resolve, reject) => {
      http
        .request({ host: '127.0.0.1', port: proxy.port, agent, path: `http://${authority}/a`, headers: { Host: authority } }, (res) => {
          let body = '';
          res.on('data', (d: Buffer) => (body += d.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        })
        .on('error', reject)
        .end();
    });
  assert.equal((await get()).status, 200);
  await up.close(); // the pooled connection is closed and nothing listens any more
  const failed = await get();
  assert.equal(failed.status, 502);
  assert.match(failed.body, /could not reach the upstream/);
  await settled(proxy, 2);
  assert.equal(policy.calls(), 1, 'the second request went on the kept route');
  assert.equal(proxy.entries[1].decision, 'error');
  assert.match(proxy.entries[1].reason ?? '', /^upstream:/);
  assert.equal(proxy.entries[1].rule, 'allow-upstream.test');
});

test('a repeated request whose client leaves before the answer is logged, as aborted, with its own start', async (t) => {
  const up = await recordingUpstream(t);
  const policy = countingPolicy(['upstream.test']);
  const proxy = await proxyWith(t, 60_000, policy.decide);
  const client = net.connect(proxy.port, '127.0.0.1');
  t.after(() => client.destroy());
  let got = '';
  client.on('data', (d: Buffer) => (got += d.toString('latin1')));
  client.on('error', () => undefined);
  const authority = `upstream.test:${up.port}`;
  client.write(`GET http://${authority}/a HTTP/1.1\r\nHost: ${authority}\r\n\r\n`);
  await proxy.nextEntry(0);
  const before = Date.now();
  client.write(`GET http://${authority}/hang HTTP/1.1\r\nHost: ${authority}\r\n\r\n`);
  const deadline = Date.now() + 5000;
  while (up.heads.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  assert.equal(up.heads.length, 2, 'the repeat went upstream');
  client.resetAndDestroy();
  const entry = await proxy.nextEntry(1);
  assert.equal(policy.calls(), 1, 'the repeat went on the kept route');
  assert.match(got, /^HTTP\/1\.1 200 OK\r\n/);
  assert.equal(entry.url, `http://${authority}/hang`);
  assert.equal(entry.squidResult, 'TCP_MISS_ABORTED');
  assert.equal(entry.status, 0);
  assert.ok(entry.start.getTime() >= before - 1000 && entry.start.getTime() <= Date.now(), 'started when its head arrived');
});

test('records of kept routes wait to go up together, yet a close right after loses none of them, in order', async (t) => {
  const testStart = Date.now();
  const up = await recordingUpstream(t);
  const policy = countingPolicy(['upstream.test']);
  const proxy = await startTestProxy({ keptRouteMs: 60_000, decide: policy.decide });
  t.after(() => proxy.server.close({ drainMs: 0 }));
  const client = net.connect(proxy.port, '127.0.0.1');
  t.after(() => client.destroy());
  client.on('error', () => undefined);
  let got = '';
  client.on('data', (d: Buffer) => (got += d.toString('latin1')));
  const authority = `upstream.test:${up.port}`;
  const answers = (): number => got.split('HTTP/1.1 200 OK\r\n').length - 1;
  const repeats = 12;
  for (let i = 1; i <= repeats; i++) {
    client.write(`GET http://${authority}/r${i} HTTP/1.1\r\nHost: ${authority}\r\n\r\n`);
    const deadline = Date.now() + 5000;
    while (answers() < i && Date.now() < deadline) await new Promise((r) => setImmediate(r));
    assert.equal(answers(), i, `answer ${i} arrived`);
  }
  // One more in flight that the upstream never answers, then the proxy goes at once.
  client.write(`GET http://${authority}/hang HTTP/1.1\r\nHost: ${authority}\r\n\r\n`);
  const deadline = Date.now() + 5000;
  while (up.heads.length < repeats + 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  assert.equal(up.heads.length, repeats + 1, 'the last request went upstream');
  await proxy.server.close({ drainMs: 0 });
  assert.equal(policy.calls(), 1, 'every later request went on the kept route');
  assert.deepEqual(
    proxy.entries.map((e) => [e.url, e.status, e.squidResult]),
    [
      ...Array.from({ length: repeats }, (_, i) => [`http://${authority}/r${i + 1}`, 200, 'TCP_MISS']),
      [`http://${authority}/hang`, 0, 'TCP_MISS_ABORTED'],
    ],
  );
  for (const e of proxy.entries.slice(0, repeats)) {
    assert.ok(Number.isInteger(e.durationMs) && e.durationMs >= 0, `a duration for ${e.url}: ${e.durationMs}`);
    // The relay's own measure, bounded by the test's length (not a start time or a report's age).
    assert.ok(e.durationMs <= Date.now() - testStart, `${e.url} took ${e.durationMs} ms, longer than the test so far`);
    assert.equal(e.bytesToClient, Buffer.byteLength(`HTTP/1.1 200 OK\r\n`) + got.split('HTTP/1.1 200 OK\r\n')[proxy.entries.indexOf(e) + 1].length);
  }
});
