/**
 * The network around the proxy under test, run inside the test's namespace
 * (proxy.test.ts): upstream servers on documentation addresses, and plain
 * listeners on the addresses the SSRF defences must never reach, which
 * count every connection they get.
 *
 *   node proxy-world.js world '<config JSON>'
 *
 * JSON lines on stdout: {"type":"ready"}, then {"type":"counts"} for each
 * "counts" line on stdin.
 *
 * node --test also runs every file under dist/test/: without a role this
 * does nothing.
 */
import { writeSync, readFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createTcpServer } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import { createInterface } from 'node:readline';

export interface WorldConfig {
  /** Upstream HTTP on :80 and HTTPS on :443 at each of these. */
  upstreams: string[];
  /** Listeners on :80 that only count connections (the SSRF targets). */
  forbidden: string[];
  cert: string;
  key: string;
}

export interface WorldCounts {
  type: 'counts';
  /** Connections per forbidden address. */
  forbidden: Record<string, number>;
  /** TCP connections and raw (encrypted) bytes received on the HTTPS upstreams. */
  tlsConnections: number;
  tlsBytes: number;
  httpRequests: number;
}

function emit(m: object): void {
  writeSync(1, JSON.stringify(m) + '\n');
}

/** /small: a short body naming the Host; /slow?chunks=N: N KiB, one every 50 ms; /big: 1 MiB. */
function handler(counts: { httpRequests: number }) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    counts.httpRequests++;
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname === '/slow') {
      const chunks = Math.min(200, Number(url.searchParams.get('chunks') ?? '20'));
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(chunks * 1024) });
      let sent = 0;
      const timer = setInterval(() => {
        res.write(Buffer.alloc(1024, 0x61));
        if (++sent === chunks) {
          clearInterval(timer);
          res.end();
        }
      }, 50);
      res.on('close', () => clearInterval(timer));
      return;
    }
    if (url.pathname === '/big') {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(1 << 20) });
      res.end(Buffer.alloc(1 << 20, 0x62));
      return;
    }
    const body = `hello ${req.headers.host ?? ''} via=${req.headers.via ?? ''} xff=${req.headers['x-forwarded-for'] ?? ''} conn=${req.headers.connection ?? ''}\n`;
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(body);
  };
}

function run(cfg: WorldConfig): void {
  const counts = { httpRequests: 0, tlsConnections: 0, tlsBytes: 0 };
  const forbidden: Record<string, number> = {};
  let pending = 0;
  const listening = (): void => {
    if (--pending === 0) emit({ type: 'ready' });
  };
  for (const addr of cfg.upstreams) {
    pending += 2;
    createHttpServer(handler(counts)).listen(80, addr, listening);
    const tls = createTlsServer({ cert: readFileSync(cfg.cert), key: readFileSync(cfg.key) }, (s) => {
      s.on('data', (d: Buffer) => {
        if (d.subarray(0, 4).toString() === 'GET ') s.end('HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n');
      });
      s.on('error', () => undefined);
    });
    tls.on('connection', (sock) => {
      counts.tlsConnections++;
      sock.on('data', (d: Buffer) => (counts.tlsBytes += d.length));
    });
    tls.on('tlsClientError', () => undefined);
    tls.listen(443, addr, listening);
  }
  for (const addr of cfg.forbidden) {
    pending++;
    forbidden[addr] = 0;
    createTcpServer((s) => {
      forbidden[addr]++;
      s.destroy();
    }).listen(80, addr, listening);
  }
  createInterface({ input: process.stdin }).on('line', (line) => {
    if (line === 'counts') emit({ type: 'counts', forbidden, ...counts } satisfies WorldCounts);
  });
}

if (require.main === module && process.argv[2] === 'world') run(JSON.parse(process.argv[3]) as WorldConfig);
