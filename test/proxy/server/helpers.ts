/**
 * Real parts for the proxy server tests, all on loopback: upstream HTTP,
 * TLS and raw TCP servers that record what reached them, a listener that
 * never completes a handshake (for connect timeouts), a policy made of a
 * host list, the real SSRF resolver with names mapped to 127.0.0.1, and an
 * async curl.
 */
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tls from 'node:tls';
import { resolveAndCheck } from '../../../src/proxy/ssrf';
import type { AccessEntry, ProxyRequestFacts } from '../../../src/proxy/types';
import { startProxyServer, type ProxyDecision, type ProxyServer, type ProxyServerOptions } from '../../../src/proxy/server';

export const LOOPBACK_ALLOWED = ['127.0.0.0/8'];

/** A policy: allowed hosts (any port) with allow_addresses for loopback, everything else denied by rule "deny-all" or the default. */
export function hostListPolicy(allowed: readonly string[], opts: { denyRule?: string; allowLoopback?: boolean } = {}): (facts: ProxyRequestFacts) => ProxyDecision {
  return (facts) => {
    if (allowed.includes(facts.host)) {
      return {
        action: 'allow',
        rule: { id: `allow-${facts.host}` },
        reason: 'rule',
        message: `${facts.host} is allowed`,
        allowAddresses: opts.allowLoopback === false ? [] : LOOPBACK_ALLOWED,
      };
    }
    if (opts.denyRule !== undefined) {
      return { action: 'deny', rule: { id: opts.denyRule }, reason: 'rule', message: `${facts.host} is not on the list`, allowAddresses: [] };
    }
    return { action: 'deny', rule: null, reason: 'default', message: 'denied by default', allowAddresses: [] };
  };
}

/** The real resolveAndCheck with a lookup that maps every `.test` name to 127.0.0.1 and fails others. */
export function loopbackResolver(): ProxyServerOptions['resolve'] {
  return (host, allow) =>
    resolveAndCheck(host, {
      lookup: async (name) => {
        if (name.endsWith('.test')) return [{ address: '127.0.0.1', family: 4 }];
        throw Object.assign(new Error(`no such name ${name}`), { code: 'ENOTFOUND' });
      },
      allow,
      own: [],
      timeoutMs: 2000,
    });
}

export interface TestProxy {
  server: ProxyServer;
  port: number;
  url: string;
  entries: AccessEntry[];
  /** Resolves with the next access entry (or one already recorded beyond `seen`). */
  nextEntry(seen?: number): Promise<AccessEntry>;
}

export async function startTestProxy(overrides: Partial<ProxyServerOptions> = {}): Promise<TestProxy> {
  const entries: AccessEntry[] = [];
  const waiters: Array<() => void> = [];
  const server = await startProxyServer({
    listen: [{ host: '127.0.0.1', port: 0 }],
    proxyProtocol: false,
    decide: hostListPolicy(['upstream.test', 'allowed.test'], { denyRule: 'deny-rest' }),
    resolve: loopbackResolver(),
    onAccess: (e) => {
      entries.push(e);
      for (const w of waiters.splice(0)) w();
    },
    maxConnections: 100,
    maxConnectionsPerClient: 50,
    headerTimeoutMs: 5000,
    idleTimeoutMs: 10000,
    connectTimeoutMs: 5000,
    via: '1.1 gatehouse',
    xForwardedFor: 'add',
    fronting: { nonTls: 'deny' },
    frontingTimeoutMs: 5000,
    // The host-list policy answers the same facts the same way: kept routes are safe, and every test exercises them.
    keptRouteMs: 60_000,
    ...overrides,
  });
  const port = server.addresses()[0].port;
  const nextEntry = (seen = entries.length): Promise<AccessEntry> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no access entry #${seen + 1} within 10 s`)), 10000);
      const check = (): void => {
        if (entries.length > seen) {
          clearTimeout(timer);
          resolve(entries[seen]);
        } else waiters.push(check);
      };
      check();
    });
  return { server, port, url: `http://127.0.0.1:${port}`, entries, nextEntry };
}

