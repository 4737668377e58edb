/**
 * Thin wrappers over iproute2 for network namespaces, links, addresses and
 * routes. Every interface is created directly inside its namespace
 * (`ip -n NS link add ... peer ... netns OTHER`), so the lab never puts an
 * interface in the host's namespace, not even for a moment.
 */
import { readlinkSync, statSync } from 'node:fs';
import { runCommand, tryCommand } from './run';

/** Names of every network namespace `ip netns` knows about. */
export async function listNamespaces(): Promise<string[]> {
  const out = await runCommand(['ip', 'netns', 'list']);
  // Lines look like "gh-lab-app (id: 3)" or just "gh-lab-app".
  return out
    .split('\n')
    .map((line) => line.trim().split(/\s+/)[0] ?? '')
    .filter((name) => name !== '');
}

export async function addNamespace(ns: string): Promise<void> {
  await runCommand(['ip', 'netns', 'add', ns]);
  await runCommand(['ip', '-n', ns, 'link', 'set', 'dev', 'lo', 'up']);
}

/** Deletes a namespace; a missing one is not an error (cleanup is idempotent). */
export async function deleteNamespace(ns: string): Promise<void> {
  const result = await tryCommand(['ip', 'netns', 'del', ns]);
  if (result.code !== 0 && !/No such file|not found|does not exist/i.test(result.stderr)) {
    await runCommand(['ip', 'netns', 'del', ns]);
  }
}

/** Pids of every process whose network namespace is `ns`. */
export async function namespacePids(ns: string): Promise<number[]> {
  const result = await tryCommand(['ip', 'netns', 'pids', ns]);
  if (result.code !== 0) return [];
  return result.stdout
    .split(/\s+/)
    .filter((word) => /^\d+$/.test(word))
    .map(Number);
}

/** Runs `ip -n NS ...` and returns its stdout. */
export function ipIn(ns: string, args: readonly string[]): Promise<string> {
  return runCommand(['ip', '-n', ns, ...args]);
}

/** Runs a program inside the namespace and returns its stdout. */
export function execIn(ns: string, argv: readonly string[], timeoutMs?: number): Promise<string> {
  return runCommand(['ip', 'netns', 'exec', ns, ...argv], timeoutMs === undefined ? {} : { timeoutMs });
}

/** Creates a veth pair with one end in each namespace. */
export async function addVethPair(
  a: { ns: string; ifname: string },
  b: { ns: string; ifname: string },
  mtu?: number,
): Promise<void> {
  const mtuArgs = mtu === undefined ? [] : ['mtu', String(mtu)];
  await ipIn(a.ns, ['link', 'add', a.ifname, ...mtuArgs, 'type', 'veth', 'peer', 'name', b.ifname, ...mtuArgs, 'netns', b.ns]);
}

/** Adds an address; IPv6 ones skip duplicate address detection so services can bind at once. */
export async function addAddress(ns: string, ifname: string, cidr: string): Promise<void> {
  const family = cidr.includes(':') ? '-6' : '-4';
  const noDad = family === '-6' ? ['nodad'] : [];
  await ipIn(ns, [family, 'addr', 'add', cidr, 'dev', ifname, ...noDad]);
}

export async function setLinkUp(ns: string, ifname: string): Promise<void> {
  await ipIn(ns, ['link', 'set', 'dev', ifname, 'up']);
}

export async function linkExists(ns: string, ifname: string): Promise<boolean> {
  const result = await tryCommand(['ip', '-n', ns, 'link', 'show', 'dev', ifname]);
  return result.code === 0;
}

export async function setSysctls(ns: string, settings: readonly string[]): Promise<void> {
  if (settings.length === 0) return;
  await execIn(ns, ['sysctl', '-q', '-w', ...settings]);
}

export interface InterfaceAddresses {
  ifname: string;
  up: boolean;
  /** CIDR strings, link-local IPv6 left out (every interface has one; they say nothing). */
  addresses: string[];
}

interface IpAddrJson {
  ifname?: string;
  flags?: string[];
  addr_info?: { local?: string; prefixlen?: number; scope?: string }[];
}

export async function interfaceAddresses(ns: string): Promise<InterfaceAddresses[]> {
  const parsed = JSON.parse(await ipIn(ns, ['-j', 'addr', 'show'])) as IpAddrJson[];
  return parsed
    .filter((iface) => iface.ifname !== undefined && iface.ifname !== 'lo')
    .map((iface) => ({
      ifname: iface.ifname ?? '',
      up: (iface.flags ?? []).includes('UP'),
      addresses: (iface.addr_info ?? [])
        .filter((a) => a.scope !== 'link' && a.local !== undefined)
        .map((a) => `${a.local}/${a.prefixlen}`),
    }));
}

/**
 * The kernel's identity of a named namespace (the nsfs inode), used to check
 * that a recorded pid still belongs to this lab before signalling it.
 */
export function namespaceInode(ns: string): number | undefined {
  try {
    return statSync(`/run/netns/${ns}`).ino;
  } catch {
    return undefined;
  }
}

/** The network namespace inode of a process, or undefined if it is gone. */
export function processNamespaceInode(pid: number): number | undefined {
  try {
    const link = readlinkSync(`/proc/${pid}/ns/net`);
    const match = /^net:\[(\d+)\]$/.exec(link);
    return match?.[1] === undefined ? undefined : Number(match[1]);
  } catch {
    return undefined;
  }
}

/** Local ports with a listening socket in the namespace (`ss -l`), per protocol. */
export async function listeningPorts(ns: string, protocol: 'tcp' | 'udp'): Promise<Set<number>> {
  const out = await execIn(ns, ['ss', '-H', '-l', '-n', protocol === 'tcp' ? '-t' : '-u']);
  const ports = new Set<number>();
  for (const line of out.split('\n')) {
    // State Recv-Q Send-Q Local:Port Peer:Port
    const local = line.trim().split(/\s+/)[3];
    if (local === undefined) continue;
    const port = Number(local.slice(local.lastIndexOf(':') + 1));
    if (Number.isInteger(port)) ports.add(port);
  }
  return ports;
}
