/**
 * TUN interfaces (IFF_TUN | IFF_NO_PI | IFF_MULTI_QUEUE) owned by this
 * process: create, set MTU, bring up or down, close. The native side does
 * the ioctls; this layer validates arguments and turns kernel refusals into
 * coded errors.
 */
import { loadNative } from './addon';
import type { NativeTun } from './binding';
import { GatehouseError } from '../errors';
import { checkBoolean, checkInteger, checkInterfaceName } from './validate';

export { MAX_INTERFACE_NAME_LENGTH } from './validate';

export const MIN_TUN_MTU = 68; // the IPv4 minimum (RFC 791)
export const MAX_TUN_MTU = 65535;
export const MAX_TUN_QUEUES = 256; // the kernel's MAX_TAP_QUEUES

export interface TunOptions {
  name: string;
  /** Queues (fds) to open, 1..256; default 1. */
  queues?: number;
  /** Default 1500. */
  mtu?: number;
}

/** Runs a native TUN call, turning its Error (which names the ioctl and errno) into ERR_NATIVE_START. */
function native<T>(what: string, call: () => T): T {
  try {
    return call();
  } catch (err) {
    throw new GatehouseError('ERR_NATIVE_START', `${what}: ${(err as Error).message}`, { cause: err });
  }
}

export class Tun {
  readonly name: string;
  /** One non-blocking fd per queue; empty once closed. */
  get fds(): readonly number[] {
    return this.closed ? [] : this.handle.fds;
  }
  private closed = false;

  /** @internal use createTun */
  constructor(private readonly handle: NativeTun) {
    this.name = handle.name;
  }

  setMtu(mtu: number): void {
    setTunMtu(this.name, mtu);
  }

  setUp(up: boolean): void {
    setInterfaceUp(this.name, up);
  }

  /** Closes every queue; a TUN this process created disappears. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    loadNative().tunClose(this.handle);
  }
}

/** Creates TUN `name` (or attaches `queues` more queues to it), sets its MTU and brings it up. */
export function createTun(opts: TunOptions): Tun {
  checkInterfaceName('name', opts.name);
  const queues = opts.queues ?? 1;
  const mtu = opts.mtu ?? 1500;
  checkInteger('queues', queues, 1, MAX_TUN_QUEUES);
  checkInteger('mtu', mtu, MIN_TUN_MTU, MAX_TUN_MTU);
  const addon = loadNative();
  return new Tun(native(`creating TUN ${opts.name}`, () => addon.tunCreate(opts.name, queues, mtu)));
}

/** Sets the MTU of any interface in this namespace (SIOCSIFMTU). */
export function setTunMtu(name: string, mtu: number): void {
  checkInterfaceName('name', name);
  checkInteger('mtu', mtu, MIN_TUN_MTU, MAX_TUN_MTU);
  const addon = loadNative();
  native(`setting the MTU of ${name}`, () => addon.tunSetMtu(name, mtu));
}

/** Brings any interface in this namespace up or down (SIOCSIFFLAGS). */
export function setInterfaceUp(name: string, up: boolean): void {
  checkInterfaceName('name', name);
  checkBoolean('up', up);
  const addon = loadNative();
  native(`bringing ${name} ${up ? 'up' : 'down'}`, () => addon.tunSetUp(name, up));
}
