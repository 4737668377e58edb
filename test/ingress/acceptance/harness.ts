/**
 * Real parts for the ingress acceptance tests, all on loopback: the
 * `gatehouse ingress` command as a child process, an upstream that records
 * what reaches it (body hashed as it streams, never kept), and a small HTTP
 * client that streams bodies and hashes what comes back.
 *
 * The child runs in its own mount namespace with a private /etc/hosts
 * (unshare --mount, then a bind mount), so rewritten upstream names such as
 * orders-service.apps.example.test resolve to 127.0.0.1 for it alone: the
 * host really is rewritten, signed and resolved, and the upstream is still
 * on this machine's loopback. Its environment holds no AWS_* variable the
 * test did not set, IMDS is disabled, and the shared AWS config files point
 * nowhere, so nothing can reach a real AWS endpoint.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import type { TestContext } from 'node:test';

const MAIN = join(__dirname, '..', '..', '..', 'src', 'cli', 'main.js');
const WAIT_MS = 20_000;

export type JsonLine = Record<string, unknown>;

/** A free loopback TCP port (bound, then released just before use). */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-ingress-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export interface IngressStart {
  /** The routes file's text. */
  routes: string;
  /** Names the child resolves to 127.0.0.1. */
  hosts?: string[];
  args?: string[];
  env?: Record<string, string>;
  /** Where the routes file and other files go (default: a new temp dir). */
  dir?: string;
}

/** `gatehouse ingress` as a child: access log lines (stdout) and event lines (stderr), both JSON. */
export class IngressProcess {
  readonly access: JsonLine[] = [];
  readonly events: JsonLine[] = [];
  private text = '';
  private waiters: Array<() => void> = [];
  private closed = false;
  readonly exited: Promise<number | null>;
  port = 0;
  healthPort = 0;

  constructor(
    readonly proc: ChildProcess,
    readonly dir: string,
    readonly routesFile: string,
  ) {
    createInterface({ input: proc.stdout! }).on('line', (line) => this.take(this.access, line));
    createInterface({ input: proc.stderr! }).on('line', (line) => this.take(this.events, line));
    this.exited = new Promise((resolve) =>
      proc.on('close', (code) => {
        this.closed = true;
        this.wake();
        resolve(code);
      }),
    );
  }

  get pid(): number {
    return this.proc.pid ?? 0;
  }

