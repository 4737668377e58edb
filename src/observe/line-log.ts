/**
 * An append-only log of text lines, to a file or to stdout: what the EVE
 * log, the proxy's access log and its decision log are written through.
 *
 * Logging must never stop the data path: write() never throws and never
 * waits. When the disk or the pipe falls behind by more than
 * `maxBufferedBytes`, new lines are dropped and counted rather than queued
 * without bound. reopen() is for logrotate (postrotate: SIGHUP -> reopen):
 * lines written before it go to the file under its old name, lines written
 * after it to a new file at the configured path, and none are lost between.
 *
 * Lines are gathered for up to `flushMs` and handed to the stream as one
 * string, in one write: a file write runs on libuv's thread pool, and a
 * stream write per line (even corked) cost the proxy more CPU than the
 * relay's whole work for the request the line describes. close() and
 * reopen() flush.
 */
import { open } from 'node:fs/promises';
import type { Writable } from 'node:stream';
import { GatehouseError } from '../errors';

export interface LineLogOptions {
  /** Drop lines while more than this many bytes wait to be written (default 8 MiB). */
  maxBufferedBytes?: number;
  /** What the log is called in error messages ("EVE log", "access log"); default "log". */
  label?: string;
  /** Gather lines this long before writing them (default 50 ms; 0 writes each line at once). */
  flushMs?: number;
}

/**
 * Every write() ends up in exactly one of `written` (the OS took the line)
 * or `dropped` (backlog over the bound, log closed, or the write failed).
 * `errors` counts stream failures.
 */
export interface LineLogStats {
  written: number;
  dropped: number;
  errors: number;
}

export const LINE_LOG_STDOUT = '-';
export const LINE_LOG_FILE_MODE = 0o640;
const DEFAULT_MAX_BUFFERED_BYTES = 8 * 1024 * 1024;
const DEFAULT_FLUSH_MS = 50;

export class LineLog {
  readonly target: string;
  private stream: Writable;
  private readonly ownsStream: boolean;
  private readonly maxBufferedBytes: number;
  private readonly label: string;
  private readonly flushMs: number;
  /** Set while the stream is corked, gathering lines; it uncorks when it fires. */
  private flushTimer: NodeJS.Timeout | null = null;
  private readonly counts: LineLogStats = { written: 0, dropped: 0, errors: 0 };
  private readonly onError = (): void => {
    this.counts.errors++;
  };
  /** Lines handed to a stream whose callback has not run yet (close() waits for them on stdout). */
  private inFlight = 0;
  /** Lines gathered for the next write, and their length (the bound counts them with the stream's backlog). */
  private pending: string[] = [];
  private pendingLength = 0;
  private idleWaiters: (() => void)[] = [];
  private reopening: Promise<void> | null = null;
  private closing: Promise<void> | null = null;

  private constructor(target: string, stream: Writable, ownsStream: boolean, maxBufferedBytes: number, label: string, flushMs: number) {
    this.target = target;
    this.flushMs = flushMs;
    this.stream = stream;
    this.ownsStream = ownsStream;
    this.maxBufferedBytes = maxBufferedBytes;
    this.label = label;
    stream.on('error', this.onError);
  }

  /** Opens `target`: a file path (appended to, created with mode 0640) or '-' for stdout. */
  static async open(target: string, opts: LineLogOptions = {}): Promise<LineLog> {
    const label = opts.label ?? 'log';
    if (typeof target !== 'string' || target === '') {
      throw new GatehouseError('ERR_INVALID_ARG', `Expected a file path or '-' for the ${label} target but received ${JSON.stringify(target)}`);
    }
    const max = opts.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED_BYTES;
    if (!Number.isSafeInteger(max) || max < 1) {
      throw new GatehouseError('ERR_INVALID_ARG', `Expected a positive integer for maxBufferedBytes but received ${String(max)}`);
    }
    const flushMs = opts.flushMs ?? DEFAULT_FLUSH_MS;
    if (!Number.isSafeInteger(flushMs) || flushMs < 0) {
      throw new GatehouseError('ERR_INVALID_ARG', `Expected an integer >= 0 for flushMs but received ${String(flushMs)}`);
    }
    if (target === LINE_LOG_STDOUT) return new LineLog(target, process.stdout, false, max, label, flushMs);
    return new LineLog(target, await openAppend(target, label), true, max, label, flushMs);
  }

