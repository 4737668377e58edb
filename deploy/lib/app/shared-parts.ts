/**
 * What the example stacks share: the fleet VPC shape, the container image
 * choice, the endpoint-service principals, and reading files given as
 * parameters.
 */
import { readFileSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { Aws, IgnoreMode } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import type { Construct } from 'constructs';
import type { InspectionFleetProps } from '../inspection/inspection-fleet';
import type { ServiceToAccept } from '../shared/endpoint-acceptance';
import { addFlowLogs } from '../shared/flow-logs';
import { repoRoot } from '../shared/repo-files';
import type { GatehouseAppParameters } from './context';

/**
 * A VPC for a fleet: public subnets (NAT, internet-facing NLB) and private
 * ones with egress (instances, tasks) in two AZs. One NAT gateway: the
 * examples favour cost; give each AZ its own for production.
 */
export function fleetVpc(scope: Construct, cidr: string): ec2.Vpc {
  const vpc = new ec2.Vpc(scope, 'Vpc', {
    ipAddresses: ec2.IpAddresses.cidr(cidr),
    maxAzs: 2,
    natGateways: 1,
    subnetConfiguration: [
      { name: 'Public', subnetType: ec2.SubnetType.PUBLIC, cidrMask: 24 },
      { name: 'Private', subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS, cidrMask: 24 },
    ],
  });
  addFlowLogs(vpc);
  return vpc;
}

/**
 * The Fargate fleets' image: a registry image when given (no Docker needed
 * anywhere), else the repository's Dockerfile as an image asset. Synth only
 * copies the build context into cdk.out; `cdk deploy` builds and pushes it,
 * and that step needs Docker.
 */
export function fleetImage(params: GatehouseAppParameters): ecs.ContainerImage {
  if (params.image !== undefined) return ecs.ContainerImage.fromRegistry(params.image);
  return ecs.ContainerImage.fromAsset(repoRoot(), {
    // The Dockerfile copies only these; leaving the rest out keeps the asset
    // (and its hash) to what the image is built from.
    exclude: ['*', '!Dockerfile', '!package.json', '!package-lock.json', '!binding.gyp', '!tsconfig.json', '!native', '!src'],
    ignoreMode: IgnoreMode.DOCKER,
  });
}

/** This account, so the example's own consumer VPC may attach, and the ones given. */
export function allowedPrincipals(params: GatehouseAppParameters): string[] {
  return [`arn:${Aws.PARTITION}:iam::${Aws.ACCOUNT_ID}:root`, ...params.allowedPrincipals];
}

/** The service to accept the example's own consumer endpoints on, when acceptance is required. */
export function acceptance(params: GatehouseAppParameters, service: ServiceToAccept): ServiceToAccept | undefined {
  return params.acceptanceRequired ? service : undefined;
}

/** A file named by a parameter: absolute, or relative to the repository root. */
export function parameterFile(path: string): string {
  return readFileSync(isAbsolute(path) ? path : join(repoRoot(), path), 'utf8');
}

/** The appliance fleet's settings from the parameters; where it goes (VPC, subnets) is the stack's. */
export function applianceSettings(
  params: GatehouseAppParameters,
  packageTarball: string,
): Omit<InspectionFleetProps, 'vpc' | 'subnets'> {
  const p = params.inspection;
  return {
    packageTarball,
    mode: p.mode,
    hook: p.hook,
    policy: p.mode === 'inspect' ? parameterFile(p.policyFile) : undefined,
    instanceType: new ec2.InstanceType(p.instanceType),
    minCapacity: p.minCapacity,
    maxCapacity: p.maxCapacity,
    crossZone: p.crossZone,
    stickiness: p.stickiness,
    targetFailover: p.targetFailover,
    acceptanceRequired: params.acceptanceRequired,
    allowedPrincipals: allowedPrincipals(params),
  };
}
