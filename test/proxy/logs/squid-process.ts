/**
 * A real Squid (Debian's `squid`) on a loopback port, for tests to compare
 * our log lines with its own: no cache, no pinger, its access.log in a temp
 * directory. start() skips the caller's test when squid is not installed.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect, createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export function squidVersion(): string | null {
  const r = spawnSync('squid', ['-v'], { encoding: 'utf8' });
  if (r.status !== 0) return null;
  return /Version (\S+)/.exec(r.stdout)?.[1] ?? null;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

export class SquidProcess {
  private constructor(
    readonly port: number,
    readonly dir: string,
    private readonly child: ChildProcess,
  ) {}

  /** `acl` lines go before `http_access allow localhost` (e.g. a deny for one name). */
  static async start(extraAccessLines: string[] = []): Promise<SquidProcess> {
    const dir = await mkdtemp(join(tmpdir(), 'gatehouse-squid-'));
    // Squid started as root drops to the "proxy" user: it must be able to write here.
    await chmod(dir, 0o777);
    const port = await freePort();
    const conf = [
      `http_port 127.0.0.1:${port}`,
      ...extraAccessLines,
      'http_access allow localhost',
      'http_access deny all',
      'cache deny all',
      'cache_mem 8 MB',
      'pinger_enable off',
      'netdb_filename none',
      `access_log stdio:${dir}/access.log squid`,
      `cache_log ${dir}/cache.log`,
      'cache_store_log none',
      `pid_filename ${dir}/squid.pid`,
      `coredump_dir ${dir}`,
      'shutdown_lifetime 0 seconds',
      '',
    ].join('\n');
    await writeFile(join(dir, 'squid.conf'), conf);
    const child = spawn('squid', ['-N', '-f', join(dir, 'squid.conf')], { stdio: 'ignore' });
    const squid = new SquidProcess(port, dir, child);
    // Bounded wait for the port: 100 tries, 100 ms apart.
    for (let i = 0; i < 100; i++) {
      if (child.exitCode !== null) break;
      if (await canConnect(port)) return squid;
      await new Promise((r) => setTimeout(r, 100));
    }
    const log = await readFile(join(dir, 'cache.log'), 'utf8').catch(() => '');
    await squid.stop();
    throw new Error(`squid did not start on 127.0.0.1:${port}: ${log.slice(-2000)}`);
  }

  /** Squid's access.log lines, once at least `count` are there (bounded wait). */
  async accessLines(count: number): Promise<string[]> {
    let lines: string[] = [];
    for (let i = 0; i < 100; i++) {
      const text = await readFile(join(this.dir, 'access.log'), 'utf8').catch(() => '');
      lines = text.split('\n').filter((l) => l !== '');
      if (lines.length >= count) return lines;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`expected ${count} access.log lines from squid, found ${lines.length}: ${lines.join('\n')}`);
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
      this.child.kill('SIGTERM');
      const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    await rm(this.dir, { recursive: true, force: true });
  }
}
