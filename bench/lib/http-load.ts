/**
 * The load for bench/proxy.sh: the upstream servers it proxies to, and small
 * bounded clients that go through an HTTP proxy. Raw sockets, no HTTP
 * library on the client side, so the client costs little next to the proxy
 * it measures. Every mode ends by itself (duration, then a bounded drain)
 * and prints one JSON line.
 *
 *   upstreams --http-port P --echo-port P --source-port P
 *       HTTP/1.1 keep-alive server answering 1 KiB bodies; TCP echo; TCP source
 *       (streams bytes once it reads one). Prints {"ready":true}; runs until killed.
 *   http    --proxy HOST:PORT --url http://NAME:PORT/ --connections N --seconds S [--rate R]
 *       N keep-alive connections, one request at a time each; with --rate, R requests/s
 *       in total (spread over the connections), else as fast as they answer.
 *   connect --proxy HOST:PORT --target NAME:PORT --connections N --seconds S [--rate R] [--client-hello]
 *       N loops of: connect, CONNECT, one 64-byte round trip through the echo, close;
 *       with --rate, R tunnels/s in total (spread over the loops), else as fast as they go;
 *       with --client-hello the round trip is a real TLS ClientHello naming NAME (made by
 *       node:tls once), so a proxy's fronting check has a hello to read.
 *   stream  --proxy HOST:PORT --target NAME:PORT --seconds S
 *       one CONNECT tunnel to the source; bytes received per second.
 *
 *   node dist/bench/lib/http-load.js http --proxy 127.0.0.1:3128 --url http://localhost:8080/ --connections 32 --seconds 3
 */
import { createServer as createHttpServer } from 'node:http';
import { once } from 'node:events';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { parseArgs } from 'node:util';

const MAX_SECONDS = 120;
const MAX_CONNECTIONS = 1024;
const MAX_SAMPLES = 2_000_000;
const DRAIN_MS = 2000;
const BODY = Buffer.alloc(1024, 0x78);
const ROUND_TRIP = Buffer.alloc(64, 0x70);

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: {
    proxy: { type: 'string', default: '127.0.0.1:3128' },
    url: { type: 'string' },
    target: { type: 'string' },
    connections: { type: 'string', default: '16' },
    seconds: { type: 'string', default: '3' },
    rate: { type: 'string' },
    'http-port': { type: 'string' },
    'echo-port': { type: 'string' },
    'source-port': { type: 'string' },
    'client-hello': { type: 'boolean', default: false },
  },
});

function bounded(name: string, text: string | undefined, min: number, max: number): number {
  const n = Number(text);
  if (!Number.isFinite(n) || n < min || n > max) throw new Error(`Expected a number between ${min} and ${max} for --${name} but received ${String(text)}`);
  return n;
}

function hostPort(text: string, name: string): { host: string; port: number } {
  const colon = text.lastIndexOf(':');
  if (colon < 1) throw new Error(`Expected HOST:PORT for --${name} but received ${text}`);
  return { host: text.slice(0, colon), port: bounded(name, text.slice(colon + 1), 1, 65535) };
}

/** Latencies in ms, at most MAX_SAMPLES (the first ones) so memory stays bounded. */
class Latencies {
  private readonly samples: number[] = [];
  count = 0;
  add(ms: number): void {
    this.count++;
    if (this.samples.length < MAX_SAMPLES) this.samples.push(ms);
  }
  percentile(p: number): number | null {
    if (this.samples.length === 0) return null;
    const sorted = Float64Array.from(this.samples).sort();
    return Number(sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))].toFixed(3));
  }
}

const now = (): number => performance.now();
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function connectTo(host: string, port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host, port, noDelay: true });
    s.once('connect', () => {
      s.off('error', reject);
      resolve(s);
    });
    s.once('error', reject);
  });
}

/**
 * Reads HTTP/1.1 responses off one socket: the head up to CRLFCRLF, then a
 * Content-Length body or a chunked one (ended by the zero chunk).
 */