export interface SeenRequest {
  method: string;
  url: string;
  rawHeaders: string[];
  headers: http.IncomingHttpHeaders;
  bodySha256: string;
  bodyBytes: number;
  connectionId: number;
}

export interface TestUpstream {
  port: number;
  requests: SeenRequest[];
  connections: () => number;
  close(): Promise<void>;
}

/**
 * An HTTP upstream. Paths: /echo answers the body's SHA-256 and size;
 * /hop answers with hop-by-hop headers of its own; /slow?chunks=N&ms=M
 * streams N chunks M ms apart; anything else answers "hello <path>".
 */
export async function startHttpUpstream(): Promise<TestUpstream> {
  const requests: SeenRequest[] = [];
  let connections = 0;
  const server = http.createServer((req, res) => {
    const hash = createHash('sha256');
    let bodyBytes = 0;
    req.on('data', (chunk: Buffer) => {
      hash.update(chunk);
      bodyBytes += chunk.length;
    });
    req.on('end', () => {
      const seen: SeenRequest = {
        method: req.method ?? '',
        url: req.url ?? '',
        rawHeaders: req.rawHeaders,
        headers: req.headers,
        bodySha256: hash.digest('hex'),
        bodyBytes,
        connectionId: (req.socket as net.Socket & { testId?: number }).testId ?? -1,
      };
      requests.push(seen);
      const url = new URL(req.url ?? '/', 'http://x');
      if (url.pathname === '/echo') {
        res.end(`${seen.bodySha256} ${bodyBytes}`);
      } else if (url.pathname === '/hop') {
        res.writeHead(200, [
          'Content-Type', 'text/plain',
          'Connection', 'X-Up-Hop',
          'X-Up-Hop', 'secret',
          'Keep-Alive', 'timeout=5',
          'Proxy-Authenticate', 'Basic realm="up"',
          'X-Up-End', 'kept',
          'Set-Cookie', 'a=1',
          'Set-Cookie', 'b=2',
        ]);
        res.end('hop');
      } else if (url.pathname === '/slow') {
        const chunks = Number(url.searchParams.get('chunks') ?? '5');
        const ms = Number(url.searchParams.get('ms') ?? '100');
        res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': String(chunks * 1000) });
        let sent = 0;
        const tick = (): void => {
          res.write(Buffer.alloc(1000, 0x61 + (sent % 26)));
          sent++;
          if (sent < chunks) setTimeout(tick, ms);
          else res.end();
        };
        tick();
      } else {
        res.writeHead(200, { 'Content-Type': 'text/plain' });
        res.end(`hello ${url.pathname}`);
      }
    });
  });
  server.on('connection', (socket: net.Socket & { testId?: number }) => {
    socket.testId = ++connections;
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    requests,
    connections: () => connections,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A raw TCP server that records every byte it receives (per connection) and writes `greeting` on accept, if any. */
export async function startRawUpstream(greeting?: string): Promise<{ port: number; received: () => Buffer[]; connections: () => number; close(): Promise<void> }> {
  const received: Buffer[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    const index = received.push(Buffer.alloc(0)) - 1;
    socket.on('data', (d: Buffer) => {
      received[index] = Buffer.concat([received[index], d]);
      socket.write(d); // echo
    });
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
    if (greeting !== undefined) socket.write(greeting);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    received: () => received,
    connections: () => received.length,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

export interface TestCert {
  dir: string;
  key: Buffer;
  cert: Buffer;
  certPath: string;
  remove(): void;
}

/** A self-signed certificate (its own CA) for the given names, made by openssl in a temp dir. */
export async function makeCert(names: string[]): Promise<TestCert> {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-proxy-cert-'));
  const keyPath = join(dir, 'key.pem');
  const certPath = join(dir, 'cert.pem');
  await run('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', keyPath, '-out', certPath, '-days', '1', '-subj', `/CN=${names[0]}`,
    '-addext', `subjectAltName=${names.map((n) => `DNS:${n}`).join(',')}`,
  ]);
  return { dir, key: readFileSync(keyPath), cert: readFileSync(certPath), certPath, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** An HTTPS upstream answering "tls <servername> <path>". */
export async function startTlsUpstream(cert: TestCert): Promise<{ port: number; close(): Promise<void> }> {
  const server = tls.createServer({ key: cert.key, cert: cert.cert }, (socket) => {
    socket.on('error', () => undefined);
    const name = socket.servername || '-';
    let head = '';
    socket.on('data', (d: Buffer) => {
      head += d.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      const path = head.split(' ')[1] ?? '/';
      const body = `tls ${name} ${path}`;
      socket.end(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: (server.address() as net.AddressInfo).port, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

/**
 * A listener whose accept queue is full (python3, backlog 0, filled by its
 * own connections): a SYN to it is dropped, so a connect to it stays
 * pending, on loopback, until the caller gives up. Bounded by the caller's
 * timeout and by close().
 */
export async function startBlackholeListener(): Promise<{ port: number; close(): void }> {
  const script = [
    'import socket, sys',
    "s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(0)",
    'port = s.getsockname()[1]',
    'fill = []',
    'for _ in range(3):',
    '    c = socket.socket(); c.settimeout(0.3)',
    '    try: c.connect(("127.0.0.1", port))',
    '    except OSError: pass',
    '    fill.append(c)',
    'print(port, flush=True)',
    'sys.stdin.read()',
  ].join('\n');
  const child = spawn('python3', ['-c', script], { stdio: ['pipe', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error('python3 listener did not start')), 10000);
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('\n')) {
        clearTimeout(timer);
        resolve(Number(out.trim()));
      }
    });
    child.once('exit', (code) => reject(new Error(`python3 listener exited with ${code}`)));
  });
  return {
    port,
    close: () => {
      child.stdin.end();
      child.kill();
    },
  };
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a program without a shell, asynchronously (the proxy under test runs in this process). */
export function run(cmd: string, args: string[], opts: { timeoutMs?: number } = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: opts.timeoutMs ?? 20000, maxBuffer: 16 * 1024 * 1024, encoding: 'latin1' }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof (err as NodeJS.ErrnoException).code === 'number' ? Number((err as NodeJS.ErrnoException).code) : -1;
      resolve({ code, stdout, stderr });
    });
  });
}

/** curl with the proxy; never the environment's proxy settings. */
export function curl(args: string[], timeoutMs = 20000): Promise<RunResult> {
  return run('curl', ['-sS', '--noproxy', '', '--max-time', String(Math.ceil(timeoutMs / 1000)), ...args], { timeoutMs: timeoutMs + 2000 });
}

/** Opens a raw TCP connection to the proxy. */
export function connectRaw(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => resolve(s));
    s.once('error', reject);
  });
}

/** Reads from a socket until `done(text)` is true or the socket closes; returns what came. */
export function readUntil(socket: net.Socket, done: (text: string) => boolean, timeoutMs = 10000): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve) => {
    let text = '';
    const finish = (closed: boolean): void => {
      clearTimeout(timer);
      socket.removeListener('data', onData);
      socket.removeListener('close', onClose);
      resolve({ text, closed });
    };
    const onData = (d: Buffer): void => {
      text += d.toString('latin1');
      if (done(text)) finish(false);
    };
    const onClose = (): void => finish(true);
    const timer = setTimeout(() => finish(socket.destroyed), timeoutMs);
    socket.on('data', onData);
    socket.once('close', onClose);
  });
}

/** Waits for a socket to close. */
export function closed(socket: net.Socket, timeoutMs = 10000): Promise<boolean> {
  if (socket.destroyed) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve(true);
    });
    socket.resume();
  });
}

/** The first bytes node's TLS client sends for `servername`: a real ClientHello, captured on a loopback socket. */
export async function captureClientHello(servername: string | null): Promise<Buffer> {
  let capture: (b: Buffer) => void = () => undefined;
  const got = new Promise<Buffer>((resolve) => (capture = resolve));
  const server = net.createServer((s) => {
    s.once('data', (d: Buffer) => {
      capture(d);
      s.destroy();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const client = tls.connect({ port: (server.address() as net.AddressInfo).port, host: '127.0.0.1', ...(servername === null ? {} : { servername }), rejectUnauthorized: false });
  client.on('error', () => undefined);
  const hello = await got;
  client.destroy();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return hello;
}
