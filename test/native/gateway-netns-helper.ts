/**
 * Programs gateway.test.ts runs inside its namespaces (`ip netns exec NS
 * node gateway-netns-helper.js <role> ...`). Each prints JSON lines on
 * stdout; long-running roles print {"type":"ready"} once listening and stop
 * on SIGTERM or on "stop" on stdin.
 *
 *   gateway <options JSON>       startGateway; stdin "counters" prints them;
 *                                events are printed as they arrive; on stop
 *                                prints {"type":"final", counters}.
 *   mirror <addr> <port>
 *                                a stand-in appliance: every datagram is sent
 *                                back unchanged to peer:peerPort.
 *   tcp-echo <addr> <port>       echoes what each connection sends.
 *   tcp-client <addr> <port> <text>
 *                                sends text, prints {"type":"reply", reply, localPort}.
 *   send-udp <from> <to> <port> <hex>...
 *                                sends each hex datagram from `from`, then exits.
 *
 * node --test also runs every file under dist/test/: without a role this
 * does nothing.
 */
import { createSocket } from 'node:dgram';
import { startReflector } from '../../src/native/reflector';
import { createConnection, createServer } from 'node:net';
import { createInterface } from 'node:readline';
import { startGateway } from '../../src/native/gateway';
import type { GatewayFlowEvent } from '../../src/native/binding';

/** Options as the test passes them: bigints as decimal strings. */
export interface GatewayHelperOptions {
  tunName: string;
  bind: string;
  target: string;
  port: number;
  eni: string;
  attachment: string;
  sourcePortLow: number;
  sourcePortHigh: number;
  flowIdleMs: number;
}

export type HelperMessage =
  | { type: 'ready' }
  | { type: 'events'; events: GatewayFlowEvent[] }
  | { type: 'counters'; counters: Record<string, number> }
  | { type: 'final'; counters: Record<string, number> }
  | { type: 'reply'; reply: string; localPort: number }
  | { type: 'error'; message: string };

function emit(m: HelperMessage): void {
  process.stdout.write(`${JSON.stringify(m)}\n`);
}

/**
 * Calls `stop` once, on SIGTERM/SIGINT or a "stop" line on stdin; other
 * lines go to `onLine`. Afterwards nothing of ours holds the event loop, so
 * the process exits by itself only if `stop` released everything it had
 * (the test checks that it does).
 */
function onStop(stop: () => void | Promise<void>, onLine: (line: string) => void = () => {}): void {
  const rl = createInterface({ input: process.stdin });
  let stopping = false;
  const once = (): void => {
    if (stopping) return;
    stopping = true;
    process.removeListener('SIGTERM', once);
    process.removeListener('SIGINT', once);
    rl.close();
    process.stdin.destroy();
    Promise.resolve(stop()).catch((err: unknown) => {
      emit({ type: 'error', message: (err as Error).message });
      process.exitCode = 1;
    });
  };
  process.on('SIGTERM', once);
  process.on('SIGINT', once);
  rl.on('line', (line) => (line.trim() === 'stop' ? once() : onLine(line.trim())));
}

function runGateway(json: string): void {
  const o = JSON.parse(json) as GatewayHelperOptions;
  const gateway = startGateway({
    ...o,
    eni: BigInt(o.eni),
    attachment: BigInt(o.attachment),
    onFlowEvents: (events) => emit({ type: 'events', events }),
  });
  onStop(
    async () => {
      await gateway.stop();
      emit({ type: 'final', counters: gateway.readCounters() });
    },
    (line) => {
      if (line === 'counters') emit({ type: 'counters', counters: gateway.readCounters() });
    },
  );
  emit({ type: 'ready' });
}

/** A GWLB target that returns every datagram as gwlbtun does (the native reflector: ports mirrored). */
function runMirror(addr: string, port: number): void {
  const reflector = startReflector({ bind: addr, port, threads: 1, rcvbuf: 0, sndbuf: 0, batch: 64, validate: false });
  emit({ type: 'ready' });
  onStop(async () => reflector.stop());
}

function runTcpEcho(addr: string, port: number): void {
  const server = createServer((conn) => conn.pipe(conn));
  server.listen(port, addr, () => emit({ type: 'ready' }));
  onStop(() => new Promise<void>((resolve) => server.close(() => resolve())));
}

function runTcpClient(addr: string, port: number, text: string): void {
  const conn = createConnection({ host: addr, port }, () => conn.write(text));
  let reply = '';
  const timer = setTimeout(() => {
    emit({ type: 'error', message: `no full echo within 10 s (got '${reply}')` });
    process.exit(1);
  }, 10_000);
  conn.on('data', (d) => {
    reply += d.toString();
    if (reply.length >= text.length) {
      emit({ type: 'reply', reply, localPort: conn.localPort ?? 0 });
      clearTimeout(timer);
      conn.end();
    }
  });
  conn.on('error', (err) => {
    emit({ type: 'error', message: err.message });
    process.exit(1);
  });
}

/** `from` is ADDR or ADDR:PORT (a reply must come from its flow's port to be accepted). */
function runSendUdp(from: string, to: string, port: number, hexes: string[]): void {
  const sock = createSocket('udp4');
  const [addr, localPort] = from.split(':');
  sock.bind(Number(localPort ?? 0), addr, () => {
    let left = hexes.length;
    for (const hex of hexes) {
      sock.send(Buffer.from(hex, 'hex'), port, to, (err) => {
        if (err) emit({ type: 'error', message: err.message });
        if (--left === 0) sock.close();
      });
    }
  });
}

function main(argv: string[]): void {
  const [role, ...args] = argv;
  switch (role) {
    case 'gateway':
      return runGateway(args[0]);
    case 'mirror':
      return runMirror(args[0], Number(args[1]));
    case 'tcp-echo':
      return runTcpEcho(args[0], Number(args[1]));
    case 'tcp-client':
      return runTcpClient(args[0], Number(args[1]), args[2]);
    case 'send-udp':
      return runSendUdp(args[0], args[1], Number(args[2]), args.slice(3));
    default:
      // Run without a role (as node --test does): nothing to do.
      return;
  }
}

if (require.main === module) main(process.argv.slice(2));
