/**
 * Runs gwlbtun-style hook scripts: `<script> CREATE|DESTROY <gwi> <gwo> <eni>`
 * with the ENI id as 17-digit zero-padded lowercase hex (what gwlbtun really
 * passes). gwlbtun builds a shell string for system(); we start the script
 * with an argument array, so names never meet a shell, and we bound it in
 * time and output:
 *  - the script runs in its own process group (spawn detached = setsid), and
 *    on timeout the whole group gets SIGKILL, so a `sleep 1000 &` it left
 *    behind dies with it;
 *  - stdout and stderr are kept up to a cap each (then a truncation marker);
 *    the rest is read and thrown away so the script never blocks on a pipe;
 *  - a failing script is a result (ok: false, reason), never an exception.
 *    Only wrong arguments from our own code throw.
 * A script that exits normally but leaves a daemon behind holding its
 * stdout is not waited for beyond a short grace period (gwlbtun's system()
 * returns when the script exits, too), and the daemon is left running.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import type { Readable } from 'node:stream';
import { eniIdToString } from '../geneve/eni';
import { expected } from '../validate';
import { MAX_INTERFACE_NAME } from './interface-names';

export type HookAction = 'CREATE' | 'DESTROY';

export interface HookRequest {
  /** Path of an executable file (not a shell command line). */
  script: string;
  action: HookAction;
  gwi: string;
  gwo: string;
  eni: bigint;
  /** After this long the script's process group is killed (SIGKILL). */
  timeoutMs: number;
  /** Added to (and overriding) gatehouse's own environment. */
  env?: Record<string, string>;
  /** Bytes kept of stdout and of stderr, each; default HOOK_OUTPUT_LIMIT. */
  outputLimit?: number;
}

export interface HookResult {
  /** Exited by itself with code 0 within the timeout. */
  ok: boolean;
  /** Exit code, null if it was killed by a signal or never started. */
  code: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  durationMs: number;
  stdout: string;
  stderr: string;
  /** Why ok is false, in words ("exited with code 3", "... is not executable (EACCES)"); undefined when ok. */
  reason: string | undefined;
}

export const HOOK_OUTPUT_LIMIT = 64 * 1024;
/** How long to wait for stdout/stderr to close once the script has exited. */
export const HOOK_DRAIN_GRACE_MS = 500;
const MAX_TIMEOUT_MS = 24 * 3600 * 1000;
const ACTIONS: readonly HookAction[] = ['CREATE', 'DESTROY'];
const INTERFACE_NAME = new RegExp(`^[^\\s/\\0]{1,${MAX_INTERFACE_NAME}}$`);

/** The script's arguments after $0, as gwlbtun passes them. */
export function hookArguments(action: HookAction, gwi: string, gwo: string, eni: bigint): string[] {
  return [action, gwi, gwo, eniIdToString(eni)];
}

/**
 * Runs the hook and resolves when it has finished (or been killed). Resolves
 * for every outcome of the script itself; throws (synchronously,
 * ERR_INVALID_ARG) only when `request` is malformed.
 */
export function runHook(request: HookRequest): Promise<HookResult> {
  checkRequest(request);
  const { script, action, gwi, gwo, eni, timeoutMs } = request;
  const args = hookArguments(action, gwi, gwo, eni);
  const limit = request.outputLimit ?? HOOK_OUTPUT_LIMIT;
  const started = performance.now();

  return new Promise<HookResult>((resolve) => {
    const stdout = new CappedOutput(limit);
    const stderr = new CappedOutput(limit);
    let child: ChildProcess;
    try {
      child = spawn(script, args, {
        detached: true, // own process group, so a timeout can kill everything it started
        stdio: ['ignore', 'pipe', 'pipe'],
        env: request.env ? { ...process.env, ...request.env } : process.env,
      });
    } catch (err) {
      // spawn throws synchronously only for arguments Node refuses; checkRequest should have caught them.
      resolve(result({ started, stdout, stderr, reason: `could not start ${script}: ${(err as Error).message}` }));
      return;
    }

    let timedOut = false;
    let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
    let startError: NodeJS.ErrnoException | undefined;
    let openStreams = 2;
    let graceTimer: NodeJS.Timeout | undefined;
    let done = false;

    const finish = (): void => {
      if (done) return;
      done = true;
      clearTimeout(killTimer);
      clearTimeout(graceTimer);
      child.stdout?.destroy();
      child.stderr?.destroy();
      const code = exit?.code ?? null;
      const signal = exit?.signal ?? null;
      let reason: string | undefined;
      if (startError) reason = describeStartError(script, startError);
      else if (timedOut) reason = `timed out after ${timeoutMs} ms; its process group was killed`;
      else if (signal !== null) reason = `killed by ${signal}`;
      else if (code !== 0) reason = `exited with code ${code}`;
      resolve(result({ started, stdout, stderr, reason, code, signal, timedOut }));
    };

    const killTimer = setTimeout(() => {
      timedOut = true;
      killGroup(child.pid);
    }, timeoutMs);

    const streamClosed = (): void => {
      openStreams--;
      if (openStreams === 0 && exit) finish();
    };
    collect(child.stdout, stdout, streamClosed);
    collect(child.stderr, stderr, streamClosed);

    child.on('error', (err: NodeJS.ErrnoException) => {
      // Without a pid the script never started (ENOENT, EACCES, ENOEXEC): nothing to wait for.
      if (child.pid === undefined) {
        startError = err;
        finish();
      }
    });
    child.on('exit', (code, signal) => {
      exit = { code, signal };
      clearTimeout(killTimer);
      if (openStreams === 0) finish();
      // Something it left running still holds the pipes: stop reading soon.
      else graceTimer = setTimeout(finish, HOOK_DRAIN_GRACE_MS);
    });
  });
}

