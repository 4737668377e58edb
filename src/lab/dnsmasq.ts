/**
 * dnsmasq as the lab's DNS server on the internet host: answers the site
 * names with the internet host's addresses, listens only on those two
 * addresses (never on the host's loopback or anything else), reads no system
 * file (/etc/hosts, /etc/resolv.conf, /etc/dnsmasq.conf) and forwards nothing.
 */
import { join } from 'node:path';
import { LAB_ADDRESSES, LAB_SITE_NAMES } from './plan';

export const DNS_PORT = 53;

export function dnsmasqPidFile(stateDir: string): string {
  return join(stateDir, 'dnsmasq.pid');
}

export function dnsmasqArgv(stateDir: string): string[] {
  const { v4, v6 } = LAB_ADDRESSES.internet;
  // Names under the lab's zones that we do not know get NXDOMAIN, not a timeout.
  const zones = [...new Set(LAB_SITE_NAMES.map((name) => name.split('.').slice(-2).join('.')))];
  return [
    'dnsmasq',
    '--no-daemon',
    '--conf-file=/dev/null',
    '--no-resolv',
    '--no-hosts',
    '--bind-interfaces',
    `--listen-address=${v4}`,
    `--listen-address=${v6}`,
    `--pid-file=${dnsmasqPidFile(stateDir)}`,
    '--log-queries',
    ...zones.map((zone) => `--local=/${zone}/`),
    ...LAB_SITE_NAMES.map((name) => `--host-record=${name},${v4},${v6}`),
  ];
}
