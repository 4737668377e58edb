/**
 * Runs external commands (ip, openssl, ss, sysctl...) with an argument array,
 * never a shell string. A failure becomes ERR_LAB carrying the exact command
 * line and its stderr, because "lab up failed" alone helps nobody.
 */
import { spawn } from 'node:child_process';
import { constants as osConstants } from 'node:os';
import { GatehouseError } from '../errors';

export interface CommandResult {
  /** Exit code; 124 when we killed it for running too long (like timeout(1)). */
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  timeoutMs?: number;
  input?: string;
}

const DEFAULT_TIMEOUT_MS = 15_000;
export const TIMED_OUT_EXIT_CODE = 124;

/** Quotes arguments only where a reader would otherwise misread them. */
export function formatCommand(argv: readonly string[]): string {
  return argv.map((arg) => (/^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`)).join(' ');
}

/** Runs argv to completion and reports how it ended; never throws for a non-zero exit. */
export function tryCommand(argv: readonly string[], opts: RunOptions = {}): Promise<CommandResult> {
  const [file, ...args] = argv;
  if (file === undefined) throw new GatehouseError('ERR_INVALID_ARG', 'Expected a command for argv but received []');
  return new Promise((resolve) => {
    const child = spawn(file, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, opts.timeoutMs ?? DEFAULT_TIMEOUT_MS);
    child.on('error', (err) => {
      clearTimeout(timer);
      resolve({ code: 127, stdout, stderr: `${stderr}${err.message}` });
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (timedOut) {
        resolve({ code: TIMED_OUT_EXIT_CODE, stdout, stderr: `${stderr}killed after ${opts.timeoutMs ?? DEFAULT_TIMEOUT_MS} ms` });
      } else {
        resolve({ code: code ?? 128 + signalNumber(signal), stdout, stderr });
      }
    });
    // A child that exits before reading its input must not crash us with EPIPE.
    child.stdin.on('error', () => undefined);
    child.stdin.end(opts.input ?? '');
  });
}

/** Runs argv and returns its stdout, or throws ERR_LAB naming the command and its stderr. */
export async function runCommand(argv: readonly string[], opts: RunOptions = {}): Promise<string> {
  const result = await tryCommand(argv, opts);
  if (result.code !== 0) {
    const detail = result.stderr.trim() || result.stdout.trim() || '(no output)';
    throw new GatehouseError('ERR_LAB', `Command failed (exit ${result.code}): ${formatCommand(argv)}\n${detail}`);
  }
  return result.stdout;
}

function signalNumber(signal: NodeJS.Signals | null): number {
  if (signal === null) return 0;
  return osConstants.signals[signal] ?? 0;
}
