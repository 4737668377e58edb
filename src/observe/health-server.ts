/**
 * The health and metrics HTTP server (gwlbtun's `-p PORT`, `-j`, `-s`).
 *
 * Any path answers the composed health, as gwlbtun does, because GWLB target
 * groups are often configured with a path we do not choose: 200 when every
 * check is healthy, 503 otherwise. `GET /metrics` answers the Prometheus
 * registry. The server is exposed to whatever can reach the port, so every
 * request is bounded (head 8 KiB, body 64 KiB, header and request timeouts,
 * a connection cap) and no handler can throw: a failing check is a 503.
 */
import http from 'node:http';
import type { Socket } from 'node:net';
import type { Registry } from 'prom-client';
import { GatehouseError } from '../errors';
import { expected } from '../validate';
import { composeHealth, errorMessage, type HealthCheck, type OverallHealth } from './health';
import { HEALTH_FORMATS, renderHealth, type HealthFormat } from './health-render';
import type { Logger } from './log';

/** Request heads (request line + headers) larger than this get 431. */
export const MAX_HEAD_BYTES = 8 * 1024;
/** Request bodies larger than this get 413. Probes send none. */
export const MAX_BODY_BYTES = 64 * 1024;

export interface HealthServerTimeouts {
  /** Time allowed to receive the request head (default 5000 ms); then 408 and close. */
  headersMs?: number;
  /** Time allowed to receive the whole request (default 10000 ms, >= headersMs). */
  requestMs?: number;
  /** Idle time a kept-alive connection may wait for its next request (default 5000 ms). */
  keepAliveMs?: number;
}

/** The logger sections this server writes to. */
export type HealthServerLog = Pick<Logger<'healthcheck'>, 'warning' | 'important' | 'info' | 'debug'>;

export interface HealthServerOptions {
  /** TCP port; 0 picks a free one (see HealthServer.port). */
  port: number;
  /** Address to listen on; default: every address (IPv6 and IPv4), as gwlbtun does. */
  host?: string;
  format: HealthFormat;
  /** Read on every probe (an array the caller later appends to is seen). Names must be unique. */
  checks: readonly HealthCheck[];
  /** Served on GET /metrics; without it /metrics is a health path like any other. */
  registry?: Registry;
  log: HealthServerLog;
  timeouts?: HealthServerTimeouts;
  /** Connections beyond this are refused at once (default 256). */
  maxConnections?: number;
  /** Injectable for tests (the time printed in text and JSON bodies). */
  clock?: () => Date;
}

export interface HealthServer {
  /** The bound port. */
  readonly port: number;
  /** Stops listening and closes every connection. Idempotent. */
  close(): Promise<void>;
}

/** How long a socket answered with 400/408/431 may linger before it is destroyed. */
const LINGER_MS = 1_000;

const DEFAULTS = { headersMs: 5_000, requestMs: 10_000, keepAliveMs: 5_000, maxConnections: 256 };

export async function startHealthServer(options: HealthServerOptions): Promise<HealthServer> {
  const settings = validate(options);
  const { log, format, registry } = options;
  const clock = options.clock ?? (() => new Date());
  let lastHealthy: boolean | undefined;
  /** Sockets answered after a client error, closing; HTTP no longer tracks them. */
  const lingering = new Set<Socket>();

  const server = http.createServer({
    maxHeaderSize: MAX_HEAD_BYTES,
    headersTimeout: settings.headersMs,
    requestTimeout: settings.requestMs,
    keepAliveTimeout: settings.keepAliveMs,
    // Node checks header/request deadlines on this period (default 30 s); keep it well under them.
    connectionsCheckingInterval: Math.max(25, Math.min(1_000, Math.floor(settings.headersMs / 4))),
  });
  server.maxConnections = settings.maxConnections;
  // Backstop for sockets no parser deadline covers (e.g. a body trickled in after the head).
  server.setTimeout(settings.requestMs + settings.keepAliveMs, (socket: Socket) => socket.destroy());

  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    const code = err.code ?? '';
    log.debug('healthcheck', 'client error', { code });
    if (!socket.writable || code === 'ECONNRESET') {
      socket.destroy();
      return;
    }
    const status = code === 'HPE_HEADER_OVERFLOW' ? 431 : code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
    socket.end(plainResponse(status));
    // Discard what the client still sends for a moment, so it reads our answer
    // instead of a reset caused by bytes we never read; then close for good.
    socket.resume();
    lingering.add(socket);
    const timer = setTimeout(() => socket.destroy(), LINGER_MS);
    timer.unref();
    socket.once('close', () => {
      clearTimeout(timer);
      lingering.delete(socket);
    });
  });

  const answerHealth = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    let health: OverallHealth;
    try {
      health = composeHealth(options.checks);
    } catch (err) {
      health = { healthy: false, reasons: [`health composition failed: ${errorMessage(err)}`], components: [] };
    }
    if (health.healthy !== lastHealthy) {
      // One line per change of verdict, not per probe: GWLB probes every few seconds.
      log.important('healthcheck', health.healthy ? 'healthy' : 'unhealthy', { reasons: health.reasons.join('; ') });
      lastHealthy = health.healthy;
    }
    let rendered;
    try {
      rendered = renderHealth(health, format, clock());
    } catch (err) {
      // Only a check handing back something JSON cannot hold gets here.
      const reason = `health report could not be rendered: ${errorMessage(err)}`;
      rendered = { status: 503 as const, contentType: 'text/plain; charset=utf-8', body: `503 Service Unavailable: ${reason}\n` };
    }
    log.debug('healthcheck', 'probe', { method: req.method, url: req.url, status: rendered.status });
    send(res, rendered.status, rendered.contentType, rendered.body);
  };

  const answerMetrics = (res: http.ServerResponse, metrics: Registry): void => {
    metrics.metrics().then(
      (body) => send(res, 200, metrics.contentType, body),
      (err: unknown) => {
        log.warning('healthcheck', 'metrics collection failed', { error: errorMessage(err) });
        send(res, 500, 'text/plain; charset=utf-8', '500 Internal Server Error: metrics collection failed\n');
      },
    );
  };

  server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    try {
      readBounded(req, res, () => {
        try {
          if (req.method !== 'GET' && req.method !== 'HEAD') {
            res.setHeader('Allow', 'GET, HEAD');
            send(res, 405, 'text/plain; charset=utf-8', '405 Method Not Allowed\n');
          } else if (registry !== undefined && pathOf(req.url) === '/metrics') {
            answerMetrics(res, registry);
          } else {
            answerHealth(req, res);
          }
        } catch (err) {
          fail(res, err);
        }
      });
    } catch (err) {
      fail(res, err);
    }
  });

  const fail = (res: http.ServerResponse, err: unknown): void => {
    log.warning('healthcheck', 'request failed', { error: errorMessage(err) });
    send(res, 503, 'text/plain; charset=utf-8', `503 Service Unavailable: ${errorMessage(err)}\n`);
  };

  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      reject(
        new GatehouseError(
          'ERR_LISTEN',
          `Expected a free port for the health server but received ${options.host ?? '*'}:${options.port} (${err.code ?? err.message})`,
          { cause: err },
        ),
      );
    };
    server.once('error', onError);
    server.listen({ port: options.port, host: options.host }, () => {
      server.off('error', onError);
      resolve();
    });
  });
  // After start, a server error (rare: e.g. EMFILE on accept) is logged, never thrown.
  server.on('error', (err: Error) => log.warning('healthcheck', 'server error', { error: errorMessage(err) }));

  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : options.port;
  log.info('healthcheck', 'listening', { host: options.host ?? '*', port, format });

  let closing: Promise<void> | undefined;
  return {
    port,
    close(): Promise<void> {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Probes are tiny; at shutdown we do not wait for the ones in flight.
        server.closeAllConnections();
        for (const socket of lingering) socket.destroy();
      });
      return closing;
    },
  };
}

