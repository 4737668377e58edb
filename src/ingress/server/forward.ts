/**
 * The transport: one request to one upstream over a pooled keep-alive
 * connection (src/http1/upstream-pool.ts, dialled by upstream-dialer.ts), bodies streamed both ways with
 * back-pressure (a full socket pauses the side feeding it; nothing is
 * buffered beyond one chunk), any size, Content-Length or chunked. Everything
 * above it (routing, signing, logging) is decided before `forward` is
 * called, so another transport can replace this module behind the same
 * signature.
 *
 * The route's timeout is an inactivity deadline on the upstream connection:
 * no byte for that long, before or during the response, ends the exchange
 * (504 when no response head was sent yet). A kept-alive connection that
 * turns out to be closed when reused is replaced once for a bodiless
 * idempotent request.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import { serializeRequestHead, UpstreamRelay, type BodyFraming, type RequestBodyFraming, type ResponseHead, type UpstreamPool } from '../../http1';
import { UPSTREAM_CONNECT_TIMEOUT_MS, type UpstreamEndpoint } from './upstream-dialer';
import { clientResponseHeaders } from '../../proxy/server/headers';

export interface UpstreamCall extends UpstreamEndpoint {
  method: string;
  /** Path and query as sent upstream. */
  path: string;
  /** Raw header array, Host first. */
  headers: string[];
  timeoutMs: number;
  /** How the client's body goes upstream ('none': the request has no body). */
  bodyFraming: RequestBodyFraming;
}

export type ForwardFailure = { kind: 'timeout'; reason: string } | { kind: 'connection'; reason: string } | { kind: 'bad-request'; reason: string };

/** What the transport reports back; one object per exchange, so no closures are made per request. */
export interface ForwardEvents {
  /** The upstream's response head arrived and was written to the client. */
  responded(status: number, upstreamMs: number): void;
  /** No response could be forwarded (nothing has been sent to the client yet when `headersSent` is false). */
  failed(failure: ForwardFailure, headersSent: boolean): void;
}

const TIMED_OUT = 'ERR_UPSTREAM_TIMEOUT';

/** One call relayed upstream and back (src/http1/upstream-relay.ts), reported through ForwardEvents. */
class Exchange extends UpstreamRelay<UpstreamEndpoint> {
  private readonly started = performance.now();

  constructor(
    pool: UpstreamPool<UpstreamEndpoint>,
    private readonly call: UpstreamCall,
    head: string,
    req: IncomingMessage,
    res: ServerResponse,
    private readonly events: ForwardEvents,
  ) {
    super(pool, call, req, res, call.method, head, call.bodyFraming, call.timeoutMs);
  }

  protected answer(head: ResponseHead, framing: BodyFraming): void {
    try {
      // Node frames the body again for the client: the upstream's Content-Length stays only when it is the framing.
      this.res.writeHead(head.statusCode, head.statusMessage, clientResponseHeaders(head.rawHeaders, null, framing.kind === 'chunked' || framing.kind === 'close'));
    } catch (err) {
      // A header Node will not write: refuse rather than forward a mangled response.
      this.abort();
      this.events.failed({ kind: 'connection', reason: `the response head cannot be forwarded (${(err as Error).message})` }, false);
      return;
    }
    this.events.responded(head.statusCode, performance.now() - this.started);
  }

  protected failed(err: NodeJS.ErrnoException, headersSent: boolean): void {
    const where = `${this.call.host}:${this.call.port}`;
    let failure: ForwardFailure;
    if (err.code !== TIMED_OUT) failure = { kind: 'connection', reason: `${where}: ${err.code !== undefined && !err.message.includes(err.code) ? `${err.code}: ` : ''}${err.message}` };
    else if (err.message.startsWith('connect')) failure = { kind: 'timeout', reason: `no connection to the upstream ${where} within ${UPSTREAM_CONNECT_TIMEOUT_MS} ms` };
    else failure = { kind: 'timeout', reason: `the upstream ${where} sent nothing for ${this.call.timeoutMs} ms` };
    this.events.failed(failure, headersSent);
  }
}

/** Sends `call` upstream with the client's body, and the response (or a failure) back through `events`. */
export function forward(pool: UpstreamPool<UpstreamEndpoint>, call: UpstreamCall, req: IncomingMessage, res: ServerResponse, events: ForwardEvents): void {
  let head: string;
  try {
    head = serializeRequestHead(call.method, call.path, call.headers);
  } catch (err) {
    events.failed({ kind: 'bad-request', reason: (err as Error).message }, false);
    return;
  }
  // Bodies streamed with back-pressure both ways; never buffered whole.
  if (!new Exchange(pool, call, head, req, res, events).start()) return;
  if (call.bodyFraming === 'none') req.resume();
}
