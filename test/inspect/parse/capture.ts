/**
 * Loopback servers that record what a real client sends first, for the
 * parser tests: the bytes come from curl, openssl, dig and dnsmasq, not from
 * our own builders.
 */
import { execFile } from 'node:child_process';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { createServer, type Server, type Socket } from 'node:net';
import type { TestContext } from 'node:test';

export interface TcpCapture {
  port: number;
  /** Resolves with the bytes the first client sent, once `enough` says so or the client goes quiet/closes. */
  firstClient: Promise<Uint8Array>;
}

/**
 * A TCP server on 127.0.0.1 (port 0) that reads from its first client until
 * `enough(bytes)` is true, optionally answers, then closes. Closed in t.after.
 */
export async function captureTcp(
  t: TestContext,
  enough: (bytes: Uint8Array) => boolean,
  answer?: (bytes: Uint8Array) => Uint8Array | null,
): Promise<TcpCapture> {
  let resolveFirst!: (b: Uint8Array) => void;
  const firstClient = new Promise<Uint8Array>((resolve) => (resolveFirst = resolve));
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
    let got = Buffer.alloc(0);
    let finished = false;
    const finish = (): void => {
      if (finished) return;
      finished = true;
      resolveFirst(new Uint8Array(got));
      const reply = answer?.(new Uint8Array(got));
      if (reply) socket.end(reply);
      else socket.destroy();
    };
    socket.setTimeout(3000, finish); // a client that stops short: hand over what came
    socket.on('data', (chunk: Buffer) => {
      got = Buffer.concat([got, chunk]);
      if (enough(new Uint8Array(got))) finish();
    });
    socket.on('end', finish);
  });
  t.after(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no TCP port');
  return { port: address.port, firstClient };
}

export interface UdpCapture {
  port: number;
  firstDatagram: Promise<Uint8Array>;
}

/** A UDP socket on 127.0.0.1 (port 0) that records the first datagram and answers it with `answer`. */
export async function captureUdp(t: TestContext, answer: (query: Uint8Array) => Uint8Array): Promise<UdpCapture> {
  const socket: UdpSocket = createSocket('udp4');
  t.after(() => socket.close());
  let resolveFirst!: (b: Uint8Array) => void;
  const firstDatagram = new Promise<Uint8Array>((resolve) => (resolveFirst = resolve));
  socket.on('message', (msg, rinfo) => {
    resolveFirst(new Uint8Array(msg));
    socket.send(answer(new Uint8Array(msg)), rinfo.port, rinfo.address);
  });
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  return { port: socket.address().port, firstDatagram };
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a client program with stdin closed and a hard timeout; never rejects (clients fail when we hang up on them). */
export function runClient(cmd: string, args: string[], timeoutMs = 8000): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = execFile(cmd, args, { timeout: timeoutMs, encoding: 'utf8' }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : null) : 0;
      resolve({ code, stdout, stderr });
    });
    child.stdin?.end();
  });
}