  private take(into: JsonLine[], line: string): void {
    this.text += `${line}\n`;
    try {
      into.push(JSON.parse(line) as JsonLine);
    } catch {
      // Kept in `text` for failure messages.
    }
    this.wake();
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** Waits (bounded; not a timing assertion) until `probe` finds something; `what` names it in the failure. */
  private async until<T>(probe: () => T | undefined, what: string, timeoutMs = WAIT_MS): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = probe();
      if (found !== undefined) return found;
      if (this.closed || Date.now() > deadline) throw new Error(`gatehouse ingress: no ${what} (${this.closed ? 'exited' : 'timeout'}); output:\n${this.text}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 200);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** A JSON line in `list`, from index `from` on, that matches `pred`. */
  waitIn(list: JsonLine[], pred: (m: JsonLine) => boolean, from = 0): Promise<JsonLine> {
    return this.until(() => list.slice(from).find(pred), 'expected line');
  }

  waitEvent(msg: string, from = 0): Promise<JsonLine> {
    return this.waitIn(this.events, (m) => m.msg === msg, from);
  }

  waitAccess(pred: (m: JsonLine) => boolean, from = 0): Promise<JsonLine> {
    return this.waitIn(this.access, pred, from);
  }

  /** The output so far matched against `pattern`. */
  waitText(pattern: RegExp): Promise<RegExpExecArray> {
    return this.until(() => pattern.exec(this.text) ?? undefined, `output matching ${pattern}`);
  }

  get output(): string {
    return this.text;
  }

  signal(sig: NodeJS.Signals): void {
    this.proc.kill(sig);
  }

  kill(): void {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill('SIGKILL');
  }

  writeRoutes(text: string): void {
    writeFileSync(this.routesFile, text);
  }
}

/** Starts the ingress (killed in t.after) and waits for its 'started' line. */
export async function startIngress(t: TestContext, opts: IngressStart): Promise<IngressProcess> {
  const dir = opts.dir ?? tempDir(t);
  const routesFile = join(dir, 'routes.yaml');
  writeFileSync(routesFile, opts.routes);
  const hostsFile = join(dir, 'hosts');
  writeFileSync(hostsFile, ['127.0.0.1 localhost', ...(opts.hosts ?? []).map((h) => `127.0.0.1 ${h}`), ''].join('\n'));
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('AWS_') && v !== undefined) env[k] = v;
  Object.assign(env, {
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_CONFIG_FILE: '/nonexistent/gatehouse-test-aws-config',
    AWS_SHARED_CREDENTIALS_FILE: '/nonexistent/gatehouse-test-aws-credentials',
    ...opts.env,
  });
  const healthPort = await freePort();
  const args = ['ingress', '--routes', routesFile, '--listen', '127.0.0.1:0', '--health-port', String(healthPort), '--health-bind', '127.0.0.1', '--log-format', 'json', ...(opts.args ?? [])];
  // A private /etc/hosts for the child alone: "$0" is the file, "$@" the command (no string is built from input).
  const proc = spawn('unshare', ['--mount', '--propagation', 'private', '--', 'sh', '-c', 'mount --bind "$0" /etc/hosts && exec "$@"', hostsFile, process.execPath, MAIN, ...args], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const ingress = new IngressProcess(proc, dir, routesFile);
  t.after(async () => {
    ingress.kill();
    await ingress.exited;
  });
  const started = await ingress.waitEvent('started');
  ingress.port = Number(String(started.listen).split(':').pop());
  ingress.healthPort = healthPort;
  return ingress;
}

/** One request as the upstream saw it. */
export interface Recorded {
  method: string;
  url: string;
  rawHeaders: string[];
  headers: http.IncomingHttpHeaders;
  bodyBytes: number;
  bodySha256: string;
}

/** Deterministic non-text bytes: every byte value, in a pattern that does not repeat within 251 bytes. */
export function binaryBlock(size: number): Buffer {
  const b = Buffer.alloc(size);
  for (let i = 0; i < size; i++) b[i] = (i * 7 + (i >> 8)) % 251;
  return b;
}

/** The sha256 of `count` repetitions of `block` followed by nothing (what a streamed body of that shape hashes to). */
export function repeatedSha256(block: Buffer, count: number): string {
  const h = createHash('sha256');
  for (let i = 0; i < count; i++) h.update(block);
  return h.digest('hex');
}

/**
 * The recording upstream. Paths:
 *   /download?blocks=N[&chunked=1]  N blocks of 64 KiB of binaryBlock, with Content-Length or chunked
 *   /hang                           reads the request, never answers
 *   /slow?ms=N                      answers after N ms (at most 10 s)
 *   anything else                   reads the body (hashed), answers 200 with the record as JSON
 */
export class RecordingUpstream {
  readonly requests: Recorded[] = [];
  readonly server: http.Server;
  port = 0;
  static readonly BLOCK = binaryBlock(64 * 1024);

  private constructor() {
    this.server = http.createServer({ keepAliveTimeout: 60_000 }, (req, res) => this.handle(req, res));
  }

  static async start(t: TestContext): Promise<RecordingUpstream> {
    const up = new RecordingUpstream();
    await new Promise<void>((resolve) => up.server.listen(0, '127.0.0.1', resolve));
    up.port = (up.server.address() as AddressInfo).port;
    t.after(
      () =>
        new Promise<void>((resolve) => {
          up.server.closeAllConnections();
          up.server.close(() => resolve());
        }),
    );
    return up;
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://upstream');
    if (url.pathname === '/download') {
      req.resume();
      const blocks = Number(url.searchParams.get('blocks') ?? '1');
      const chunked = url.searchParams.get('chunked') === '1';
      res.writeHead(200, chunked ? { 'content-type': 'application/octet-stream' } : { 'content-type': 'application/octet-stream', 'content-length': String(blocks * RecordingUpstream.BLOCK.length) });
      let sent = 0;
      // Written as the client takes it (drain), so the upstream holds at most one block.
      const pump = (): void => {
        while (sent < blocks) {
          sent++;
          if (!res.write(RecordingUpstream.BLOCK)) return;
        }
        res.end();
      };
      res.on('drain', pump);
      pump();
      return;
    }
    const hash = createHash('sha256');
    let bytes = 0;
    req.on('data', (d: Buffer) => {
      hash.update(d);
      bytes += d.length;
    });
    req.on('end', () => {
      const record: Recorded = { method: req.method ?? '', url: req.url ?? '', rawHeaders: req.rawHeaders, headers: req.headers, bodyBytes: bytes, bodySha256: hash.digest('hex') };
      this.requests.push(record);
      if (url.pathname === '/hang') return;
      const body = JSON.stringify(record);
      if (url.pathname === '/slow') {
        const timer = setTimeout(() => res.writeHead(200, { 'content-type': 'application/json' }).end(body), Math.min(10_000, Number(url.searchParams.get('ms') ?? '0')));
        res.once('close', () => clearTimeout(timer));
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) });
      res.end(body);
    });
  }
}

export interface ClientResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  rawHeaders: string[];
  /** The body, kept when small (< 1 MiB), else empty. */
  body: Buffer;
  bodyBytes: number;
  bodySha256: string;
}

export interface ClientRequest {
  port: number;
  host: string;
  method?: string;
  path?: string;
  /** Raw header array ([name, value, ...]). */
  headers?: string[];
  /** A buffer (Content-Length) or a stream (chunked unless a Content-Length header is given). */
  body?: Buffer | Readable;
}

const KEEP_BELOW = 1 << 20;

/** One request on its own connection; the response body is streamed, hashed, and kept only when small. */
export function send(r: ClientRequest): Promise<ClientResponse> {
  return new Promise((resolve, reject) => {
    const headers = ['Host', r.host, ...(r.headers ?? [])];
    if (Buffer.isBuffer(r.body)) headers.push('Content-Length', String(r.body.length));
    const req = http.request({ host: '127.0.0.1', port: r.port, method: r.method ?? 'GET', path: r.path ?? '/', headers, agent: false, setHost: false });
    req.on('error', reject);
    req.on('response', (res) => {
      const hash = createHash('sha256');
      const kept: Buffer[] = [];
      let bytes = 0;
      res.on('data', (d: Buffer) => {
        hash.update(d);
        bytes += d.length;
        if (bytes < KEEP_BELOW) kept.push(d);
      });
      res.on('error', reject);
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, rawHeaders: res.rawHeaders, body: bytes < KEEP_BELOW ? Buffer.concat(kept) : Buffer.alloc(0), bodyBytes: bytes, bodySha256: hash.digest('hex') }),
      );
    });
    if (r.body === undefined) req.end();
    else if (Buffer.isBuffer(r.body)) req.end(r.body);
    else r.body.pipe(req);
  });
}

export function json(res: ClientResponse): Record<string, unknown> {
  return JSON.parse(res.body.toString('utf8')) as Record<string, unknown>;
}

/** VmRSS of a process, in KiB. */
export function rssKiB(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : 0;
}

/** Samples VmRSS every 50 ms until stopped; returns the highest value seen. */
export function sampleRss(pid: number): { stop: () => number } {
  let peak = rssKiB(pid);
  const timer = setInterval(() => {
    try {
      peak = Math.max(peak, rssKiB(pid));
    } catch {
      // The process ended; the last sample stands.
    }
  }, 50);
  return {
    stop: () => {
      clearInterval(timer);
      return peak;
    },
  };
}

/** The health endpoint's status and JSON body. */
export async function health(port: number, path = '/healthz'): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await send({ port, host: '127.0.0.1', path });
  return { status: res.status, body: JSON.parse(res.body.toString('utf8')) as Record<string, unknown> };
}

/** Polls `probe` until it returns true: at most `tries` times, 100 ms apart (a bound, not a timing assertion). */
export async function eventually(probe: () => Promise<boolean>, tries = 100): Promise<boolean> {
  for (let i = 0; i < tries; i++) {
    if (await probe()) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}