  /**
   * Appends `line` and a newline. `line` must not contain a newline itself
   * (formatters escape theirs). Never throws; see stats() for what happened.
   */
  write(line: string): void {
    if (this.closing !== null) {
      this.counts.dropped++;
      return;
    }
    const stream = this.stream;
    const text = `${line}\n`;
    // One line always goes to an idle stream, however long, so a small bound cannot block everything.
    const backlog = stream.writableLength + this.pendingLength;
    if (stream.destroyed || !stream.writable || (backlog > 0 && backlog + text.length > this.maxBufferedBytes)) {
      this.counts.dropped++;
      return;
    }
    this.pending.push(text);
    this.pendingLength += text.length;
    if (this.flushMs === 0) {
      this.writePending();
    } else if (this.flushTimer === null) {
      this.flushTimer = setTimeout(() => this.flush(), this.flushMs);
      // Pending lines never keep the process alive; close() flushes them.
      this.flushTimer.unref();
    }
  }

  /** Hands the gathered lines to the stream in one write. */
  private writePending(): void {
    const lines = this.pending.length;
    if (lines === 0) return;
    const text = lines === 1 ? this.pending[0] : this.pending.join('');
    this.pending = [];
    this.pendingLength = 0;
    this.inFlight += lines;
    try {
      this.stream.write(text, (err) => this.settled(err, lines));
    } catch {
      this.settled(new Error('write threw'), lines);
      this.counts.errors++;
    }
  }

  stats(): LineLogStats {
    return { ...this.counts };
  }

  /** Hands the gathered lines to the OS now. */
  flush(): void {
    if (this.flushTimer !== null) {
      clearTimeout(this.flushTimer);
      this.flushTimer = null;
    }
    this.writePending();
  }

  /**
   * Closes the file and opens the same path again (append, 0640), for log
   * rotation. Lines written while this runs still go to the old file.
   * No-op for stdout. Rejects (and keeps writing to the old file) if the
   * path cannot be opened.
   */
  reopen(): Promise<void> {
    if (!this.ownsStream || this.closing !== null) return Promise.resolve();
    if (this.reopening === null) {
      this.reopening = this.swapStream().finally(() => {
        this.reopening = null;
      });
    }
    return this.reopening;
  }

  /** Flushes what was written and closes the file (stdout is flushed, not closed). Idempotent. */
  close(): Promise<void> {
    if (this.closing === null) this.closing = this.shutDown();
    return this.closing;
  }

  private async swapStream(): Promise<void> {
    let next: Writable;
    try {
      next = await openAppend(this.target, this.label);
    } catch (err) {
      this.counts.errors++;
      throw err;
    }
    this.flush();
    const old = this.stream;
    next.on('error', this.onError);
    this.stream = next;
    await endStream(old);
    old.off('error', this.onError);
  }

  private async shutDown(): Promise<void> {
    if (this.reopening !== null) await this.reopening.catch(() => undefined);
    this.flush();
    if (this.ownsStream) {
      await endStream(this.stream);
    } else {
      await new Promise<void>((resolve) => {
        if (this.inFlight === 0) resolve();
        else this.idleWaiters.push(resolve);
      });
    }
    this.stream.off('error', this.onError);
  }

  private settled(err: Error | null | undefined, lines: number): void {
    this.inFlight -= lines;
    if (err) this.counts.dropped += lines;
    else this.counts.written += lines;
    if (this.inFlight === 0 && this.idleWaiters.length > 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
    }
  }
}

async function openAppend(path: string, label: string): Promise<Writable> {
  try {
    const handle = await open(path, 'a', LINE_LOG_FILE_MODE);
    return handle.createWriteStream();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new GatehouseError('ERR_INVALID_ARG', `Expected a writable file path for the ${label} but received ${JSON.stringify(path)} (${code})`, {
      cause: err,
    });
  }
}

/** Ends a stream and resolves once its data is flushed and its file closed (or it failed). */
function endStream(stream: Writable): Promise<void> {
  return new Promise((resolve) => {
    if (stream.destroyed) return resolve();
    stream.once('close', () => resolve());
    stream.end();
  });
}
