/**
 * Appends EVE events, one JSON object per line, to a file or to stdout.
 *
 * Logging must never stop the packet path: write() never throws and never
 * waits. When the disk or the pipe falls behind by more than
 * `maxBufferedBytes`, new lines are dropped and counted rather than queued
 * without bound. reopen() is for logrotate (postrotate: SIGHUP -> reopen):
 * lines written before it go to the file under its old name, lines written
 * after it to a new file at the configured path, and none are lost between.
 */
import { open } from 'node:fs/promises';
import type { Writable } from 'node:stream';
import { GatehouseError } from '../../errors';
import { wrapAnf, type AnfWrapOptions } from './anf';
import type { EveEvent } from './types';

export interface EveWriterOptions {
  /** Wrap every event as AWS Network Firewall does. */
  wrap?: AnfWrapOptions;
  /** Drop lines while more than this many bytes wait to be written (default 8 MiB). */
  maxBufferedBytes?: number;
  /** For the wrapper's event_timestamp; injectable for tests. */
  clock?: () => Date;
}

/**
 * Every write() ends up in exactly one of `written` (the OS took the line)
 * or `dropped` (backlog over the bound, writer closed, or the write failed).
 * `errors` counts failures: stream errors and events JSON could not hold.
 */
export interface EveWriterStats {
  written: number;
  dropped: number;
  errors: number;
}

export const EVE_STDOUT = '-';
export const EVE_FILE_MODE = 0o640;
const DEFAULT_MAX_BUFFERED_BYTES = 8 * 1024 * 1024;

export class EveWriter {
  readonly target: string;
  private stream: Writable;
  private readonly ownsStream: boolean;
  private readonly wrap: AnfWrapOptions | undefined;
  private readonly maxBufferedBytes: number;
  private readonly clock: () => Date;
  private readonly counts: EveWriterStats = { written: 0, dropped: 0, errors: 0 };
  private readonly onError = (): void => {
    this.counts.errors++;
  };
  /** Lines handed to a stream whose callback has not run yet (close() waits for them on stdout). */
  private inFlight = 0;
  private idleWaiters: (() => void)[] = [];
  private reopening: Promise<void> | null = null;
  private closing: Promise<void> | null = null;

  private constructor(target: string, stream: Writable, ownsStream: boolean, opts: EveWriterOptions) {
    this.target = target;
    this.stream = stream;
    this.ownsStream = ownsStream;
    this.wrap = opts.wrap;
    this.maxBufferedBytes = opts.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED_BYTES;
    this.clock = opts.clock ?? (() => new Date());
    stream.on('error', this.onError);
  }

  /** Opens `target` (a file path, appended to and created with mode 0640, or '-' for stdout). */
  static async open(target: string, opts: EveWriterOptions = {}): Promise<EveWriter> {
    if (typeof target !== 'string' || target === '') {
      throw new GatehouseError('ERR_INVALID_ARG', `Expected a file path or '-' for the EVE log target but received ${JSON.stringify(target)}`);
    }
    const max = opts.maxBufferedBytes;
    if (max !== undefined && (!Number.isSafeInteger(max) || max < 1)) {
      throw new GatehouseError('ERR_INVALID_ARG', `Expected a positive integer for maxBufferedBytes but received ${String(max)}`);
    }
    if (target === EVE_STDOUT) return new EveWriter(target, process.stdout, false, opts);
    return new EveWriter(target, await openAppend(target), true, opts);
  }

  /** Appends one event as one line. Never throws; see stats() for what happened to it. */
  write(event: EveEvent): void {
    if (this.closing !== null) {
      this.counts.dropped++;
      return;
    }
    let line: string;
    try {
      line = `${JSON.stringify(this.wrap ? wrapAnf(event, this.wrap, this.clock()) : event)}\n`;
    } catch {
      this.counts.errors++;
      this.counts.dropped++;
      return;
    }
    const stream = this.stream;
    // One line always goes to an idle stream, however long, so a small bound cannot block everything.
    const backlog = stream.writableLength;
    if (stream.destroyed || !stream.writable || (backlog > 0 && backlog + line.length > this.maxBufferedBytes)) {
      this.counts.dropped++;
      return;
    }
    this.inFlight++;
    try {
      stream.write(line, (err) => this.settled(err));
    } catch {
      this.settled(new Error('write threw'));
      this.counts.errors++;
    }
  }

  stats(): EveWriterStats {
    return { ...this.counts };
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
      next = await openAppend(this.target);
    } catch (err) {
      this.counts.errors++;
      throw err;
    }
    const old = this.stream;
    next.on('error', this.onError);
    this.stream = next;
    await endStream(old);
    old.off('error', this.onError);
  }

  private async shutDown(): Promise<void> {
    if (this.reopening !== null) await this.reopening.catch(() => undefined);
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

  private settled(err: Error | null | undefined): void {
    this.inFlight--;
    if (err) this.counts.dropped++;
    else this.counts.written++;
    if (this.inFlight === 0 && this.idleWaiters.length > 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
    }
  }
}

async function openAppend(path: string): Promise<Writable> {
  try {
    const handle = await open(path, 'a', EVE_FILE_MODE);
    return handle.createWriteStream();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new GatehouseError(
      'ERR_INVALID_ARG',
      `Expected a writable file path for the EVE log but received ${JSON.stringify(path)} (${code})`,
      { cause: err },
    );
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
