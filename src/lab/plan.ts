/**
 * The lab's address plan and names: pure data, no side effects. Everything
 * else in src/lab reads from here, so the topology, the services and the
 * docs cannot disagree about an address.
 *
 *   app ──── gwlb ──── internet
 *              │          │ (--two-arm only)
 *           appliance ────┘
 *
 * Only documentation ranges are used (RFC 5737, RFC 3849), inside namespaces
 * the lab creates, so nothing can leak onto a real network.
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { GatehouseError } from '../errors';

export const LAB_HOSTS = ['app', 'gwlb', 'appliance', 'internet'] as const;
export type LabHost = (typeof LAB_HOSTS)[number];

export const DEFAULT_LAB_NAME = 'lab';

/** Lab names end up inside namespace names and paths: keep them boring. */
const LAB_NAME_PATTERN = /^[a-z0-9]{1,8}$/;

/** Every lab namespace starts with this, which is how `lab down --all` finds them. */
export const LAB_NAMESPACE_PREFIX = 'gh-';

/** Matches exactly the namespaces a lab creates (and nothing else named gh-*). */
export const LAB_NAMESPACE_PATTERN = /^gh-([a-z0-9]{1,8})-(app|gwlb|appliance|internet)$/;

export const LAB_STATE_ROOT = '/run/gatehouse/lab';

/** `ip netns exec` bind-mounts /etc/netns/<ns>/resolv.conf over /etc/resolv.conf. */
export const NETNS_ETC_ROOT = '/etc/netns';

/** The TUN the gateway process creates inside the gwlb namespace. */
export const GATEWAY_TUN = 'gwlb0';

/** Routing table for packets that must go through the gateway's TUN. */
export const TUN_ROUTE_TABLE = 100;

/** EC2 jumbo frames on the GENEVE link; the other links keep Linux's 1500. */
export const GENEVE_LINK_MTU = 9001;

export const GENEVE_PORT = 6081;

export const LAB_ADDRESSES = {
  app: { v4: '198.51.100.10', v6: '2001:db8:100::10' },
  gwlb: {
    /** The app's default gateway. */
    appSide: { v4: '198.51.100.1', v6: '2001:db8:100::1' },
    /** The internet host's default gateway. */
    internetSide: { v4: '203.0.113.1', v6: '2001:db8:200::1' },
    /** Where the gateway binds UDP 6081 and sends GENEVE from. */
    applianceSide: { v4: '192.0.2.1' },
    /** Reserved for a load generator (`gatehouse emu` run inside gwlb). */
    loadGenerator: { v4: '192.0.2.3' },
  },
  appliance: {
    v4: '192.0.2.2',
    /** --two-arm: the appliance's own leg to the internet (NAT appliances). */
    twoArm: { v4: '203.0.113.130', v6: '2001:db8:300::2' },
  },
  internet: {
    v4: '203.0.113.10',
    v6: '2001:db8:200::10',
    /** --two-arm: the internet side of the appliance's own leg. */
    twoArm: { v4: '203.0.113.129', v6: '2001:db8:300::1' },
  },
} as const;

/** Names the internet host serves (HTTP, HTTPS by SNI, DNS). */
export const LAB_SITE_NAMES = ['www.example.com', 'api.example.com', 'blocked.example.net', 'api.allowed.test'] as const;

/** Interface names inside each namespace are `veth-<peer host>`. */
export function vethName(peer: LabHost): string {
  return `veth-${peer}`;
}

/** The appliance's GENEVE-side interface (where a capture of UDP 6081 goes). */
export const APPLIANCE_GENEVE_INTERFACE = vethName('gwlb');

export interface LinkEndPlan {
  host: LabHost;
  ifname: string;
  /** CIDR notation, e.g. 198.51.100.10/24. */
  addresses: string[];
}

export interface LinkPlan {
  a: LinkEndPlan;
  b: LinkEndPlan;
  mtu?: number;
}

export interface RoutePlan {
  host: LabHost;
  family: 4 | 6;
  via: string;
}

export interface LabPlan {
  name: string;
  twoArm: boolean;
  namespaces: Record<LabHost, string>;
  links: LinkPlan[];
  defaultRoutes: RoutePlan[];
  /** sysctl key=value pairs, applied per host right after its namespace is made. */
  sysctls: Record<LabHost, string[]>;
  /** Hosts whose namespace gets a resolv.conf pointing at the lab's DNS. */
  resolverHosts: LabHost[];
  /** GWLB endpoint ENI id the gateway stamps into option type 1 (17 hex digits). */
  eni: string;
  /** GWLB attachment id for option type 2 (17 hex digits). */
  attachment: string;
  stateDir: string;
}

/** Throws ERR_INVALID_ARG unless `value` is a usable lab name. */
export function validateLabName(value: unknown, label = 'name'): string {
  if (typeof value !== 'string' || !LAB_NAME_PATTERN.test(value)) {
    throw new GatehouseError(
      'ERR_INVALID_ARG',
      `Expected a lab name of 1 to 8 characters from a-z and 0-9 for ${label} but received ${JSON.stringify(value)}`,
    );
  }
  return value;
}

