/**
 * `lab down`: stop the lab's processes, delete its namespaces (which takes
 * the veths, addresses and routes along), remove its resolv.conf files and
 * its state directory. Works from the state file when there is one and from
 * the namespace names when there is not (after a crash), and is idempotent.
 */
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { LAB_HOSTS, LAB_NAMESPACE_PATTERN, LAB_STATE_ROOT, NETNS_ETC_ROOT, namespaceName, stateDirFor, validateLabName } from './plan';
import { deleteNamespace, listNamespaces, namespaceInode, namespacePids, processNamespaceInode } from './netns';
import { readState, type LabState } from './state';
import { stopPids, stopProcessGroups } from './supervisor';

export interface LabDownResult {
  name: string;
  /** Processes signalled (recorded ones and strays found inside the namespaces). */
  stoppedPids: number[];
  removedNamespaces: string[];
  removedPaths: string[];
  /** False when there was nothing to remove. */
  existed: boolean;
}

/** Reads the state file, treating an unreadable one like a missing one: down must always work. */
function stateOrUndefined(stateDir: string): LabState | undefined {
  try {
    return readState(stateDir);
  } catch {
    return undefined;
  }
}

/**
 * Recorded pids are signalled only while they still live in the namespace
 * they were started in: a pid reused by an unrelated process is left alone.
 */
function recordedGroupsStillInLab(state: LabState | undefined): number[] {
  if (state === undefined) return [];
  return state.processes
    .filter((p) => {
      const expected = namespaceInode(p.namespace);
      return expected !== undefined && processNamespaceInode(p.pid) === expected;
    })
    .map((p) => p.pid);
}

export async function labDown(name?: string): Promise<LabDownResult> {
  const labName = validateLabName(name ?? 'lab');
  const stateDir = stateDirFor(labName);
  const state = stateOrUndefined(stateDir);
  const ours = new Set(LAB_HOSTS.map((host) => namespaceName(labName, host)));
  const namespaces = (await listNamespaces()).filter((ns) => ours.has(ns));

  const groups = recordedGroupsStillInLab(state);
  await stopProcessGroups(groups);
  // Anything else still inside (a stray `lab exec`, a capture, an orphaned worker).
  const strays = (await Promise.all(namespaces.map(namespacePids))).flat();
  await stopPids(strays);
  for (const ns of namespaces) await deleteNamespace(ns);

  const paths = new Set<string>(state?.externalPaths ?? []);
  for (const ns of ours) paths.add(join(NETNS_ETC_ROOT, ns));
  paths.add(stateDir);
  const removedPaths: string[] = [];
  for (const path of paths) {
    if (!isLabOwnedPath(path, labName)) continue;
    if (!existsSync(path)) continue;
    rmSync(path, { recursive: true, force: true });
    removedPaths.push(path);
  }
  return {
    name: labName,
    stoppedPids: [...groups, ...strays],
    removedNamespaces: namespaces,
    removedPaths,
    existed: namespaces.length > 0 || removedPaths.length > 0,
  };
}

/**
 * A state file is data, and data can be wrong: never remove anything outside
 * the two places a lab writes to, whatever externalPaths says.
 */
function isLabOwnedPath(path: string, labName: string): boolean {
  if (path === stateDirFor(labName)) return true;
  return LAB_HOSTS.some((host) => path === join(NETNS_ETC_ROOT, namespaceName(labName, host)));
}

/** Names of every lab with a namespace, a state directory or a resolv.conf left on this machine. */
export async function findLabNames(): Promise<string[]> {
  const names = new Set<string>();
  for (const ns of await listNamespaces()) {
    const match = LAB_NAMESPACE_PATTERN.exec(ns);
    if (match?.[1] !== undefined) names.add(match[1]);
  }
  for (const entry of safeReaddir(NETNS_ETC_ROOT)) {
    const match = LAB_NAMESPACE_PATTERN.exec(entry);
    if (match?.[1] !== undefined) names.add(match[1]);
  }
  for (const entry of safeReaddir(LAB_STATE_ROOT)) {
    if (/^[a-z0-9]{1,8}$/.test(entry)) names.add(entry);
  }
  return [...names].sort();
}

function safeReaddir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/** `lab down --all`: cleanup after a crash, every lab on the machine. */
export async function labDownAll(): Promise<LabDownResult[]> {
  const results: LabDownResult[] = [];
  for (const name of await findLabNames()) results.push(await labDown(name));
  return results;
}
