/**
 * The internet host's services: nginx (HTTP and HTTPS for the site names)
 * and dnsmasq (their DNS), started inside the internet namespace and waited
 * for until they listen.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeCertificates } from './certificates';
import { DNS_PORT, dnsmasqArgv } from './dnsmasq';
import { listeningPorts } from './netns';
import { nginxArgv, nginxConfig, nginxPaths } from './nginx';
import { LAB_SITE_NAMES, type LabHost, type LabPlan } from './plan';
import { waitForReady, type StartedProcess } from './supervisor';
import type { LabLog } from './topology';

/** Starts a program in a lab host and remembers it (for state.json and teardown). */
export type StartInHost = (role: string, host: LabHost, argv: string[]) => StartedProcess;

export const HTTP_PORTS = [80, 443] as const;

export async function startInternetHost(plan: LabPlan, start: StartInHost, log: LabLog): Promise<void> {
  const ns = plan.namespaces.internet;
  log(`making self-signed certificates for ${LAB_SITE_NAMES.join(', ')}`);
  const certs = await makeCertificates(join(plan.stateDir, 'tls'), LAB_SITE_NAMES);

  const paths = nginxPaths(plan.stateDir);
  mkdirSync(paths.tempDir, { recursive: true });
  writeFileSync(paths.conf, nginxConfig(paths, certs));
  const nginx = start('nginx', 'internet', nginxArgv(paths));
  await waitForReady(nginx, `listening on TCP ${HTTP_PORTS.join(' and ')}`, async () => {
    const ports = await listeningPorts(ns, 'tcp');
    return HTTP_PORTS.every((port) => ports.has(port));
  });

  const dnsmasq = start('dnsmasq', 'internet', dnsmasqArgv(plan.stateDir));
  await waitForReady(dnsmasq, `listening on UDP ${DNS_PORT}`, async () => (await listeningPorts(ns, 'udp')).has(DNS_PORT));
}
