/**
 * The ingress access log: one line per finished request in the chosen
 * format, through a LineLog (never throws, never waits; reopened on SIGHUP
 * for logrotate).
 *
 * Lines are batched: those finished in one turn of the event loop go to the
 * LineLog as one write. A LineLog write is a file-stream write (a thread-pool
 * trip, a promise, a syscall); one per request measured at about 75 us of
 * CPU per request under load, most of the ingress's own cost. A batch is
 * written whole or dropped whole, so LineLog's counters count batches here.
 */
import { LineLog, type LineLogStats } from '../../observe/line-log';
import type { IngressAccessEntry } from '../server/access';
import { accessLine, type AccessLogFormat } from './access-line';

/** A batch is written at once when it reaches this many lines, whatever the turn. */
const MAX_BATCH_LINES = 256;

export class IngressAccessLog {
  private pending: string[] = [];
  private scheduled: NodeJS.Immediate | null = null;

  private constructor(
    private readonly log: LineLog,
    private readonly format: AccessLogFormat,
  ) {}

  /** `target`: a file path (appended to) or '-' for stdout. */
  static async open(target: string, format: AccessLogFormat): Promise<IngressAccessLog> {
    return new IngressAccessLog(await LineLog.open(target, { label: 'access log' }), format);
  }

  /** An IngressAccessSink. */
  readonly record = (entry: IngressAccessEntry): void => {
    this.pending.push(accessLine(this.format, entry));
    if (this.pending.length >= MAX_BATCH_LINES) this.flush();
    else this.scheduled ??= setImmediate(this.flush);
  };

  private readonly flush = (): void => {
    if (this.scheduled !== null) clearImmediate(this.scheduled);
    this.scheduled = null;
    if (this.pending.length === 0) return;
    const lines = this.pending;
    this.pending = [];
    // One newline-joined batch; LineLog adds the last newline.
    this.log.write(lines.join('\n'));
  };

  stats(): LineLogStats {
    return this.log.stats();
  }

  reopen(): Promise<void> {
    this.flush();
    return this.log.reopen();
  }

  close(): Promise<void> {
    this.flush();
    return this.log.close();
  }
}
