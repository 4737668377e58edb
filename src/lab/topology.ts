/**
 * Builds the lab's namespaces, links, addresses and routes from a LabPlan,
 * and the policy routing that sends app and internet traffic through the
 * gateway's TUN. Removal is not here: `lab down` deletes namespaces, which
 * takes their interfaces and routes with them.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  GATEWAY_TUN,
  LAB_ADDRESSES,
  LAB_HOSTS,
  NETNS_ETC_ROOT,
  TUN_ROUTE_TABLE,
  vethName,
  type LabPlan,
} from './plan';
import { addAddress, addNamespace, addVethPair, ipIn, setLinkUp, setSysctls } from './netns';

export type LabLog = (line: string) => void;

export async function createTopology(plan: LabPlan, log: LabLog): Promise<void> {
  log(`creating namespaces ${LAB_HOSTS.map((h) => plan.namespaces[h]).join(', ')}`);
  for (const host of LAB_HOSTS) {
    await addNamespace(plan.namespaces[host]);
    // Before any link exists, so new interfaces inherit the defaults (rp_filter, DAD).
    await setSysctls(plan.namespaces[host], plan.sysctls[host]);
  }
  for (const link of plan.links) {
    log(`linking ${link.a.host}/${link.a.ifname} <-> ${link.b.host}/${link.b.ifname}`);
    const a = { ns: plan.namespaces[link.a.host], ifname: link.a.ifname };
    const b = { ns: plan.namespaces[link.b.host], ifname: link.b.ifname };
    await addVethPair(a, b, link.mtu);
    for (const [end, ns] of [
      [link.a, a.ns],
      [link.b, b.ns],
    ] as const) {
      for (const cidr of end.addresses) await addAddress(ns, end.ifname, cidr);
      await setLinkUp(ns, end.ifname);
    }
  }
  for (const route of plan.defaultRoutes) {
    await ipIn(plan.namespaces[route.host], [`-${route.family}`, 'route', 'add', 'default', 'via', route.via]);
  }
}

/**
 * Packets arriving from the app or the internet go to the gateway's TUN
 * (table 100); packets the gateway writes back into the TUN arrive with
 * iif gwlb0, match no rule, and are routed by the main table. Local
 * delivery (ARP, ping to the gateway itself) is decided before these rules.
 */
export async function addTunPolicyRoutes(plan: LabPlan): Promise<void> {
  const ns = plan.namespaces.gwlb;
  const table = String(TUN_ROUTE_TABLE);
  // The gateway should bring its TUN up; doing it again is harmless and routes need it up.
  await ipIn(ns, ['link', 'set', 'dev', GATEWAY_TUN, 'up']);
  for (const family of ['-4', '-6'] as const) {
    await ipIn(ns, [family, 'route', 'add', 'default', 'dev', GATEWAY_TUN, 'table', table]);
    // GWLB only ever sees routed traffic: link-local and multicast (IPv6
    // neighbour discovery, MLD reports) fall through to the main table.
    for (const prefix of family === '-4' ? ['169.254.0.0/16', '224.0.0.0/4'] : ['fe80::/10', 'ff00::/8']) {
      await ipIn(ns, [family, 'route', 'add', 'throw', prefix, 'table', table]);
    }
    for (const peer of ['app', 'internet'] as const) {
      await ipIn(ns, [family, 'rule', 'add', 'iif', vethName(peer), 'lookup', table, 'priority', table]);
    }
  }
}

/** resolv.conf content that points a namespace at the lab's DNS server. */
export function labResolvConf(): string {
  const { v4, v6 } = LAB_ADDRESSES.internet;
  return `# Written by gatehouse lab up; removed by gatehouse lab down.\nnameserver ${v4}\nnameserver ${v6}\noptions timeout:2 attempts:2\n`;
}

/**
 * `ip netns exec NS` bind-mounts /etc/netns/NS/resolv.conf over
 * /etc/resolv.conf, so programs in the lab resolve names with the lab's DNS
 * (and never with the host's resolver). Returns the directories written,
 * for `lab down` to remove.
 */
export function writeResolvConfs(plan: LabPlan, written: (dir: string) => void): void {
  for (const host of plan.resolverHosts) {
    const dir = join(NETNS_ETC_ROOT, plan.namespaces[host]);
    mkdirSync(dir, { recursive: true });
    written(dir);
    writeFileSync(join(dir, 'resolv.conf'), labResolvConf());
  }
}