class ResponseReader {
  private buf: Buffer = Buffer.alloc(0);
  private waiting: { resolve: (status: number) => void; reject: (e: Error) => void } | null = null;
  closed = false;
  constructor(socket: Socket) {
    socket.on('data', (d: Buffer) => {
      this.buf = this.buf.length === 0 ? d : Buffer.concat([this.buf, d]);
      this.tryComplete();
    });
    const fail = (): void => {
      this.closed = true;
      this.waiting?.reject(new Error('connection closed'));
      this.waiting = null;
    };
    socket.on('close', fail);
    socket.on('error', fail);
  }
  next(): Promise<number> {
    if (this.closed) return Promise.reject(new Error('connection closed'));
    return new Promise((resolve, reject) => {
      this.waiting = { resolve, reject };
      this.tryComplete();
    });
  }
  private tryComplete(): void {
    if (this.waiting === null) return;
    const headEnd = this.buf.indexOf('\r\n\r\n');
    if (headEnd < 0) return;
    const head = this.buf.subarray(0, headEnd).toString('latin1');
    const status = Number(head.slice(9, 12));
    let end: number;
    const length = /\r\ncontent-length:\s*(\d+)/i.exec(head);
    if (length) {
      end = headEnd + 4 + Number(length[1]);
      if (this.buf.length < end) return;
    } else if (/\r\ntransfer-encoding:\s*chunked/i.test(head)) {
      const last = this.buf.indexOf('\r\n0\r\n\r\n', headEnd + 2);
      if (last < 0) return;
      end = last + 7;
    } else {
      end = headEnd + 4;
    }
    this.buf = this.buf.subarray(end);
    const w = this.waiting;
    this.waiting = null;
    w.resolve(status);
  }
}

async function httpLoad(): Promise<object> {
  const proxy = hostPort(values.proxy, 'proxy');
  const url = new URL(values.url ?? '');
  const connections = bounded('connections', values.connections, 1, MAX_CONNECTIONS);
  const seconds = bounded('seconds', values.seconds, 0.1, MAX_SECONDS);
  const rate = values.rate === undefined ? null : bounded('rate', values.rate, 1, 1_000_000);
  const request = Buffer.from(`GET ${url.href} HTTP/1.1\r\nHost: ${url.host}\r\nUser-Agent: gatehouse-bench\r\n\r\n`, 'latin1');
  const lat = new Latencies();
  let errors = 0;
  let reconnects = 0;
  const start = now();
  const stopAt = start + seconds * 1000;
  // Each connection's share of the rate: one request every `interval` ms, on a schedule (not after the last answer).
  const interval = rate === null ? 0 : (connections * 1000) / rate;
  const worker = async (index: number): Promise<void> => {
    let socket: Socket | null = null;
    let reader: ResponseReader | null = null;
    let due = start + (interval * index) / connections;
    while (now() < stopAt) {
      if (interval > 0) {
        const wait = due - now();
        if (wait > 0) await sleep(wait);
        due += interval;
        if (now() >= stopAt) break;
      }
      try {
        if (socket === null || reader === null || reader.closed) {
          socket?.destroy();
          socket = await connectTo(proxy.host, proxy.port);
          reader = new ResponseReader(socket);
          reconnects++;
        }
        const t0 = now();
        socket.write(request);
        const status = await reader.next();
        lat.add(now() - t0);
        if (status !== 200) errors++;
      } catch {
        errors++;
        socket?.destroy();
        socket = null;
        await sleep(1); // a refused or reset connection must not spin
      }
    }
    socket?.destroy();
  };
  await Promise.all(Array.from({ length: connections }, (_, i) => worker(i)));
  const elapsed = (now() - start) / 1000;
  return {
    mode: 'http',
    connections,
    target_rate: rate,
    seconds: Number(elapsed.toFixed(3)),
    requests: lat.count,
    errors,
    connections_opened: reconnects,
    rps: Math.round(lat.count / elapsed),
    p50_ms: lat.percentile(50),
    p99_ms: lat.percentile(99),
  };
}

