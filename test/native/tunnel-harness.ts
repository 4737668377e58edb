/**
 * What tunnel.test.ts builds its cases from (not a test itself):
 *
 *   namespace g ("GWLB")                         namespace a (appliance)
 *   192.0.2.1, 192.0.2.3  vg ──── veth, MTU 9000 ──── va  192.0.2.2
 *   gatehouse emu (the real generator/checker)        tunnel-netns-helper.js (the tunnel,
 *                                                     gwi-N/gwo-N passthrough TUNs)
 *
 * IPv6 is off on a's interfaces, so the kernel sends nothing of its own
 * into the TUNs and every packet the tunnel reads is one the test caused.
 */
import { execFile } from 'node:child_process';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { JsonLinesProcess, nodeInNamespace } from '../helpers/json-lines-process';
import { createNamespaces, sh, uniqueSuffix } from '../helpers/system';
import type { EmuReport } from '../../src/emu/report';
import type { TunnelHelperMessage, TunnelHelperOptions, TunnelHelperPolicy } from './tunnel-netns-helper';

const execFileAsync = promisify(execFile);
const HELPER = path.join(__dirname, 'tunnel-netns-helper.js');
const CLI = path.resolve(__dirname, '..', '..', 'src', 'cli', 'main.js');

export const GWLB = '192.0.2.1';
export const STRANGER = '192.0.2.3'; // also in g, not an allowed source
export const APPLIANCE = '192.0.2.2';

export interface Topology {
  g: string;
  a: string;
  cleanup: () => void;
}

export function buildTopology(): Topology {
  const sfx = uniqueSuffix();
  const t = { g: `ghtg${sfx}`, a: `ghta${sfx}` };
  const cleanup = createNamespaces([t.g, t.a]);
  try {
    const ip = (ns: string, ...args: string[]): string => sh('ip', ['-n', ns, ...args]);
    // Before any interface exists, so the TUNs inherit it.
    sh('ip', ['netns', 'exec', t.a, 'sysctl', '-q', '-w', 'net.ipv6.conf.default.disable_ipv6=1', 'net.ipv6.conf.all.disable_ipv6=1']);
    // 8500-byte inner packets + 68 bytes of GWLB encapsulation.
    ip(t.g, 'link', 'add', 'vg', 'mtu', '9000', 'type', 'veth', 'peer', 'name', 'va', 'mtu', '9000', 'netns', t.a);
    ip(t.g, 'addr', 'add', `${GWLB}/24`, 'dev', 'vg');
    ip(t.g, 'addr', 'add', `${STRANGER}/24`, 'dev', 'vg');
    ip(t.g, 'link', 'set', 'vg', 'up');
    ip(t.a, 'addr', 'add', `${APPLIANCE}/24`, 'dev', 'va');
    ip(t.a, 'link', 'set', 'va', 'up');
  } catch (err) {
    cleanup();
    throw err;
  }
  return { ...t, cleanup };
}

export const DEFAULT_OPTIONS: TunnelHelperOptions = {
  bind: '0.0.0.0',
  port: 6081,
  udpThreads: 2,
  udpAffinity: [],
  tunThreads: 2,
  tunAffinity: [],
  rcvbuf: 8 * 1024 * 1024,
  sndbuf: 8 * 1024 * 1024,
  batch: 64,
  flowIdleMs: 350_000,
  maxEndpoints: 64,
  pendingQueue: 4096,
  pendingBytes: 64 << 20,
  maxFlows: 4_000_000,
  allowedSources: [],
  hexdump: false,
};

export type StateMessage = Extract<TunnelHelperMessage, { type: 'state' | 'final' }>;
export type EndpointMessage = Extract<TunnelHelperMessage, { type: 'endpoint' }>;

/** The tunnel helper running in a namespace; messages are collected as they arrive. */
export class TunnelProcess extends JsonLinesProcess<TunnelHelperMessage> {
  constructor(ns: string, options: TunnelHelperOptions, policy: TunnelHelperPolicy) {
    super(nodeInNamespace(ns, HELPER, ['tunnel', JSON.stringify(options), JSON.stringify(policy)]), 'tunnel helper');
  }

  ready(): Promise<unknown> {
    return this.waitFor((m): m is Extract<TunnelHelperMessage, { type: 'ready' }> => m.type === 'ready');
  }

  /** Sends a command and waits for the first reply of `type` after it. */
  async request<K extends TunnelHelperMessage['type']>(line: string, type: K): Promise<Extract<TunnelHelperMessage, { type: K }>> {
    const from = this.messages.length;
    this.send(line);
    type Reply = Extract<TunnelHelperMessage, { type: K }> | Extract<TunnelHelperMessage, { type: 'error' }>;
    const isReply = (m: TunnelHelperMessage): m is Reply => m.type === type || m.type === 'error';
    const reply: Reply = await this.waitFor(isReply, from);
    if (reply.type === 'error') throw new Error(`tunnel helper: ${(reply as Extract<TunnelHelperMessage, { type: 'error' }>).message}`);
    return reply as Extract<TunnelHelperMessage, { type: K }>;
  }

  state(): Promise<StateMessage> {
    return this.request('state', 'state') as Promise<StateMessage>;
  }

  /** Polls the state until `done` holds (bounded); returns the last state either way. */
  async stateWhen(done: (s: StateMessage) => boolean, timeoutMs = 20_000): Promise<StateMessage> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const s = await this.state();
      if (done(s) || Date.now() > deadline) return s;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }

  endpointEvents(): EndpointMessage[] {
    return this.messages.filter((m): m is EndpointMessage => m.type === 'endpoint');
  }
}

/**
 * Runs `gatehouse emu` in namespace ns toward the appliance (bounded by its own --duration and a timeout).
 * emu counts a reply lost if it comes after its drain; on a loaded machine the
 * appliance can trail the last packet sent by more than the default 500 ms
 * (its tx_packets then exceed what emu received): 3 s unless args set --drain.
 */
export async function runEmu(ns: string, args: string[]): Promise<EmuReport> {
  const { stdout } = await execFileAsync(
    'ip',
    ['netns', 'exec', ns, process.execPath, CLI, 'emu', '--target', APPLIANCE, '--json', '--quiet', '--drain', '3000', ...args],
    { timeout: 60_000, maxBuffer: 16 * 1024 * 1024 },
  );
  const lines = stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]) as EmuReport;
}

/** Sends hand-built GENEVE datagrams from GWLB's address and source port, one at a time; returns each reply (or null). */
export async function runProbe(ns: string, sourcePort: number, datagrams: Buffer[]): Promise<Array<{ port: number; hex: string } | null>> {
  const { stdout } = await execFileAsync(
    'ip',
    ['netns', 'exec', ns, process.execPath, HELPER, 'gwlb-probe', GWLB, APPLIANCE, String(sourcePort), ...datagrams.map((d) => d.toString('hex'))],
    { timeout: 60_000 },
  );
  const m = JSON.parse(stdout.trim().split('\n').pop()!) as Extract<TunnelHelperMessage, { type: 'replies' }>;
  return m.replies;
}

/** Counter differences between two snapshots. */
export function delta(after: Record<string, number>, before: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(after).map(([k, v]) => [k, v - (before[k] ?? 0)]));
}

export const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0);
