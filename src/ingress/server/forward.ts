/**
 * The transport: one request to one upstream over a pooled keep-alive
 * connection, bodies streamed both ways with back-pressure (pipe: a slow
 * reader pauses the writer, nothing is buffered beyond the streams' own
 * high-water marks), any size, Content-Length or chunked. Everything above
 * it (routing, signing, logging) is decided before `forward` is called, so
 * another transport can replace this module behind the same signature.
 *
 * The route's timeout is an inactivity deadline on the upstream connection:
 * no byte for that long, before or during the response, ends the exchange
 * (504 when no response head was sent yet).
 */
import { request as httpRequest, type Agent, type ClientRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { performance } from 'node:perf_hooks';
import { clientResponseHeaders } from './upstream-headers';

export interface UpstreamCall {
  host: string;
  port: number;
  tls: boolean;
  agent: Agent;
  method: string;
  /** Path and query as sent upstream. */
  path: string;
  /** Raw header array, Host first. */
  headers: string[];
  timeoutMs: number;
  /** The client's request has no body (no Content-Length above 0, not chunked). */
  bodyless: boolean;
}

export type ForwardFailure = { kind: 'timeout'; reason: string } | { kind: 'connection'; reason: string } | { kind: 'bad-response'; reason: string };

/** What the transport reports back; one object per exchange, so no closures are made per request. */
export interface ForwardEvents {
  /** The upstream's response head arrived and was written to the client. */
  responded(status: number, upstreamMs: number): void;
  /** No response could be forwarded (nothing has been sent to the client yet when `headersSent` is false). */
  failed(failure: ForwardFailure, headersSent: boolean): void;
}

const TIMED_OUT = 'ERR_INGRESS_UPSTREAM_TIMEOUT';

/** Why a connection failed, as one line: the errno code and Node's message ("connect ECONNREFUSED 127.0.0.1:9"). */
function describe(err: Error): string {
  const code = (err as NodeJS.ErrnoException).code;
  return code !== undefined && !err.message.includes(code) ? `${code}: ${err.message}` : err.message;
}

class Exchange {
  private readonly started = performance.now();
  private upstreamRes: IncomingMessage | null = null;
  private done = false;

  constructor(
    private readonly call: UpstreamCall,
    private readonly req: IncomingMessage,
    private readonly res: ServerResponse,
    private readonly upstreamReq: ClientRequest,
    private readonly events: ForwardEvents,
  ) {}

  readonly onTimeout = (): void => {
    const err = Object.assign(new Error(`the upstream ${this.call.host}:${this.call.port} sent nothing for ${this.call.timeoutMs} ms`), { code: TIMED_OUT });
    this.upstreamReq.destroy(err);
  };

  readonly onError = (err: Error): void => {
    this.req.unpipe(this.upstreamReq);
    if (this.done) return;
    this.done = true;
    const timeout = (err as NodeJS.ErrnoException).code === TIMED_OUT;
    const failure: ForwardFailure = timeout ? { kind: 'timeout', reason: err.message } : { kind: 'connection', reason: `${this.call.host}:${this.call.port}: ${describe(err)}` };
    this.events.failed(failure, this.res.headersSent);
  };

  readonly onResponse = (upstreamRes: IncomingMessage): void => {
    this.upstreamRes = upstreamRes;
    const status = upstreamRes.statusCode ?? 502;
    try {
      this.res.writeHead(status, upstreamRes.statusMessage, clientResponseHeaders(upstreamRes.rawHeaders));
    } catch (err) {
      // A header Node will not write: refuse rather than forward a mangled response.
      this.done = true;
      this.upstreamReq.destroy();
      this.events.failed({ kind: 'bad-response', reason: `the upstream's response head cannot be forwarded (${(err as Error).message})` }, false);
      return;
    }
    this.events.responded(status, performance.now() - this.started);
    upstreamRes.pipe(this.res);
    // A body cut short upstream is cut short to the client too (never a silently truncated success).
    upstreamRes.once('error', this.onBodyError);
    upstreamRes.once('aborted', this.onBodyError);
  };

  readonly onBodyError = (): void => {
    this.res.destroy();
  };

  /** The client went away (or the response finished): release the upstream side. */
  readonly onClientClose = (): void => {
    // A complete response leaves its connection to the pool; anything else is abandoned.
    if (this.upstreamRes === null || !this.upstreamRes.complete) this.upstreamReq.destroy();
  };

  readonly onRequestError = (): void => {
    this.upstreamReq.destroy();
  };
}

/** Sends `call` upstream with the client's body, and the response (or a failure) back through `events`. */
export function forward(call: UpstreamCall, req: IncomingMessage, res: ServerResponse, events: ForwardEvents): void {
  const send = call.tls ? httpsRequest : httpRequest;
  const upstreamReq = send({
    host: call.host,
    port: call.port,
    method: call.method,
    path: call.path,
    headers: call.headers,
    agent: call.agent,
    // Host is in `headers`; Node's https agent takes SNI and the certificate name from `host`.
    setHost: false,
  });
  const x = new Exchange(call, req, res, upstreamReq, events);
  upstreamReq.setTimeout(call.timeoutMs, x.onTimeout);
  upstreamReq.once('error', x.onError);
  upstreamReq.once('response', x.onResponse);
  res.once('close', x.onClientClose);
  req.once('error', x.onRequestError);
  if (call.bodyless) {
    // Nothing to stream: the head goes out in one write, without a pipe's listeners.
    upstreamReq.end();
    req.resume();
    return;
  }
  // pipe, not pipeline: a failed upstream must not destroy the client's socket before the 502/504 is written.
  req.pipe(upstreamReq);
}
