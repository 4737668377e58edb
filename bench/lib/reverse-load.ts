/**
 * The load for bench/ingress.sh: keep-alive clients that talk to a reverse
 * proxy the way browsers talk to a site (origin-form requests with a Host
 * header), over raw sockets so the client costs little next to what it
 * measures. Response bodies are counted as they stream, never collected, so
 * 10 MB answers cost the client no copying.
 *
 *   node dist/bench/lib/reverse-load.js --target 127.0.0.1:8080 --host bench.example.test --path /1k \
 *        --connections 32 --seconds 3 [--rate R] [--distinct] [--request-ids] [--user-agents]
 *
 * N connections, one request at a time each; with --rate, R requests/s in
 * total on a fixed schedule, else as fast as answers come. --distinct gives
 * every request a query of its own ("?n=<count>"), so nothing a proxy
 * remembers of an earlier request (a signature) serves a later one;
 * --request-ids adds a field of its own to each ("X-Request-Id: <count>",
 * as tracing clients do), so no request has the header fields of the one
 * before it either; --user-agents gives each a User-Agent of its own
 * ("gatehouse-bench-<count>"). Prints one JSON
 * line: requests, errors, req/s, body MB/s, p50 and p99 latency in ms.
 * Bounded: at most 120 s and 1024 connections, and a hard exit after twice
 * the duration.
 */
import { connect, type Socket } from 'node:net';
import { parseArgs } from 'node:util';

const LIMITS = { seconds: 120, connections: 1024, samples: 4_000_000 };
const HEAD_END = Buffer.from('\r\n\r\n');

const { values } = parseArgs({
  options: {
    target: { type: 'string' },
    host: { type: 'string' },
    path: { type: 'string', default: '/' },
    connections: { type: 'string', default: '16' },
    seconds: { type: 'string', default: '3' },
    rate: { type: 'string' },
    distinct: { type: 'boolean', default: false },
    'request-ids': { type: 'boolean', default: false },
    'user-agents': { type: 'boolean', default: false },
  },
});

function numberIn(name: string, raw: string | undefined, lo: number, hi: number): number {
  const n = Number(raw);
  if (!Number.isFinite(n) || n < lo || n > hi) throw new Error(`Expected a number from ${lo} to ${hi} for --${name} but received ${String(raw)}`);
  return n;
}

/**
 * One connection's response parser: a head up to CRLFCRLF (status and
 * Content-Length read from it), then a body that is only counted.
 */
class Exchange {
  private head: Buffer | null = null;
  private bodyLeft = -1;
  private status = 0;
  bodyBytes = 0;
  private done: ((status: number) => void) | null = null;
  private failed: ((err: Error) => void) | null = null;
  broken = false;

  constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => this.take(chunk));
    const fail = (): void => {
      this.broken = true;
      this.failed?.(new Error('connection closed'));
      this.done = this.failed = null;
    };
    socket.on('close', fail);
    socket.on('error', fail);
  }

  /** Sends `request` and resolves with the response's status once its whole body has arrived. */
  send(request: Buffer): Promise<number> {
    return new Promise((resolve, reject) => {
      this.done = resolve;
      this.failed = reject;
      this.head = null;
      this.bodyLeft = -1;
      this.socket.write(request);
    });
  }

  private take(chunk: Buffer): void {
    let rest = chunk;
    if (this.bodyLeft < 0) {
      const joined = this.head === null ? rest : Buffer.concat([this.head, rest]);
      const end = joined.indexOf(HEAD_END);
      if (end < 0) {
        this.head = joined;
        return;
      }
      const text = joined.toString('latin1', 0, end);
      this.status = Number(text.slice(9, 12));
      const length = /\r\ncontent-length:[ \t]*(\d+)/i.exec(text);
      // Without a length the answer cannot be delimited here: counted as an error, connection dropped.
      if (length === null) {
        this.socket.destroy();
        return;
      }
      this.bodyLeft = Number(length[1]);
      rest = joined.subarray(end + 4);
    }
    const used = Math.min(rest.length, this.bodyLeft);
    this.bodyLeft -= used;
    this.bodyBytes += used;
    if (this.bodyLeft === 0) {
      const done = this.done;
      this.done = this.failed = null;
      this.bodyLeft = -1;
      this.head = null;
      done?.(this.status);
    }
  }
}

