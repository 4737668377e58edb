/**
 * TCP listeners for the proxies (`gatehouse proxy`, `gatehouse ingress`):
 * every `--listen` address bound, or none (the first that cannot be bound is
 * named in the error, and those already bound are closed again), and the
 * peer address of an accepted connection in canonical text.
 */
import { lookup } from 'node:dns/promises';
import * as net from 'node:net';
import { GatehouseError } from './errors';
import { parseDestinationHost } from './proxy/ssrf';

export interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

/** Binds a net.Server per address (IPv6 ones IPv6-only, so [::] and 0.0.0.0 can both be asked for). */
export async function listenAll(addresses: readonly ListenAddress[], onConnection: (socket: net.Socket) => void, opts: net.ServerOpts = {}): Promise<net.Server[]> {
  const servers: net.Server[] = [];
  for (const [i, l] of addresses.entries()) {
    const server = net.createServer(opts, onConnection);
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen({ host: l.host, port: l.port, ipv6Only: net.isIPv6(l.host) }, () => {
          server.removeListener('error', reject);
          resolve();
        });
      });
    } catch (err) {
      await closeAll(servers);
      const code = (err as NodeJS.ErrnoException).code ?? 'error';
      throw new GatehouseError('ERR_LISTEN', `Expected a free address to listen on for listen[${i}] but received ${l.host}:${l.port} (${code})`, { cause: err });
    }
    // Accept errors (EMFILE...) are transient: the server keeps listening.
    server.on('error', () => undefined);
    servers.push(server);
  }
  return servers;
}

/** Stops every server accepting; resolves when they are closed. */
export async function closeAll(servers: readonly net.Server[]): Promise<void> {
  await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
}

/** Where each server listens (the real port when 0 was asked for). */
export function boundAddresses(servers: readonly net.Server[]): ListenAddress[] {
  return servers.map((s) => {
    const a = s.address() as net.AddressInfo;
    return { host: a.address, port: a.port };
  });
}

/** A peer address in canonical text: an IPv4-mapped peer on a dual-stack socket becomes IPv4. */
export function canonicalAddress(address: string | undefined): string {
  if (address === undefined) return '';
  const parsed = parseDestinationHost(address);
  return parsed.kind === 'ip' ? parsed.address : address;
}

/**
 * A drain's end: when `drained` resolves (every connection closed) or
 * after `drainMs`, whichever comes first; the deadline's timer does not
 * outlive it.
 */
export function drainedOrDeadline(drained: Promise<void>, drainMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, drainMs);
  });
  return Promise.race([drained, deadline]).finally(() => clearTimeout(timer));
}

/** How often head and idle deadlines are checked: often enough to keep headerTimeoutMs within a quarter of itself. */
export function deadlineCheckInterval(headerTimeoutMs: number): number {
  return Math.min(1000, Math.max(20, Math.floor(headerTimeoutMs / 4)));
}

/**
 * Binds each address with `bind` (the native relay's listen, which takes IP
 * literals: a name such as localhost is resolved once, here); the bound
 * addresses, real ports included.
 */
export async function listenOnIps(addresses: readonly ListenAddress[], bind: (ip: string, port: number) => number): Promise<ListenAddress[]> {
  const bound: ListenAddress[] = [];
  for (const l of addresses) {
    const ip = net.isIP(l.host) !== 0 ? l.host : (await lookup(l.host)).address;
    bound.push({ host: ip, port: bind(ip, l.port) });
  }
  return bound;
}
