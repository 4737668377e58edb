/**
 * Appends EVE events, one JSON object per line, to a file or to stdout:
 * JSON serialisation and the optional AWS Network Firewall envelope on top
 * of a LineLog (src/observe/line-log.ts), which owns the file, the drop
 * bound and reopen() for logrotate.
 */
import { LineLog } from '../../observe/line-log';
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

export class EveWriter {
  readonly target: string;
  private readonly log: LineLog;
  private readonly wrap: AnfWrapOptions | undefined;
  private readonly clock: () => Date;
  /** Events that never became a line (JSON could not hold them): dropped and errors at once. */
  private unserialisable = 0;

  private constructor(log: LineLog, opts: EveWriterOptions) {
    this.target = log.target;
    this.log = log;
    this.wrap = opts.wrap;
    this.clock = opts.clock ?? (() => new Date());
  }

  /** Opens `target` (a file path, appended to and created with mode 0640, or '-' for stdout). */
  static async open(target: string, opts: EveWriterOptions = {}): Promise<EveWriter> {
    const log = await LineLog.open(target, { label: 'EVE log', ...(opts.maxBufferedBytes === undefined ? {} : { maxBufferedBytes: opts.maxBufferedBytes }) });
    return new EveWriter(log, opts);
  }

  /** Appends one event as one line. Never throws; see stats() for what happened to it. */
  write(event: EveEvent): void {
    let line: string;
    try {
      line = JSON.stringify(this.wrap ? wrapAnf(event, this.wrap, this.clock()) : event);
    } catch {
      this.unserialisable++;
      return;
    }
    this.log.write(line);
  }

  stats(): EveWriterStats {
    const s = this.log.stats();
    return { written: s.written, dropped: s.dropped + this.unserialisable, errors: s.errors + this.unserialisable };
  }

  /** See LineLog.reopen: for log rotation; a no-op for stdout; rejects and keeps the old file if the path cannot be opened. */
  reopen(): Promise<void> {
    return this.log.reopen();
  }

  /** Flushes what was written and closes the file (stdout is flushed, not closed). Idempotent. */
  close(): Promise<void> {
    return this.log.close();
  }
}
