/**
 * One client request relayed to an upstream over a pooled keep-alive
 * connection, and its answer relayed back to the client's ServerResponse,
 * for both proxies. What is the same for both lives here: the request body
 * streamed with back-pressure (nothing buffered beyond a chunk), the answer
 * the same way (one 'drain' listener at a time), the single retry of a
 * bodiless idempotent request whose kept-alive connection the upstream had
 * closed, and the connection given up when the client leaves before its
 * exchange, or its upload, is over (a half-sent body cannot be finished by
 * anyone else). What the answer's head becomes and how a failure is told
 * are the subclass's (`answer`, `failed`).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { BodyFraming, ResponseHead } from './response-head';
import type { ExchangeHandler, RequestBodyFraming, UpstreamConnection, UpstreamPool } from './upstream-pool';

/** Methods a request may be sent again for (RFC 9110 9.2.2). */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

/** A method a request may be sent again for (RFC 9110 9.2.2), when its pooled connection had been closed under us. */
export function isIdempotent(method: string): boolean {
  return IDEMPOTENT.has(method);
}
/** What a kept-alive connection the upstream closed meanwhile fails with; a timeout is not that (the upstream may be at work). */
const CLOSED_UNDER_US = new Set(['ECONNRESET', 'EPIPE']);

export abstract class UpstreamRelay<Target> implements ExchangeHandler {
  /** The connection whose answer is being relayed; null once it ended or failed. */
  private conn: UpstreamConnection | null = null;
  /** The connection the request body goes to (it may outlive the answer: an upstream can answer early). */
  private bodyConn: UpstreamConnection | null = null;
  private answered = false;
  private waitingDrain = false;
  private readonly resumeAnswer = (): void => {
    this.waitingDrain = false;
    this.conn?.resume();
  };
  private readonly resumeClient = (): void => {
    this.req.resume();
  };

  constructor(
    private readonly pool: UpstreamPool<Target>,
    private readonly target: Target,
    protected readonly req: IncomingMessage,
    protected readonly res: ServerResponse,
    private readonly method: string,
    private readonly head: string,
    private readonly body: RequestBodyFraming,
    /** The upstream's inactivity limit for this exchange (default: the pool's). */
    private readonly timeoutMs?: number,
  ) {}

  /** Sends the request; false when no connection could even be started (`failed` has been called). */
  start(): boolean {
    if (!this.send(false)) return false;
    this.res.once('close', this.onClientGone);
    if (this.body === 'none') return true;
    this.req.on('data', this.onClientData);
    this.req.once('end', this.onClientEnd);
    this.req.once('error', this.onClientGone);
    return true;
  }

  /** Writes the answer's head to the client (and whatever the subclass records); may abort the exchange. */
  protected abstract answer(head: ResponseHead, framing: BodyFraming): void;

  /** The exchange failed; `headersSent`: an answer had begun, so the client's response can only be cut short. */
  protected abstract failed(err: NodeJS.ErrnoException, headersSent: boolean): void;

  /** A connection is used for the request: `connectMs` 0 for a kept-alive one, else when the new one is up. */
  protected connected(_connectMs: number): void {}

  /** Gives the exchange up: its connection is closed. */
  protected abort(): void {
    this.conn = null;
    this.bodyConn?.abort();
  }

  onConnected(connectMs: number): void {
    this.connected(connectMs);
  }

  onResponse(head: ResponseHead, framing: BodyFraming): void {
    this.answer(head, framing);
  }

  onData(data: Buffer): void {
    if (!this.res.write(data) && !this.waitingDrain) {
      this.waitingDrain = true;
      this.conn?.pause();
      this.res.once('drain', this.resumeAnswer);
    }
  }

  onEnd(): void {
    this.answered = true;
    // The connection goes back to the pool: a late 'drain' of this response must not resume it.
    this.conn = null;
    this.res.end();
  }

  onError(err: NodeJS.ErrnoException, beforeResponse: boolean): void {
    const conn = this.conn;
    this.conn = null;
    const stale = conn !== null && beforeResponse && conn.uses > 0 && CLOSED_UNDER_US.has(err.code ?? '');
    if (stale && this.body === 'none' && isIdempotent(this.method) && !this.res.destroyed) {
      // The kept-alive connection was closed by the upstream as we reused it: once more on a new one.
      this.send(true);
      return;
    }
    this.failed(err, this.res.headersSent);
  }

  private send(fresh: boolean): boolean {
    let conn: UpstreamConnection;
    try {
      conn = this.pool.acquire(this.target, fresh);
    } catch (err) {
      this.failed(err as NodeJS.ErrnoException, false);
      return false;
    }
    this.conn = conn;
    this.bodyConn = conn;
    if (conn.uses > 0) this.connected(0);
    conn.exchange(this, this.method, this.head, this.body, this.timeoutMs);
    return true;
  }

  private readonly onClientData = (data: Buffer): void => {
    const conn = this.bodyConn;
    if (conn === null || conn.socket.destroyed) return;
    if (!conn.writeBody(data)) {
      this.req.pause();
      conn.onceDrain(this.resumeClient);
    }
  };

  private readonly onClientEnd = (): void => {
    this.bodyConn?.endBody();
  };

  /** The client's response closed (done or not), or its request failed. */
  private readonly onClientGone = (): void => {
    if (this.answered && this.req.complete) return; // all done: the connection is the pool's now
    this.abort();
  };
}
