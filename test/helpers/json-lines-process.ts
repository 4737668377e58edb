/**
 * A helper process that prints one JSON message a line (the *-netns-helper
 * scripts tests start inside namespaces). Messages are collected as they
 * arrive; a test waits, bounded, for the one it needs, and kills the process
 * on cleanup. Lines that are not JSON are kept with stderr, so a failure
 * shows everything the helper said.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

/** How often a wait looks again when no line arrives (lines and exit wake it at once). */
const RECHECK_MS = 200;

export class JsonLinesProcess<M> {
  /** Every message so far, in arrival order. */
  readonly messages: M[] = [];
  private stderr = '';
  private readonly proc: ChildProcess;
  private readonly exited: Promise<number | null>;
  /** Set on 'close', i.e. after the last stdout line was read, unlike proc.exitCode. */
  private closed = false;
  private waiters: Array<() => void> = [];

  /**
   * @param argv the command and its arguments (spawned directly, no shell)
   * @param label names the process in failure messages
   * @param waitTimeoutMs how long waitFor waits when not told
   */
  constructor(
    argv: readonly string[],
    readonly label: string,
    private readonly waitTimeoutMs = 20_000,
  ) {
    this.proc = spawn(argv[0], argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
    createInterface({ input: this.proc.stdout! }).on('line', (line) => {
      try {
        this.messages.push(JSON.parse(line) as M);
      } catch {
        this.stderr += `(stdout) ${line}\n`;
      }
      this.wake();
    });
    this.proc.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString()));
    this.exited = new Promise((resolve) =>
      this.proc.on('close', (code) => {
        this.closed = true;
        this.wake();
        resolve(code);
      }),
    );
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** Waits (bounded; not a timing assertion) for a message at index >= from matching pred. */
  waitFor<T extends M>(pred: (m: M) => m is T, from?: number, timeoutMs?: number): Promise<T>;
  waitFor(pred: (m: M) => boolean, from?: number, timeoutMs?: number): Promise<M>;
  async waitFor(pred: (m: M) => boolean, from = 0, timeoutMs = this.waitTimeoutMs): Promise<M> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.messages.slice(from).find(pred);
      if (found !== undefined) return found;
      if (this.closed || Date.now() > deadline) {
        const how = this.closed ? `exit ${this.proc.exitCode ?? this.proc.signalCode}` : `none within ${timeoutMs} ms`;
        throw new Error(`${this.label}: no expected message (${how}); stderr: ${this.stderr}`);
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, RECHECK_MS);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Writes one line to the helper's stdin. */
  send(line: string): void {
    this.proc.stdin!.write(`${line}\n`);
  }

  /** The exit code, or a failure when the process has not exited within the bound. */
  async exitCode(timeoutMs = 15_000): Promise<number | null> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${this.label} did not exit; stderr: ${this.stderr}`)), timeoutMs);
    });
    try {
      return await Promise.race([this.exited, late]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Everything the helper wrote to stderr, and any stdout line that was not JSON. */
  get stderrText(): string {
    return this.stderr;
  }

  kill(): void {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill('SIGKILL');
  }
}

/** argv that runs a Node script inside network namespace ns. */
export function nodeInNamespace(ns: string, script: string, args: readonly string[]): string[] {
  return ['ip', 'netns', 'exec', ns, process.execPath, script, ...args];
}
