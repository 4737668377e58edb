/**
 * Command lines of the two programs that make the lab a GWLB: the gateway
 * (`gatehouse emu gateway`, the emulated GWLB + endpoint, inside gwlb) and
 * the appliance (the reflector `gatehouse emu --echo` by default, or the
 * user's own command inside the appliance namespace).
 */
import { join, resolve } from 'node:path';
import { GatehouseError } from '../errors';
import { GATEWAY_TUN, LAB_ADDRESSES, type LabPlan } from './plan';

/** This file is dist/src/lab/programs.js once built: the package root is three levels up. */
export const PACKAGE_ROOT = resolve(__dirname, '..', '..', '..');

export const CLI_MAIN = join(PACKAGE_ROOT, 'dist', 'src', 'cli', 'main.js');

export function gatewayStatsFile(stateDir: string): string {
  return join(stateDir, 'gateway.json');
}

export function gatewayArgv(plan: LabPlan): string[] {
  return [
    process.execPath,
    CLI_MAIN,
    'emu',
    'gateway',
    '--tun',
    GATEWAY_TUN,
    '--bind',
    LAB_ADDRESSES.gwlb.applianceSide.v4,
    '--target',
    LAB_ADDRESSES.appliance.v4,
    '--eni',
    plan.eni,
    '--attachment',
    plan.attachment,
    '--stats-file',
    gatewayStatsFile(plan.stateDir),
  ];
}

/**
 * The user's command runs through /bin/sh so that it can be a real command
 * line (pipes, environment assignments, `cd dir && ./gwlbtun ...`): it is the
 * user's own input, typed by the user, run as the user asked.
 */
export function applianceArgv(userCommand: string | undefined): string[] {
  if (userCommand === undefined) {
    return [process.execPath, CLI_MAIN, 'emu', '--echo', '--bind', LAB_ADDRESSES.appliance.v4];
  }
  return ['/bin/sh', '-c', userCommand];
}

/** Throws ERR_INVALID_ARG for an appliance command that cannot be run. */
export function validateApplianceCommand(value: unknown, label = 'appliance'): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value.trim() === '' || value.includes('\0')) {
    throw new GatehouseError(
      'ERR_INVALID_ARG',
      `Expected a non-empty command line for ${label} but received ${JSON.stringify(value)}`,
    );
  }
  return value;
}
