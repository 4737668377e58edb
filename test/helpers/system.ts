/**
 * Helpers for tests that build real network topologies. Every test that
 * creates a namespace, interface or process removes it in a finally/after
 * hook, and names carry a per-run prefix so parallel runs never collide.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import type { TestContext } from 'node:test';

/** True when we may create namespaces, TUN devices and raw sockets. */
export function haveNetAdmin(): boolean {
  if (process.getuid?.() !== 0) return false;
  const probe = `ghprobe${randomBytes(3).toString('hex')}`;
  const r = spawnSync('ip', ['netns', 'add', probe], { stdio: 'ignore' });
  if (r.status !== 0) return false;
  spawnSync('ip', ['netns', 'del', probe], { stdio: 'ignore' });
  return true;
}

/** Skips the test with a clear message unless we have root / CAP_NET_ADMIN. */
export function skipUnlessNetAdmin(t: TestContext): boolean {
  if (haveNetAdmin()) return false;
  t.skip('needs root (CAP_NET_ADMIN, CAP_NET_RAW and ip netns); CI runs as root');
  return true;
}

/** Short random suffix for namespace and interface names (Linux: 15 chars max). */
export function uniqueSuffix(): string {
  return randomBytes(3).toString('hex');
}

/** Runs a command, throwing with its stderr when it fails. */
export function sh(cmd: string, args: string[], opts: { input?: string; timeoutMs?: number } = {}): string {
  try {
    return execFileSync(cmd, args, {
      encoding: 'utf8',
      input: opts.input,
      timeout: opts.timeoutMs ?? 30_000,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')} failed: ${e.stderr?.trim() || e.message}`);
  }
}

/** Runs a command and ignores failure (for cleanup). */
export function shQuiet(cmd: string, args: string[]): void {
  spawnSync(cmd, args, { stdio: 'ignore', timeout: 30_000 });
}

/** Creates network namespaces and returns a function that deletes them (and kills what runs in them). */
export function createNamespaces(names: string[]): () => void {
  const made: string[] = [];
  const cleanup = (): void => {
    for (const ns of made) {
      const pids = spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' }).stdout ?? '';
      for (const pid of pids.split(/\s+/).filter(Boolean)) {
        try {
          process.kill(Number(pid), 'SIGKILL');
        } catch {
          /* already gone */
        }
      }
      shQuiet('ip', ['netns', 'del', ns]);
    }
  };
  try {
    for (const ns of names) {
      sh('ip', ['netns', 'add', ns]);
      made.push(ns);
      sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    }
  } catch (err) {
    cleanup();
    throw err;
  }
  return cleanup;
}

/** Runs a Node.js script (`node -e`) to its end; its exit code and what it wrote. */
export async function runNodeScript(script: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const code = await new Promise<number | null>((res) => child.on('close', res));
  return { code, stdout, stderr };
}