/** Opens a tunnel: CONNECT, then waits for the 200 head. Resolves with any bytes that came after the head. */
async function openTunnel(proxy: { host: string; port: number }, target: string): Promise<{ socket: Socket; rest: Buffer }> {
  const socket = await connectTo(proxy.host, proxy.port);
  socket.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`);
  return new Promise((resolve, reject) => {
    let buf: Buffer = Buffer.alloc(0);
    const onData = (d: Buffer): void => {
      buf = Buffer.concat([buf, d]);
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      socket.off('data', onData);
      socket.off('close', onClose);
      if (buf.subarray(9, 12).toString() !== '200') {
        socket.destroy();
        reject(new Error(`CONNECT answered ${buf.subarray(0, end).toString('latin1').split('\r\n')[0]}`));
        return;
      }
      resolve({ socket, rest: buf.subarray(end + 4) });
    };
    const onClose = (): void => reject(new Error('closed before the CONNECT answer'));
    socket.on('data', onData);
    socket.once('close', onClose);
    socket.on('error', () => undefined);
  });
}

/** The first record node:tls sends to `servername`, its ClientHello, caught whole by a local server. */
async function clientHelloFor(servername: string): Promise<Buffer> {
  const catcher = createServer();
  catcher.listen(0, '127.0.0.1');
  await once(catcher, 'listening');
  let timer: NodeJS.Timeout | undefined;
  const caught = new Promise<Buffer>((resolve, reject) => {
    timer = setTimeout(() => reject(new Error('no ClientHello from node:tls within 5 s')), 5000);
    catcher.once('connection', (socket: Socket) => {
      let got = Buffer.alloc(0);
      socket.on('data', (d: Buffer) => {
        got = Buffer.concat([got, d]);
        if (got.length >= 5 && got[0] !== 0x16) reject(new Error('Expected a TLS handshake record from node:tls but received something else'));
        if (got.length >= 5 && got.length >= 5 + got.readUInt16BE(3)) {
          socket.destroy();
          resolve(got.subarray(0, 5 + got.readUInt16BE(3)));
        }
      });
    });
  });
  const client = tlsConnect({ host: '127.0.0.1', port: (catcher.address() as AddressInfo).port, servername });
  client.on('error', () => undefined); // the catcher hangs up after the hello
  try {
    return await caught;
  } finally {
    clearTimeout(timer);
    client.destroy();
    catcher.close();
  }
}

async function connectLoad(): Promise<object> {
  const proxy = hostPort(values.proxy, 'proxy');
  const target = values.target ?? '';
  const firstFlight = values['client-hello'] ? await clientHelloFor(hostPort(target, 'target').host) : ROUND_TRIP;
  const connections = bounded('connections', values.connections, 1, MAX_CONNECTIONS);
  const seconds = bounded('seconds', values.seconds, 0.1, MAX_SECONDS);
  const rate = values.rate === undefined ? null : bounded('rate', values.rate, 1, 1_000_000);
  const lat = new Latencies();
  let errors = 0;
  const start = now();
  const stopAt = start + seconds * 1000;
  // As in httpLoad: each loop's share of the rate, on a schedule.
  const interval = rate === null ? 0 : (connections * 1000) / rate;
  const worker = async (index: number): Promise<void> => {
    let due = start + (interval * index) / connections;
    while (now() < stopAt) {
      if (interval > 0) {
        const wait = due - now();
        if (wait > 0) await sleep(wait);
        due += interval;
        if (now() >= stopAt) break;
      }
      const t0 = now();
      try {
        const { socket, rest } = await openTunnel(proxy, target);
        await new Promise<void>((resolve, reject) => {
          let got = rest.length;
          const timer = setTimeout(() => reject(new Error('echo timeout')), DRAIN_MS);
          const check = (): void => {
            if (got < firstFlight.length) return;
            clearTimeout(timer);
            resolve();
          };
          socket.on('data', (d: Buffer) => {
            got += d.length;
            check();
          });
          socket.once('close', () => {
            clearTimeout(timer);
            reject(new Error('closed'));
          });
          socket.write(firstFlight);
          check();
        }).finally(() => socket.destroy());
        lat.add(now() - t0);
      } catch {
        errors++;
        await sleep(1);
      }
    }
  };
  await Promise.all(Array.from({ length: connections }, (_, i) => worker(i)));
  const elapsed = (now() - start) / 1000;
  return {
    mode: 'connect',
    connections,
    target_rate: rate,
    first_flight_bytes: firstFlight.length,
    seconds: Number(elapsed.toFixed(3)),
    tunnels: lat.count,
    errors,
    tunnels_per_s: Math.round(lat.count / elapsed),
    p50_ms: lat.percentile(50),
    p99_ms: lat.percentile(99),
  };
}

async function streamLoad(): Promise<object> {
  const proxy = hostPort(values.proxy, 'proxy');
  const seconds = bounded('seconds', values.seconds, 0.1, MAX_SECONDS);
  const { socket, rest } = await openTunnel(proxy, values.target ?? '');
  let bytes = rest.length;
  let firstAt = 0;
  socket.on('data', (d: Buffer) => {
    if (firstAt === 0) firstAt = now();
    bytes += d.length;
  });
  socket.write('G'); // the source starts sending when it reads a byte
  const start = now();
  await sleep(seconds * 1000);
  const elapsed = (now() - start) / 1000;
  socket.destroy();
  return { mode: 'stream', seconds: Number(elapsed.toFixed(3)), bytes, mb_per_s: Number((bytes / 1e6 / elapsed).toFixed(1)) };
}

/** The upstreams; they run until killed (bench/proxy.sh's trap). */
async function upstreams(): Promise<void> {
  const httpPort = bounded('http-port', values['http-port'], 1, 65535);
  const echoPort = bounded('echo-port', values['echo-port'], 1, 65535);
  const sourcePort = bounded('source-port', values['source-port'], 1, 65535);
  const http = createHttpServer({ keepAliveTimeout: 60_000 }, (req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': BODY.length });
    res.end(BODY);
  });
  const echo = createServer((s) => {
    s.on('error', () => undefined);
    s.pipe(s);
  });
  const chunk = Buffer.alloc(64 * 1024, 0x73);
  const source = createServer((s) => {
    s.on('error', () => undefined);
    s.once('data', () => {
      // Write while the socket takes it; resume on 'drain'; stop when it closes.
      const pump = (): void => {
        while (!s.destroyed && s.write(chunk));
      };
      s.on('drain', pump);
      pump();
    });
  });
  const listen = (server: { listen: (port: number, host: string, cb: () => void) => unknown }, port: number): Promise<void> =>
    new Promise((resolve) => server.listen(port, '127.0.0.1', resolve));
  await Promise.all([listen(http, httpPort), listen(echo, echoPort), listen(source, sourcePort)]);
  console.log(JSON.stringify({ ready: true }));
}

async function main(): Promise<void> {
  const mode = positionals[0];
  if (mode === 'upstreams') return upstreams();
  const run = mode === 'http' ? httpLoad : mode === 'connect' ? connectLoad : mode === 'stream' ? streamLoad : null;
  if (run === null) throw new Error(`Expected a mode (upstreams, http, connect, stream) but received ${String(mode)}`);
  // A hard stop: whatever happens, the client ends.
  const deadline = setTimeout(() => {
    console.error('http-load: deadline passed, exiting');
    process.exit(3);
  }, (bounded('seconds', values.seconds, 0.1, MAX_SECONDS) * 1000 + DRAIN_MS) * 2);
  deadline.unref();
  console.log(JSON.stringify(await run()));
  process.exit(0);
}

main().catch((err: unknown) => {
  console.error(`http-load: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(2);
});
