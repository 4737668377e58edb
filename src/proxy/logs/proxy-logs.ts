/**
 * The proxy's two logs, each optional and each its own LineLog: Squid's
 * access.log line (for the tools that already read Squid logs) and the JSON
 * decision log (every fact, for people and queries). One record() per
 * finished request or tunnel writes both; neither ever throws or waits.
 */
import { LineLog, type LineLogStats } from '../../observe/line-log';
import type { AccessEntry } from '../types';
import { decisionLogLine } from './decision-log-line';
import { squidAccessLine } from './squid-access-line';

export interface ProxyLogsOptions {
  /** Path or '-' (stdout) for the Squid-format access log; absent or null: none. */
  accessLog?: string | null;
  /** Path or '-' for the JSON decision log; absent or null: none. */
  decisionLog?: string | null;
  /** Per log: drop lines while more than this many bytes wait (LineLog's default when absent). */
  maxBufferedBytes?: number;
  /** Squid's strip_query_terms for the access log (default true, as in Squid); the decision log keeps queries. */
  stripQueryTerms?: boolean;
}

export interface ProxyLogsStats {
  access: LineLogStats | null;
  decision: LineLogStats | null;
}

export class ProxyLogs {
  private constructor(
    private readonly access: LineLog | null,
    private readonly decision: LineLog | null,
    private readonly stripQueryTerms: boolean,
  ) {}

  static async open(opts: ProxyLogsOptions = {}): Promise<ProxyLogs> {
    const bound = opts.maxBufferedBytes === undefined ? {} : { maxBufferedBytes: opts.maxBufferedBytes };
    const access = opts.accessLog === undefined || opts.accessLog === null ? null : await LineLog.open(opts.accessLog, { ...bound, label: 'access log' });
    let decision: LineLog | null = null;
    try {
      decision = opts.decisionLog === undefined || opts.decisionLog === null ? null : await LineLog.open(opts.decisionLog, { ...bound, label: 'decision log' });
    } catch (err) {
      await access?.close();
      throw err;
    }
    return new ProxyLogs(access, decision, opts.stripQueryTerms ?? true);
  }

  /** Writes one finished request or tunnel to both logs. Never throws (an AccessSink). */
  readonly record = (entry: AccessEntry): void => {
    try {
      this.access?.write(squidAccessLine(entry, { stripQueryTerms: this.stripQueryTerms }));
      this.decision?.write(decisionLogLine(entry));
    } catch {
      // The formatters are total over AccessEntry; this guards a malformed entry from JavaScript callers.
    }
  };

  stats(): ProxyLogsStats {
    return { access: this.access?.stats() ?? null, decision: this.decision?.stats() ?? null };
  }

  /** Reopens both files (logrotate, SIGHUP). Both are tried; rejects with the first failure, the failed log goes on writing to its old file. */
  async reopen(): Promise<void> {
    const results = await Promise.allSettled([this.access?.reopen(), this.decision?.reopen()]);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }

  async close(): Promise<void> {
    await Promise.all([this.access?.close(), this.decision?.close()]);
  }
}
