/**
 * `lab status`: which namespaces exist, their addresses, which of the lab's
 * processes are alive, and the gateway's counters (its stats file).
 */
import { readFileSync } from 'node:fs';
import type { GatewayStats } from '../emu/gateway-command';
import { GatehouseError } from '../errors';
import { interfaceAddresses, listNamespaces, namespaceInode, processNamespaceInode, type InterfaceAddresses } from './netns';
import { LAB_HOSTS, namespaceName, stateDirFor, validateLabName, type LabHost } from './plan';
import { gatewayStatsFile } from './programs';
import { readState } from './state';
import { isAlive } from './supervisor';

export interface HostStatus {
  host: LabHost;
  namespace: string;
  present: boolean;
  interfaces: InterfaceAddresses[];
}

export interface ProcessStatus {
  role: string;
  pid: number;
  alive: boolean;
  command: string[];
  log: string;
}

export interface LabStatus {
  name: string;
  stateDir: string;
  /** When lab up started; null when the state file is gone (a crashed lab). */
  created: string | null;
  /** False while lab up is still running or when it died half way. */
  complete: boolean;
  twoArm: boolean;
  hosts: HostStatus[];
  processes: ProcessStatus[];
  /** The gateway's stats file as it wrote it (counters and flows), or null before its first write. */
  gateway: GatewayStats | null;
}

export async function labStatus(name?: string): Promise<LabStatus> {
  const labName = validateLabName(name ?? 'lab');
  const stateDir = stateDirFor(labName);
  const state = readState(stateDir);
  const existing = new Set(await listNamespaces());
  const hosts: HostStatus[] = [];
  for (const host of LAB_HOSTS) {
    const ns = namespaceName(labName, host);
    const present = existing.has(ns);
    hosts.push({ host, namespace: ns, present, interfaces: present ? await interfaceAddresses(ns) : [] });
  }
  if (state === undefined && hosts.every((h) => !h.present)) {
    throw new GatehouseError('ERR_LAB_MISSING', `No lab named "${labName}" is up; start one with: gatehouse lab up --name ${labName}`);
  }
  const processes = (state?.processes ?? []).map((p) => ({
    role: p.role,
    pid: p.pid,
    // Alive and still in the lab's namespace: a reused pid is not our process.
    alive: isAlive(p.pid) && processNamespaceInode(p.pid) === namespaceInode(p.namespace),
    command: p.argv,
    log: p.log,
  }));
  return {
    name: labName,
    stateDir,
    created: state?.created ?? null,
    complete: state?.complete ?? false,
    twoArm: state?.twoArm ?? false,
    hosts,
    processes,
    gateway: readGatewayStats(state?.gatewayStatsFile ?? gatewayStatsFile(stateDir)),
  };
}

function readGatewayStats(path: string): GatewayStats | null {
  try {
    const parsed = JSON.parse(readFileSync(path, 'utf8')) as Partial<GatewayStats> | null;
    // Only the shape lab status relies on is checked; the gateway owns the rest.
    if (typeof parsed !== 'object' || parsed === null || typeof parsed.counters !== 'object') return null;
    return parsed as GatewayStats;
  } catch {
    // Not written yet (the gateway writes it every second, with a rename).
    return null;
  }
}
