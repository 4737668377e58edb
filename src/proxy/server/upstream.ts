/**
 * Connections to upstreams, always to the address the SSRF check approved.
 * Node never resolves anything here: the host handed to net is an
 * IP literal, and `refuseLookup` stands in for the resolver so that a name
 * reaching this layer by mistake fails instead of being looked up behind
 * the check.
 */
import * as net from 'node:net';
import { performance } from 'node:perf_hooks';
import { timeoutError, type UpstreamDialer } from '../../http1';

export type UpstreamFailure = { reason: 'timeout'; status: 504 } | { reason: string; status: 502 };

/** A stand-in for dns.lookup that refuses: by design nothing below the check resolves names. */
export const refuseLookup: net.LookupFunction = (hostname, _options, callback) => {
  const err: NodeJS.ErrnoException = Object.assign(new Error(`refusing to resolve ${hostname} behind the SSRF check`), { code: 'ERR_NO_RESOLVE' });
  process.nextTick(() => callback(err, ''));
};

/** Why a connection attempt failed, as an AccessEntry reason and a status. */
export function upstreamFailure(err: unknown): UpstreamFailure {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  if (code === 'ETIMEDOUT' || code === 'ERR_UPSTREAM_TIMEOUT') return { reason: 'timeout', status: 504 };
  const known = typeof code === 'string' && /^[A-Z0-9_]{1,32}$/.test(code) ? code.toLowerCase() : 'failed';
  return { reason: `upstream:${known}`, status: 502 };
}

/** An upstream as the SSRF check approved it: an address, never a name. */
export interface UpstreamTarget {
  readonly address: string;
  readonly family: 4 | 6;
  readonly port: number;
}

/** Plain-HTTP upstream connections go to the checked address and port; a pool per address:port. */
export const checkedAddressDialer: UpstreamDialer<UpstreamTarget> = {
  keyOf: (t) => `${t.address}|${t.port}`,
  dial: (t) => net.connect({ host: t.address, family: t.family, port: t.port, lookup: refuseLookup, noDelay: true }),
};

export type TcpConnectResult = { ok: true; socket: net.Socket; connectMs: number } | ({ ok: false } & UpstreamFailure);

/** A TCP connection for a tunnel, given up after `timeoutMs` (504) or on refusal (502). */
export function connectTcp(address: string, family: 4 | 6, port: number, timeoutMs: number): Promise<TcpConnectResult> {
  return new Promise((resolve) => {
    const started = performance.now();
    const socket = net.connect({ host: address, family, port, lookup: refuseLookup, allowHalfOpen: true });
    const timer = setTimeout(() => socket.destroy(timeoutError('connect')), timeoutMs);
    const onError = (err: Error): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ ok: false, ...upstreamFailure(err) });
    };
    socket.once('error', onError);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeListener('error', onError);
      resolve({ ok: true, socket, connectMs: Math.round(performance.now() - started) });
    });
  });
}
