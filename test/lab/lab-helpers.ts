/**
 * Helpers for the lab's root tests: unique lab names and the check that a
 * lab left nothing behind (namespaces, processes, files).
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { LAB_HOSTS, namespaceName, stateDirFor } from '../../src/lab/plan';
import { isAlive } from '../../src/lab/supervisor';
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

/** Alive and not a zombie (the supervisor's own check). */
export const pidAlive = isAlive;

export function assertLabGone(name: string, pids: readonly number[] = []): void {
  assert.deepEqual(namespacesOf(name), [], 'namespaces left behind');
  assert.equal(existsSync(stateDirFor(name)), false, 'state dir left behind');
  for (const host of LAB_HOSTS) {
    assert.equal(existsSync(`/etc/netns/${namespaceName(name, host)}`), false, `/etc/netns entry left for ${host}`);
  }
  for (const pid of pids) assert.equal(pidAlive(pid), false, `process ${pid} still running`);
  assert.deepEqual(processesMentioning(name), [], 'processes of the lab still running');
}

/**
 * Live processes whose command line names the lab's state dir or one of its
 * namespaces: nginx -p <dir>, dnsmasq --pid-file=<dir>/..., ip netns exec gh-<name>-...
 */
export function processesMentioning(name: string): string[] {
  const needles = [stateDirFor(name), ...LAB_HOSTS.map((h) => namespaceName(name, h))];
  const found: string[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    let cmdline: string;
    try {
      cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').join(' ');
    } catch {
      continue;
    }
    if (pidAlive(Number(entry)) && needles.some((n) => cmdline.includes(n))) found.push(`${entry}: ${cmdline}`);
  }
  return found;
}
