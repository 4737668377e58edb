/**
 * A real dnsmasq on 127.0.0.1 at a free high port, for the verifier's
 * lookup tests: the given names resolve, other names in their zones get
 * NXDOMAIN. Reads no system file, forwards nothing; killed by the
 * caller's t.after.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import net from 'node:net';
import { Resolver } from 'node:dns/promises';

export interface Dnsmasq {
  port: number;
  stop(): Promise<void>;
}

/**
 * A loopback port free for both UDP and TCP right now (dnsmasq binds both).
 * Another process may still take it before dnsmasq binds: startDnsmasq then
 * tries again on a new port.
 */
async function freeUdpTcpPort(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const socket = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
    const { port } = socket.address();
    const tcp = net.createServer();
    const tcpFree = await new Promise<boolean>((resolve) => {
      tcp.once('error', () => resolve(false));
      tcp.listen(port, '127.0.0.1', () => resolve(true));
    });
    if (tcpFree) await new Promise<void>((resolve) => tcp.close(() => resolve()));
    await new Promise<void>((resolve) => socket.close(() => resolve()));
    if (tcpFree) return port;
  }
  throw new Error('no loopback port free for both UDP and TCP in 50 tries');
}

function stopper(child: ChildProcess): () => Promise<void> {
  return () =>
    new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
    });
}

/**
 * Starts dnsmasq answering `records` (name -> IPv4), TTL `ttlS`, plus any
 * `extraArgs` (host records, CNAMEs); waits until it answers (bounded).
 */
export async function startDnsmasq(records: Record<string, string>, ttlS: number, extraArgs: string[] = []): Promise<Dnsmasq> {
  let lastError = '';
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freeUdpTcpPort();
    const child = spawn(
      'dnsmasq',
      [
        '--no-daemon',
        '--no-resolv',
        '--no-hosts',
        '--bind-interfaces',
        '--listen-address=127.0.0.1',
        `--port=${port}`,
        `--local-ttl=${ttlS}`,
        '--pid-file=',
        '--conf-file=/dev/null',
        // Other names in the same zones get NXDOMAIN (an empty answer), not REFUSED (a failure).
        ...[...new Set(Object.keys(records).map((name) => name.split('.').slice(1).join('.')))].map((zone) => `--local=/${zone}/`),
        ...Object.entries(records).map(([name, address]) => `--address=/${name}/${address}`),
        ...extraArgs,
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const stop = stopper(child);
    const probe = new Resolver({ timeout: 200, tries: 1 });
    probe.setServers([`127.0.0.1:${port}`]);
    const [name] = Object.keys(records);
    // Up to ~50 probes: dnsmasq is ready when it answers.
    for (let i = 0; i < 50 && child.exitCode === null; i++) {
      try {
        await probe.resolve4(name);
        return { port, stop };
      } catch {
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    lastError = stderr.trim();
    await stop();
  }
  throw new Error(`dnsmasq did not start: ${lastError}`);
}
