/**
 * The lab's state file, /run/gatehouse/lab/<name>/state.json. It is written
 * after every step of `lab up`, so that `lab down` in another process (or
 * after a crash) knows which processes to stop and which files to remove.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { GatehouseError } from '../errors';
import type { LabHost } from './plan';
import type { ProcessRecord } from './supervisor';

export const STATE_SCHEMA_VERSION = 1;

export interface LabState {
  version: typeof STATE_SCHEMA_VERSION;
  name: string;
  /** ISO 8601 time `lab up` started. */
  created: string;
  twoArm: boolean;
  /** The user's --appliance command line, if any. */
  appliance: string | null;
  stateDir: string;
  namespaces: Record<LabHost, string>;
  eni: string;
  attachment: string;
  processes: ProcessRecord[];
  /** Files the lab wrote outside its state directory (resolv.conf dirs under /etc/netns). */
  externalPaths: string[];
  gatewayStatsFile: string;
  /** True once every step of `lab up` finished. */
  complete: boolean;
}

export function stateFilePath(stateDir: string): string {
  return join(stateDir, 'state.json');
}

/** Writes atomically (rename), so a reader never sees half a file. */
export function writeState(state: LabState): void {
  mkdirSync(state.stateDir, { recursive: true });
  const path = stateFilePath(state.stateDir);
  const tmp = `${path}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(state, null, 2)}\n`);
  renameSync(tmp, path);
}

/** The state in stateDir, or undefined when there is none (a missing or unreadable lab). */
export function readState(stateDir: string): LabState | undefined {
  let text: string;
  try {
    text = readFileSync(stateFilePath(stateDir), 'utf8');
  } catch {
    return undefined;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new GatehouseError('ERR_LAB', `Expected JSON in ${stateFilePath(stateDir)} but it did not parse`, { cause: err });
  }
  if (!isLabState(parsed)) {
    throw new GatehouseError(
      'ERR_LAB',
      `Expected a lab state of version ${STATE_SCHEMA_VERSION} in ${stateFilePath(stateDir)} but received something else; remove it with gatehouse lab down`,
    );
  }
  return parsed;
}

function isLabState(value: unknown): value is LabState {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Partial<LabState>;
  return (
    v.version === STATE_SCHEMA_VERSION &&
    typeof v.name === 'string' &&
    typeof v.stateDir === 'string' &&
    Array.isArray(v.processes) &&
    Array.isArray(v.externalPaths) &&
    typeof v.namespaces === 'object'
  );
}
