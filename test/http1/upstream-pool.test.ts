import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { UpstreamPool, type BodyFraming, type ExchangeHandler, type ResponseHead } from '../../src/http1';
import { waitWhile } from '../helpers/wait';

/** An upstream answering every request head with a 2-byte body on a kept-alive connection; counts connections and closes. */
async function upstream(t: import('node:test').TestContext): Promise<{ port: number; opened: () => number; closed: () => number }> {
  let opened = 0;
  let closed = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    opened++;
    sockets.add(s);
    s.on('close', () => {
      closed++;
      sockets.delete(s);
    });
    s.on('error', () => undefined);
    s.on('data', () => s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  return { port: (server.address() as net.AddressInfo).port, opened: () => opened, closed: () => closed };
}

/** One exchange on `pool`; resolves with what the handler saw. */
function exchange(pool: UpstreamPool<number>, port: number): Promise<{ status: number; body: string; reused: boolean }> {
  return new Promise((resolve, reject) => {
    const conn = pool.acquire(port);
    const reused = conn.uses > 0;
    let status = 0;
    let body = '';
    const handler: ExchangeHandler = {
      onConnected: () => undefined,
      onResponse: (head: ResponseHead, _framing: BodyFraming) => {
        status = head.statusCode;
      },
      onData: (d) => {
        body += d.toString();
      },
      onEnd: () => resolve({ status, body, reused }),
      onError: (err) => reject(err),
    };
    conn.exchange(handler, 'GET', 'GET / HTTP/1.1\r\nHost: x\r\n\r\n', 'none');
  });
}

test('the pool reuses a kept-alive connection, and closeIdle closes the idle ones', async (t) => {
  const up = await upstream(t);
  const pool = new UpstreamPool<number>(
    { idleTimeoutMs: 10_000, connectTimeoutMs: 2_000, maxHeadBytes: 16_384 },
    { keyOf: (port) => String(port), dial: (port) => net.connect({ host: '127.0.0.1', port }) },
  );
  t.after(() => pool.close());
  assert.deepEqual(await exchange(pool, up.port), { status: 200, body: 'ok', reused: false });
  assert.deepEqual(await exchange(pool, up.port), { status: 200, body: 'ok', reused: true });
  assert.equal(up.opened(), 1);
  assert.equal(pool.idleCount(), 1);
  pool.closeIdle();
  assert.equal(pool.idleCount(), 0);
  // The upstream sees the close on a later turn; 10 s is a ceiling for a loaded machine.
  await waitWhile(() => up.closed() < 1, 10_000, 20);
  assert.equal(up.closed(), 1, 'the upstream saw the idle connection close');
  assert.deepEqual(await exchange(pool, up.port), { status: 200, body: 'ok', reused: false });
  assert.equal(up.opened(), 2);
});