function open(host: string, port: number): Promise<Exchange> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port, noDelay: true });
    socket.once('connect', () => {
      socket.off('error', reject);
      resolve(new Exchange(socket));
    });
    socket.once('error', reject);
  });
}

async function run(): Promise<object> {
  const target = values.target ?? '';
  const colon = target.lastIndexOf(':');
  const address = target.slice(0, colon);
  const port = numberIn('target port', target.slice(colon + 1), 1, 65535);
  const connections = numberIn('connections', values.connections, 1, LIMITS.connections);
  const seconds = numberIn('seconds', values.seconds, 0.1, LIMITS.seconds);
  const rate = values.rate === undefined ? null : numberIn('rate', values.rate, 1, 1_000_000);
  const requestFor = (path: string, agent: string, id: string): Buffer =>
    Buffer.from(`GET ${path} HTTP/1.1\r\nHost: ${values.host ?? address}\r\nUser-Agent: gatehouse-bench${agent}\r\nAccept: */*\r\n${id}\r\n`, 'latin1');
  const same = requestFor(values.path, '', '');
  let sent = 0;
  const nextRequest = (): Buffer => {
    if (!values.distinct && !values['request-ids'] && !values['user-agents']) return same;
    const n = sent++;
    return requestFor(values.distinct ? `${values.path}?n=${n}` : values.path, values['user-agents'] ? `-${n}` : '', values['request-ids'] ? `X-Request-Id: ${n}\r\n` : '');
  };
  const latencies: number[] = [];
  let requests = 0;
  let errors = 0;
  let bodyBytes = 0;
  const started = performance.now();
  const stopAt = started + seconds * 1000;
  const gap = rate === null ? 0 : (connections * 1000) / rate;

  const worker = async (index: number): Promise<void> => {
    let ex: Exchange | null = null;
    let due = started + (gap * index) / connections;
    while (performance.now() < stopAt) {
      if (gap > 0) {
        const wait = due - performance.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        due += gap;
        if (performance.now() >= stopAt) break;
      }
      try {
        if (ex === null || ex.broken) {
          ex?.socket.destroy();
          ex = await open(address, port);
        }
        const before = ex.bodyBytes;
        const t0 = performance.now();
        const status = await ex.send(nextRequest());
        requests++;
        if (latencies.length < LIMITS.samples) latencies.push(performance.now() - t0);
        bodyBytes += ex.bodyBytes - before;
        if (status !== 200) errors++;
      } catch {
        errors++;
        ex?.socket.destroy();
        ex = null;
        await new Promise((r) => setTimeout(r, 1)); // a refused connection must not spin
      }
    }
    ex?.socket.destroy();
  };
  await Promise.all(Array.from({ length: connections }, (_, i) => worker(i)));
  const elapsed = (performance.now() - started) / 1000;
  const sorted = Float64Array.from(latencies).sort();
  const pct = (p: number): number | null => (sorted.length === 0 ? null : Number(sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))].toFixed(3)));
  return {
    connections,
    target_rate: rate,
    seconds: Number(elapsed.toFixed(3)),
    requests,
    errors,
    rps: Math.round(requests / elapsed),
    mb_per_s: Number((bodyBytes / 1e6 / elapsed).toFixed(1)),
    p50_ms: pct(0.5),
    p99_ms: pct(0.99),
  };
}

const hardStop = setTimeout(() => {
  console.error('reverse-load: deadline passed, exiting');
  process.exit(3);
}, numberIn('seconds', values.seconds, 0.1, LIMITS.seconds) * 2000 + 5000);
hardStop.unref();
run().then(
  (result) => {
    console.log(JSON.stringify(result));
    process.exit(0);
  },
  (err: unknown) => {
    console.error(`reverse-load: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(2);
  },
);
