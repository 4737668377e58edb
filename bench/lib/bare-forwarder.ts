/**
 * The floor for bench/proxy.sh --floors: the least a Node.js forward proxy
 * can do per request. `net` sockets, no HTTP library, no policy, no SSRF
 * check, no log; one upstream connection per client connection. It only
 * understands what the benchmark sends (absolute-form GETs, answers with a
 * Content-Length), so it measures Node's socket layer and nothing else.
 * Not a proxy to use.
 *
 *   node dist/bench/lib/bare-forwarder.js PORT
 */
import { connect, createServer, type Socket } from 'node:net';

const port = Number(process.argv[2]);
if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`Expected a port for the bare forwarder but received ${String(process.argv[2])}`);

const TARGET = /^http:\/\/[^/:]+:(\d+)(\/\S*)$/;
const LENGTH = /\r\ncontent-length: *(\d+)/i;

createServer({ noDelay: true }, (client) => {
  let upstream: Socket | null = null;
  let pending: Buffer | null = null;
  let remaining = -1;
  let answer: Buffer | null = null;
  client.on('error', () => upstream?.destroy());
  client.on('close', () => upstream?.destroy());
  client.on('data', (chunk: Buffer) => {
    pending = pending === null ? chunk : Buffer.concat([pending, chunk]);
    const end = pending.indexOf('\r\n\r\n');
    if (end < 0) return;
    const head = pending.toString('latin1', 0, end);
    pending = null;
    const lineEnd = head.indexOf('\r\n');
    const [method, url] = head.slice(0, lineEnd).split(' ');
    const m = TARGET.exec(url);
    if (m === null) {
      client.destroy();
      return;
    }
    if (upstream === null) {
      upstream = connect({ host: '127.0.0.1', port: Number(m[1]), noDelay: true });
      upstream.on('error', () => client.destroy());
      upstream.on('data', (data: Buffer) => {
        if (remaining < 0) {
          answer = answer === null ? data : Buffer.concat([answer, data]);
          const headEnd = answer.indexOf('\r\n\r\n');
          if (headEnd < 0) return;
          const length = LENGTH.exec(answer.toString('latin1', 0, headEnd));
          remaining = Number(length?.[1] ?? 0) - (answer.length - headEnd - 4);
          client.write(answer);
          answer = null;
        } else {
          remaining -= data.length;
          client.write(data);
        }
        if (remaining <= 0) remaining = -1;
      });
    }
    upstream.write(`${method} ${m[2]} HTTP/1.1${head.slice(lineEnd)}\r\n\r\n`, 'latin1');
  });
}).listen(port, '127.0.0.1');