function checkRequest(r: HookRequest): void {
  const bad = (what: string, name: string, value: unknown): never => expected(what, name, JSON.stringify(String(value)));
  if (typeof r !== 'object' || r === null) throw bad('an object', 'hook request', r);
  if (typeof r.script !== 'string' || r.script === '' || r.script.includes('\0')) throw bad('a file path', 'hook script', r.script);
  if (!ACTIONS.includes(r.action)) throw bad('CREATE or DESTROY', 'hook action', r.action);
  for (const [name, value] of [
    ['gwi', r.gwi],
    ['gwo', r.gwo],
  ] as const) {
    if (typeof value !== 'string' || !INTERFACE_NAME.test(value)) {
      throw bad('an interface name (1 to 15 characters, no spaces or slashes)', name, value);
    }
  }
  eniIdToString(r.eni); // throws ERR_INVALID_ARG unless a u64
  if (!Number.isInteger(r.timeoutMs) || r.timeoutMs < 1 || r.timeoutMs > MAX_TIMEOUT_MS) {
    throw bad(`an integer between 1 and ${MAX_TIMEOUT_MS}`, 'hook timeoutMs', r.timeoutMs);
  }
  if (r.outputLimit !== undefined && (!Number.isInteger(r.outputLimit) || r.outputLimit < 0)) {
    throw bad('a non-negative integer', 'hook outputLimit', r.outputLimit);
  }
  if (r.env !== undefined) {
    for (const [k, v] of Object.entries(r.env)) {
      if (typeof v !== 'string' || k === '' || k.includes('=') || k.includes('\0') || v.includes('\0')) {
        throw bad('string environment entries', `hook env ${k}`, v);
      }
    }
  }
}

function killGroup(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, 'SIGKILL'); // negative pid: the whole process group
  } catch {
    // ESRCH: the group is already gone.
  }
}

function describeStartError(script: string, err: NodeJS.ErrnoException): string {
  switch (err.code) {
    case 'ENOENT':
      return `${script} was not found (ENOENT), or its #! interpreter was not`;
    case 'EACCES':
      return `${script} is not executable (EACCES): it needs the execute bit (chmod +x) and a searchable directory`;
    case 'ENOEXEC':
      return `${script} is not a program the kernel can run (ENOEXEC): a script needs a #! line`;
    default:
      return `${script} could not be started: ${err.message}`;
  }
}

function collect(stream: Readable | null, into: CappedOutput, closed: () => void): void {
  if (stream === null) {
    closed();
    return;
  }
  let counted = false;
  const once = (): void => {
    if (!counted) {
      counted = true;
      closed();
    }
  };
  stream.on('data', (chunk: Buffer) => into.add(chunk));
  stream.on('close', once);
  stream.on('error', once);
}

/** Keeps the first `limit` bytes and counts the rest. */
class CappedOutput {
  private readonly chunks: Buffer[] = [];
  private kept = 0;
  private dropped = 0;
  constructor(private readonly limit: number) {}

  add(chunk: Buffer): void {
    const room = this.limit - this.kept;
    if (room >= chunk.length) {
      this.chunks.push(chunk);
      this.kept += chunk.length;
      return;
    }
    if (room > 0) {
      this.chunks.push(chunk.subarray(0, room));
      this.kept += room;
    }
    this.dropped += chunk.length - Math.max(room, 0);
  }

  text(): string {
    const head = Buffer.concat(this.chunks).toString('utf8');
    return this.dropped === 0 ? head : `${head}\n[gatehouse: output truncated, ${this.dropped} more bytes not kept]`;
  }
}

function result(r: {
  started: number;
  stdout: CappedOutput;
  stderr: CappedOutput;
  reason: string | undefined;
  code?: number | null;
  signal?: NodeJS.Signals | null;
  timedOut?: boolean;
}): HookResult {
  return {
    ok: r.reason === undefined,
    code: r.code ?? null,
    signal: r.signal ?? null,
    timedOut: r.timedOut ?? false,
    durationMs: Math.round(performance.now() - r.started),
    stdout: r.stdout.text(),
    stderr: r.stderr.text(),
    reason: r.reason,
  };
}
