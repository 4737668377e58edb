/**
 * Starts the lab's long-running programs (gateway, appliance, nginx, dnsmasq)
 * inside their namespaces and stops them again. Each is its own process group
 * (detached), so stopping one also stops what it forked (nginx workers, the
 * user's appliance pipeline), and the CLI can exit while they keep running.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { GatehouseError } from '../errors';
import { formatCommand } from './run';

export interface ProcessRecord {
  /** What it is in the lab: gateway, appliance, nginx, dnsmasq. */
  role: string;
  pid: number;
  namespace: string;
  /** The program run inside the namespace (without the `ip netns exec NS` prefix). */
  argv: string[];
  log: string;
}

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** A process the current Node process started and can still watch. */
export interface StartedProcess {
  record: ProcessRecord;
  child: ChildProcess;
  /** Set once the process has exited. */
  exit: () => ExitInfo | undefined;
}

export function startInNamespace(role: string, namespace: string, argv: string[], log: string): StartedProcess {
  const fd = openSync(log, 'a');
  let exitInfo: ExitInfo | undefined;
  let child: ChildProcess;
  try {
    // `ip netns exec` execs the program after setns(), so the pid we get is the program's.
    child = spawn('ip', ['netns', 'exec', namespace, ...argv], {
      detached: true,
      stdio: ['ignore', fd, fd],
    });
  } finally {
    closeSync(fd);
  }
  child.on('exit', (code, signal) => {
    exitInfo = { code, signal };
  });
  // spawn reports a missing `ip` binary asynchronously; the exit handler covers the rest.
  child.on('error', () => {
    exitInfo ??= { code: 127, signal: null };
  });
  return {
    record: { role, pid: child.pid ?? -1, namespace, argv, log },
    child,
    exit: () => exitInfo,
  };
}

/** Lets the CLI exit without waiting for (or killing) the processes it started. */
export function detach(started: StartedProcess): void {
  started.child.unref();
}

/** True when the pid is a running process (zombies waiting to be reaped count as dead). */
export function isAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The state letter follows the parenthesised command name, which may itself hold spaces.
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X' && state !== '';
  } catch {
    return false;
  }
}

function groupExists(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // Already gone: that is what we wanted.
  }
}

function signalPid(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // Already gone.
  }
}

/** Polls `done` every intervalMs until it is true or timeoutMs passed; returns its last answer. */
export async function waitUntil(done: () => boolean | Promise<boolean>, timeoutMs: number, intervalMs = 50): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await done()) return true;
    if (Date.now() >= deadline) return false;
    await sleep(intervalMs);
  }
}

export const STOP_GRACE_MS = 3000;

/**
 * SIGTERM to each process group, then SIGKILL to whatever is left after the
 * grace period. Groups whose leader already died may still hold children
 * (nginx workers), so liveness is checked per group, not per leader.
 */
export async function stopProcessGroups(pgids: readonly number[], graceMs = STOP_GRACE_MS): Promise<void> {
  const live = pgids.filter((pgid) => pgid > 1 && groupExists(pgid));
  for (const pgid of live) signalGroup(pgid, 'SIGTERM');
  await waitUntil(() => live.every((pgid) => !anyAliveInGroup(pgid)), graceMs);
  for (const pgid of live) if (anyAliveInGroup(pgid)) signalGroup(pgid, 'SIGKILL');
  await waitUntil(() => live.every((pgid) => !anyAliveInGroup(pgid)), graceMs);
}

/** Same as stopProcessGroups for loose pids (found by `ip netns pids`, not started by us). */
export async function stopPids(pids: readonly number[], graceMs = STOP_GRACE_MS): Promise<void> {
  const live = pids.filter((pid) => pid > 1 && isAlive(pid));
  for (const pid of live) signalPid(pid, 'SIGTERM');
  await waitUntil(() => live.every((pid) => !isAlive(pid)), graceMs);
  for (const pid of live) if (isAlive(pid)) signalPid(pid, 'SIGKILL');
  await waitUntil(() => live.every((pid) => !isAlive(pid)), graceMs);
}

/**
 * A group of only zombies still "exists" for kill(-pgid, 0); they die with
 * their parent's wait(), so they need no signal. Scans /proc for members.
 */
function anyAliveInGroup(pgid: number): boolean {
  if (!groupExists(pgid)) return false;
  if (isAlive(pgid)) return true;
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return true;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      // fields: state ppid pgrp ...
      if (Number(fields[2]) === pgid && fields[0] !== 'Z' && fields[0] !== 'X') return true;
    } catch {
      // Raced with an exit.
    }
  }
  return false;
}

/** The end of a log file, for error messages about a process that died. */
export function logTail(path: string, maxChars = 1500): string {
  try {
    const text = readFileSync(path, 'utf8');
    return text.length > maxChars ? `...${text.slice(-maxChars)}` : text;
  } catch {
    return '';
  }
}

export function describeExit(exit: ExitInfo): string {
  return exit.signal !== null ? `was killed by ${exit.signal}` : `exited with code ${exit.code}`;
}

/** Bounded wait for a program to become ready (healthy ones take milliseconds). */
export const READY_TIMEOUT_MS = 5000;

/** Throws ERR_LAB with the command line and the end of its log if the process has exited. */
export function assertRunning(proc: StartedProcess): void {
  const exit = proc.exit();
  if (exit === undefined) return;
  const { role, namespace, argv, log } = proc.record;
  throw new GatehouseError(
    'ERR_LAB',
    `${role} ${describeExit(exit)}: ${formatCommand(['ip', 'netns', 'exec', namespace, ...argv])}\n${logTail(log) || '(its log is empty)'}`,
  );
}

/**
 * Waits until `ready` answers true, failing at once (with the process's log)
 * if the process dies first, and after READY_TIMEOUT_MS otherwise. With
 * `tolerateTimeout`, a timeout returns false instead of throwing.
 */
export async function waitForReady(
  proc: StartedProcess,
  what: string,
  ready: () => Promise<boolean>,
  opts: { tolerateTimeout?: boolean; timeoutMs?: number } = {},
): Promise<boolean> {
  const timeoutMs = opts.timeoutMs ?? READY_TIMEOUT_MS;
  let ok = false;
  await waitUntil(async () => {
    if (proc.exit() !== undefined) return true;
    ok = await ready();
    return ok;
  }, timeoutMs);
  assertRunning(proc);
  if (ok || opts.tolerateTimeout === true) return ok;
  throw new GatehouseError(
    'ERR_LAB',
    `${proc.record.role} did not finish ${what} within ${timeoutMs} ms; its log (${proc.record.log}):\n${logTail(proc.record.log) || '(empty)'}`,
  );
}
