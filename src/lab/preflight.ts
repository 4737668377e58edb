/**
 * Checks made before `lab up` touches anything: privileges and the programs
 * the lab runs. Failing here leaves nothing behind and says what to do.
 */
import { readFileSync } from 'node:fs';
import { GatehouseError } from '../errors';
import { tryCommand } from './run';

const CAP_NET_ADMIN = 12;
/** `ip netns add` bind-mounts the namespace under /run/netns, which needs CAP_SYS_ADMIN. */
const CAP_SYS_ADMIN = 21;

/** The effective capability set of this process, from /proc/self/status. */
function effectiveCapabilities(): bigint {
  try {
    const status = readFileSync('/proc/self/status', 'utf8');
    const match = /^CapEff:\s*([0-9a-f]+)$/m.exec(status);
    return match?.[1] === undefined ? 0n : BigInt(`0x${match[1]}`);
  } catch {
    return 0n;
  }
}

export function hasNetAdmin(): boolean {
  const caps = effectiveCapabilities();
  const has = (bit: number): boolean => (caps & (1n << BigInt(bit))) !== 0n;
  return has(CAP_NET_ADMIN) && has(CAP_SYS_ADMIN);
}

/** Throws ERR_NEEDS_ROOT unless we can create namespaces, links and routes. */
export function assertNetAdmin(what = 'gatehouse lab'): void {
  if (hasNetAdmin()) return;
  throw new GatehouseError(
    'ERR_NEEDS_ROOT',
    `${what} needs root (CAP_NET_ADMIN to build links and routes, CAP_SYS_ADMIN for ip netns): run it with sudo`,
  );
}

/** Programs `lab up` runs, with the Debian package that provides each. */
export const REQUIRED_TOOLS: readonly { program: string; probe: string[]; pkg: string }[] = [
  { program: 'ip', probe: ['ip', '-V'], pkg: 'iproute2' },
  { program: 'ss', probe: ['ss', '-V'], pkg: 'iproute2' },
  { program: 'sysctl', probe: ['sysctl', '-V'], pkg: 'procps' },
  { program: 'openssl', probe: ['openssl', 'version'], pkg: 'openssl' },
  { program: 'nginx', probe: ['nginx', '-v'], pkg: 'nginx-light' },
  { program: 'dnsmasq', probe: ['dnsmasq', '--version'], pkg: 'dnsmasq-base' },
];

export async function assertToolsPresent(): Promise<void> {
  const results = await Promise.all(REQUIRED_TOOLS.map(async (tool) => ({ tool, result: await tryCommand(tool.probe) })));
  const missing = results.filter(({ result }) => result.code === 127).map(({ tool }) => tool);
  if (missing.length > 0) {
    throw new GatehouseError(
      'ERR_LAB',
      `Expected ${missing.map((t) => t.program).join(', ')} on PATH for gatehouse lab but could not run ${missing.length === 1 ? 'it' : 'them'}; install ${[...new Set(missing.map((t) => t.pkg))].join(' ')}`,
    );
  }
}
