/**
 * Helpers for the lab's root tests: unique lab names and the check that a
 * lab left nothing behind (namespaces, processes, files).
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { LAB_HOSTS, namespaceName, stateDirFor } from '../../src/lab/plan';
import { uniqueSuffix } from '../helpers/system';

/** 't' + 6 hex digits: a valid lab name ([a-z0-9]{1,8}) no other run will use. */
export function uniqueLabName(): string {
  return `t${uniqueSuffix()}`;
}

export function namespacesOf(name: string): string[] {
  const out = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout ?? '';
  const ours = new Set(LAB_HOSTS.map((h) => namespaceName(name, h)));
  return out
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0] ?? '')
    .filter((ns) => ours.has(ns));
}

/** Alive and not a zombie. */
export function pidAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

export function assertLabGone(name: string, pids: readonly number[] = []): void {
  assert.deepEqual(namespacesOf(name), [], 'namespaces left behind');
  assert.equal(existsSync(stateDirFor(name)), false, 'state dir left behind');
  for (const host of LAB_HOSTS) {
    assert.equal(existsSync(`/etc/netns/${namespaceName(name, host)}`), false, `/etc/netns entry left for ${host}`);
  }
  for (const pid of pids) assert.equal(pidAlive(pid), false, `process ${pid} still running`);
}
