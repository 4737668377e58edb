/**
 * The running policy and where it comes from. A reload that finds a bad
 * file (or a bad domain list) refuses it and keeps the policy that runs.
 * Watching covers the directories of the policy and of its domain lists,
 * because editors replace files (write a temp file, rename it over) and a
 * watch on the file itself would follow the old inode.
 *
 * The class is generic over what it loads (a PolicyLoader), so that other
 * policy kinds (the proxy's) share the reload and watch logic; without a
 * loader it loads inspect policies.
 */
import { watch, type FSWatcher } from 'node:fs';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import { GatehouseError } from '../../errors';
import { loadPolicyFile, readPolicyText } from './load';
import type { Policy } from './types';

export type ReloadResult<P = Policy> = { ok: true; policy: P } | { ok: false; error: GatehouseError };

/** How a PolicySource reads its kind of policy, and which files it depends on. */
export interface PolicyLoader<P> {
  /** Reads, parses and checks the file; throws ERR_POLICY when it is invalid. */
  load(path: string): Promise<P>;
  /** Absolute paths whose change means a reload, besides the policy file itself (imported lists). */
  dependencies(policy: P, path: string): string[];
}

/** Inspect policies: the file and the domain lists its rules import. */
export const INSPECT_POLICY_LOADER: PolicyLoader<Policy> = {
  load: loadPolicyFile,
  dependencies: (policy, path) =>
    policy.rules.flatMap((rule) => rule.domainLists.map((list) => resolve(isAbsolute(list.path) ? list.path : join(dirname(path), list.path)))),
};

/**
 * A loader for a kind of file that imports no others (proxy policies,
 * ingress routes): `parse` turns its text into the value (throwing ERR_POLICY
 * with file:line:col), and only the file itself is watched.
 */
export function singleFileLoader<P>(parse: (text: string, path: string) => P): PolicyLoader<P> {
  return {
    load: async (path) => parse(await readPolicyText(path), path),
    dependencies: () => [],
  };
}

/** Quiet time after the last file event before reloading (editors write in several steps). */
export const WATCH_DEBOUNCE_MS = 200;

export class PolicySource<P = Policy> {
  private policy: P;
  private readonly watchers = new Map<string, FSWatcher>();
  private onChange: ((result: ReloadResult<P>) => void) | null = null;
  private timer: NodeJS.Timeout | null = null;
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;

  private constructor(
    readonly path: string,
    policy: P,
    private readonly loader: PolicyLoader<P>,
  ) {
    this.policy = policy;
  }

  /** Loads an inspect policy; throws ERR_POLICY when the file is invalid. */
  static async open(path: string): Promise<PolicySource<Policy>> {
    return PolicySource.openWith(path, INSPECT_POLICY_LOADER);
  }

  /** Loads a policy of any kind through `loader`; throws ERR_POLICY when the file is invalid. */
  static async openWith<Q>(path: string, loader: PolicyLoader<Q>): Promise<PolicySource<Q>> {
    return new PolicySource<Q>(path, await loader.load(path), loader);
  }

  get current(): P {
    return this.policy;
  }

  /** Reads the file again; on success the new policy becomes current. Reloads run one at a time. */
  reload(): Promise<ReloadResult<P>> {
    const run = this.queue.then(() => this.reloadNow());
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async reloadNow(): Promise<ReloadResult<P>> {
    try {
      const policy = await this.loader.load(this.path);
      this.policy = policy;
      // Its domain lists may have moved: watch where they are now.
      if (!this.closed && this.onChange !== null) this.watchDirectories();
      return { ok: true, policy };
    } catch (err) {
      const error = err instanceof GatehouseError ? err : new GatehouseError('ERR_POLICY', `${this.path}:1:1: ${(err as Error).message}`, { cause: err });
      return { ok: false, error };
    }
  }

  /**
   * Reloads when the policy file or one of its domain lists changes, and
   * reports each outcome (a refused file included). One watcher at a time.
   */
  watch(onChange: (result: ReloadResult<P>) => void): void {
    if (this.closed) return;
    this.onChange = onChange;
    this.watchDirectories();
  }

  /** Files whose change means a reload: the policy and what it imported. */
  private watchedFiles(): Set<string> {
    return new Set([resolve(this.path), ...this.loader.dependencies(this.policy, this.path)]);
  }

  private watchDirectories(): void {
    const files = this.watchedFiles();
    const names = new Map<string, Set<string>>();
    for (const file of files) {
      const set = names.get(dirname(file)) ?? new Set<string>();
      set.add(basename(file));
      names.set(dirname(file), set);
    }
    for (const [dir, watcher] of this.watchers) {
      if (!names.has(dir)) {
        watcher.close();
        this.watchers.delete(dir);
      }
    }
    for (const dir of names.keys()) {
      if (this.watchers.has(dir)) continue;
      try {
        const watcher = watch(dir, { persistent: false }, (_event, filename) => {
          // Some platforms give no file name: reload to be safe.
          const wanted = this.watchedFiles();
          if (filename === null || wanted.has(resolve(dir, filename.toString()))) this.schedule();
        });
        watcher.on('error', () => {
          watcher.close();
          this.watchers.delete(dir);
        });
        this.watchers.set(dir, watcher);
      } catch {
        // A list's directory may not exist; the policy's own directory always does (it loaded).
      }
    }
  }

  private schedule(): void {
    if (this.closed) return;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.reload().then((result) => {
        if (!this.closed) this.onChange?.(result);
      });
    }, WATCH_DEBOUNCE_MS);
  }

  /** Stops watching; the current policy stays readable. */
  close(): void {
    this.closed = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    for (const watcher of this.watchers.values()) watcher.close();
    this.watchers.clear();
    this.onChange = null;
  }
}