export function namespaceName(labName: string, host: LabHost): string {
  return `${LAB_NAMESPACE_PREFIX}${labName}-${host}`;
}

export function stateDirFor(labName: string): string {
  return join(LAB_STATE_ROOT, labName);
}

/**
 * A stable 64-bit id per lab and purpose, printed as gwlbtun prints endpoint
 * ids: 17 lowercase hex digits, zero padded. Stable so that hook scripts and
 * interface names (gwi-<base60>) stay the same across `lab up`s.
 */
export function stableLabId(labName: string, purpose: 'eni' | 'attachment'): string {
  const digest = createHash('sha256').update(`gatehouse lab ${purpose} ${labName}`).digest('hex');
  return `0${digest.slice(0, 16)}`;
}

const FORWARDING_SYSCTLS = [
  'net.ipv4.ip_forward=1',
  'net.ipv6.conf.all.forwarding=1',
  // The gateway writes packets back into gwlb0 whose sources are routed out
  // other interfaces; strict reverse-path filtering would drop them.
  'net.ipv4.conf.all.rp_filter=0',
  'net.ipv4.conf.default.rp_filter=0',
];

/** Addresses are added with nodad too; this covers addresses a user adds later. */
const NO_DAD_SYSCTLS = ['net.ipv6.conf.all.accept_dad=0', 'net.ipv6.conf.default.accept_dad=0'];

export function labPlan(labName: string, opts: { twoArm?: boolean } = {}): LabPlan {
  const name = validateLabName(labName);
  const twoArm = opts.twoArm ?? false;
  const A = LAB_ADDRESSES;
  const namespaces = {
    app: namespaceName(name, 'app'),
    gwlb: namespaceName(name, 'gwlb'),
    appliance: namespaceName(name, 'appliance'),
    internet: namespaceName(name, 'internet'),
  };
  const links: LinkPlan[] = [
    {
      a: { host: 'app', ifname: vethName('gwlb'), addresses: [`${A.app.v4}/24`, `${A.app.v6}/64`] },
      b: { host: 'gwlb', ifname: vethName('app'), addresses: [`${A.gwlb.appSide.v4}/24`, `${A.gwlb.appSide.v6}/64`] },
    },
    {
      a: {
        host: 'gwlb',
        ifname: vethName('internet'),
        addresses: [`${A.gwlb.internetSide.v4}/25`, `${A.gwlb.internetSide.v6}/64`],
      },
      b: { host: 'internet', ifname: vethName('gwlb'), addresses: [`${A.internet.v4}/25`, `${A.internet.v6}/64`] },
    },
    {
      a: {
        host: 'gwlb',
        ifname: vethName('appliance'),
        addresses: [`${A.gwlb.applianceSide.v4}/24`, `${A.gwlb.loadGenerator.v4}/24`],
      },
      b: { host: 'appliance', ifname: vethName('gwlb'), addresses: [`${A.appliance.v4}/24`] },
      mtu: GENEVE_LINK_MTU,
    },
  ];
  const defaultRoutes: RoutePlan[] = [
    { host: 'app', family: 4, via: A.gwlb.appSide.v4 },
    { host: 'app', family: 6, via: A.gwlb.appSide.v6 },
    { host: 'internet', family: 4, via: A.gwlb.internetSide.v4 },
    { host: 'internet', family: 6, via: A.gwlb.internetSide.v6 },
  ];
  if (twoArm) {
    links.push({
      a: {
        host: 'appliance',
        ifname: vethName('internet'),
        addresses: [`${A.appliance.twoArm.v4}/25`, `${A.appliance.twoArm.v6}/64`],
      },
      b: {
        host: 'internet',
        ifname: vethName('appliance'),
        addresses: [`${A.internet.twoArm.v4}/25`, `${A.internet.twoArm.v6}/64`],
      },
    });
    defaultRoutes.push(
      { host: 'appliance', family: 4, via: A.internet.twoArm.v4 },
      { host: 'appliance', family: 6, via: A.internet.twoArm.v6 },
    );
  } else {
    defaultRoutes.push({ host: 'appliance', family: 4, via: A.gwlb.applianceSide.v4 });
  }
  return {
    name,
    twoArm,
    namespaces,
    links,
    defaultRoutes,
    sysctls: {
      app: [...NO_DAD_SYSCTLS],
      gwlb: [...NO_DAD_SYSCTLS, ...FORWARDING_SYSCTLS],
      // Appliances route what they receive (gwlbtun's gwi -> gwo, NAT in two-arm).
      appliance: [...NO_DAD_SYSCTLS, ...FORWARDING_SYSCTLS],
      internet: [...NO_DAD_SYSCTLS],
    },
    resolverHosts: [...LAB_HOSTS],
    eni: stableLabId(name, 'eni'),
    attachment: stableLabId(name, 'attachment'),
    stateDir: stateDirFor(name),
  };
}
