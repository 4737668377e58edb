/**
 * Helpers for the lab's root tests: unique lab names, the check that a lab
 * left nothing behind (namespaces, processes, files), and the probes the
 * appliance tests share (health port, emu from the gwlb host, polling).
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import type { EmuReport } from '../../src/emu/report';
import { labExecCapture } from '../../src/lab/exec';
import { LAB_ADDRESSES, LAB_HOSTS, namespaceName, stateDirFor } from '../../src/lab/plan';
import { CLI_MAIN } from '../../src/lab/programs';
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

/** Polls `probe` every 250 ms until it returns a value (bounded by timeoutMs). */
export async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** GET http://127.0.0.1:8080<path> inside the lab's appliance namespace (its health port). */
export async function applianceHealth(lab: string, path = '/'): Promise<{ code: number; body: string }> {
  const r = await labExecCapture(lab, 'appliance', ['curl', '-s', '-m', '3', '-w', '\n%{http_code}', `http://127.0.0.1:8080${path}`], 10_000);
  const lines = r.stdout.split('\n');
  return { code: Number(lines.pop()), body: lines.join('\n') };
}

/** `gatehouse emu` in the lab's gwlb namespace (from 192.0.2.3) toward the appliance; its JSON report. */
export async function labEmu(lab: string, args: string[]): Promise<EmuReport> {
  const r = await labExecCapture(
    lab,
    'gwlb',
    [process.execPath, CLI_MAIN, 'emu', '--bind', LAB_ADDRESSES.gwlb.loadGenerator.v4, '--target', LAB_ADDRESSES.appliance.v4, '--json', '--quiet', ...args],
    90_000,
  );
  assert.equal(r.code, 0, `emu failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop() ?? '') as EmuReport;
}
