/**
 * The example app's parameters, from CDK context (`-c key=value` on the
 * command line, or "context" in cdk.json). Values from the command line are
 * strings; cdk.json may give booleans and numbers. Every parameter is checked
 * here, so a typo fails the synth with its name instead of deploying a default.
 */
import type { Construct } from 'constructs';
import { APPLIANCE_MODES, TUNNEL_HOOKS, type ApplianceMode, type TunnelHook } from '../inspection/appliance-user-data';
import {
  FLOW_STICKINESS,
  TARGET_FAILOVER,
  type FlowStickiness,
  type TargetFailover,
} from '../inspection/gateway-load-balancer';
import { INSPECTED_EGRESS, type InspectedEgress } from '../inspection/inspected-vpc';
import { checkChoice, checkInteger, expected } from '../shared/validate';

export interface InspectionParameters {
  readonly mode: ApplianceMode;
  readonly hook: TunnelHook;
  /** Path of the inspect policy, from the repository root or absolute. */
  readonly policyFile: string;
  readonly instanceType: string;
  readonly minCapacity: number;
  readonly maxCapacity: number;
  readonly crossZone: boolean;
  readonly stickiness: FlowStickiness;
  readonly targetFailover: TargetFailover;
  readonly egress: InspectedEgress;
}

export interface GatehouseAppParameters {
  /** Both or neither: without them the stacks are environment-agnostic (synth needs no account). */
  readonly account?: string;
  readonly region?: string;
  /** An existing `npm pack` tarball; otherwise the app packs the repository. */
  readonly packageTarball?: string;
  /** A registry image for the Fargate fleets; otherwise an image asset from the repository's Dockerfile. */
  readonly image?: string;
  /** Both endpoint services (GWLB and proxy) require acceptance of each consumer endpoint. */
  readonly acceptanceRequired: boolean;
  /** Principals allowed to create endpoints to both services, besides this account. */
  readonly allowedPrincipals: string[];
  readonly inspection: InspectionParameters;
  /** The centralised stack's Transit Gateway; otherwise the stack creates one. */
  readonly transitGatewayId?: string;
  readonly spokeCidrs: string[];
  readonly proxyPolicyFile: string;
  readonly proxyMinTasks: number;
  readonly proxyMaxTasks: number;
  readonly routesFile: string;
  /** The Lattice service network (ARN); otherwise the ingress stack creates one. */
  readonly serviceNetworkArn?: string;
  readonly serviceArns: string[];
  readonly certificateArn?: string;
}

type Raw = (key: string) => unknown;

export function readParameters(scope: Construct): GatehouseAppParameters {
  const raw: Raw = (key) => scope.node.tryGetContext(key);
  const text = (key: string): string | undefined => optionalText(raw, key);
  const minCapacity = integer(raw, 'minCapacity', 2, 1, 100);
  const proxyMinTasks = integer(raw, 'proxyMinTasks', 2, 1, 1000);
  const account = text('account');
  const region = text('region');
  if ((account === undefined) !== (region === undefined)) {
    throw expected('account and region together (or neither)', account === undefined ? 'account' : 'region', account ?? region);
  }
  return {
    account,
    region,
    packageTarball: text('packageTarball'),
    image: text('image'),
    acceptanceRequired: bool(raw, 'acceptanceRequired', true),
    allowedPrincipals: list(raw, 'allowedPrincipals'),
    inspection: {
      mode: checkChoice('mode', text('mode') ?? 'inspect', APPLIANCE_MODES),
      hook: checkChoice('hook', text('hook') ?? 'route', TUNNEL_HOOKS),
      policyFile: text('policy') ?? 'examples/policies/egress-allowlist.yaml',
      instanceType: text('instanceType') ?? 'c6i.large',
      minCapacity,
      maxCapacity: integer(raw, 'maxCapacity', Math.max(4, minCapacity), minCapacity, 100),
      crossZone: bool(raw, 'crossZone', true),
      stickiness: checkChoice('stickiness', text('stickiness') ?? '5-tuple', FLOW_STICKINESS),
      targetFailover: checkChoice('targetFailover', text('targetFailover') ?? 'rebalance', TARGET_FAILOVER),
      egress: checkChoice('egress', text('egress') ?? 'internet-gateway', INSPECTED_EGRESS),
    },
    transitGatewayId: text('transitGatewayId'),
    spokeCidrs: list(raw, 'spokeCidrs', ['10.0.0.0/8']),
    proxyPolicyFile: text('proxyPolicy') ?? 'examples/proxy/egress-allowlist.yaml',
    proxyMinTasks,
    proxyMaxTasks: integer(raw, 'proxyMaxTasks', Math.max(10, proxyMinTasks), proxyMinTasks, 1000),
    routesFile: text('routes') ?? 'examples/ingress/routes.yaml',
    serviceNetworkArn: text('serviceNetworkArn'),
    serviceArns: list(raw, 'serviceArns'),
    certificateArn: text('certificateArn'),
  };
}

function optionalText(raw: Raw, key: string): string | undefined {
  const value = raw(key);
  if (value === undefined || value === '') return undefined;
  if (typeof value !== 'string') throw expected('a string', key, value);
  return value;
}

function bool(raw: Raw, key: string, fallback: boolean): boolean {
  const value = raw(key);
  if (value === undefined) return fallback;
  if (value === true || value === 'true') return true;
  if (value === false || value === 'false') return false;
  throw expected('true or false', key, value);
}

function integer(raw: Raw, key: string, fallback: number, min: number, max: number): number {
  const value = raw(key);
  if (value === undefined) return fallback;
  const parsed = typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : value;
  if (typeof parsed !== 'number') throw expected(`an integer from ${min} to ${max}`, key, value);
  return checkInteger(key, parsed, min, max);
}

/** A comma-separated string (command line) or a string array (cdk.json). */
function list(raw: Raw, key: string, fallback: string[] = []): string[] {
  const value = raw(key);
  if (value === undefined || value === '') return fallback;
  const items = typeof value === 'string' ? value.split(',') : value;
  if (!Array.isArray(items) || !items.every((item): item is string => typeof item === 'string')) {
    throw expected('a comma-separated list of strings', key, value);
  }
  return items.map((item) => item.trim()).filter((item) => item !== '');
}