/**
 * Reads the request to its end (so keep-alive connections stay in step),
 * answering 413 and closing when the body exceeds MAX_BODY_BYTES.
 */
function readBounded(req: http.IncomingMessage, res: http.ServerResponse, onEnd: () => void): void {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > MAX_BODY_BYTES) {
    tooLarge(req, res);
    return;
  }
  let received = 0;
  req.on('data', (chunk: Buffer) => {
    received += chunk.length;
    if (received > MAX_BODY_BYTES && !res.headersSent) tooLarge(req, res);
  });
  req.on('end', () => {
    if (!res.headersSent) onEnd();
  });
  req.on('error', () => req.socket.destroy());
}

function tooLarge(req: http.IncomingMessage, res: http.ServerResponse): void {
  // The rest of the body is never read: close the connection after answering.
  res.setHeader('Connection', 'close');
  send(res, 413, 'text/plain; charset=utf-8', '413 Content Too Large\n');
  res.on('finish', () => req.socket.destroy());
}

function send(res: http.ServerResponse, status: number, contentType: string, body: string): void {
  if (res.headersSent || res.destroyed) return;
  const bytes = Buffer.from(body, 'utf8');
  res.writeHead(status, {
    'Content-Type': contentType,
    'Content-Length': bytes.length,
    'Cache-Control': 'no-store',
  });
  res.end(bytes); // Node sends no body for HEAD, but keeps the GET length.
}

function plainResponse(status: number): string {
  const body = `${status} ${http.STATUS_CODES[status] ?? ''}\n`;
  return (
    `HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? ''}\r\n` +
    `Content-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
    `Connection: close\r\n\r\n${body}`
  );
}

/** The path of origin-form ("/metrics?x") and absolute-form ("http://h/metrics") request targets. */
function pathOf(url: string | undefined): string {
  let target = url ?? '/';
  const scheme = /^https?:\/\/[^/]*/i.exec(target);
  if (scheme !== null) target = target.slice(scheme[0].length) || '/';
  const q = target.search(/[?#]/);
  return q < 0 ? target : target.slice(0, q);
}

function validate(options: HealthServerOptions): Required<HealthServerTimeouts> & { maxConnections: number } {
  if (!Number.isInteger(options.port) || options.port < 0 || options.port > 65535) {
    expected('an integer port between 0 and 65535', 'port', JSON.stringify(options.port));
  }
  if (!HEALTH_FORMATS.includes(options.format)) {
    expected(`one of ${HEALTH_FORMATS.join(', ')}`, 'format', JSON.stringify(options.format));
  }
  const names = new Set<string>();
  for (const c of options.checks) {
    if (typeof c.name !== 'string' || c.name === '' || names.has(c.name)) {
      expected('a unique non-empty name', 'checks[].name', JSON.stringify(c.name));
    }
    names.add(c.name);
  }
  const t = { ...DEFAULTS, ...options.timeouts, maxConnections: options.maxConnections ?? DEFAULTS.maxConnections };
  for (const key of ['headersMs', 'requestMs', 'keepAliveMs', 'maxConnections'] as const) {
    if (!Number.isInteger(t[key]) || t[key] < 1) expected('a positive integer', key, JSON.stringify(t[key]));
  }
  if (t.requestMs < t.headersMs) expected(`at least headersMs (${t.headersMs})`, 'requestMs', JSON.stringify(t.requestMs));
  return t;
}
