/**
 * `gatehouse proxy` on Fargate behind an internal NLB, shared with consumer
 * VPCs through a PrivateLink endpoint service (seed 004's Squid fleet). The
 * NLB adds PROXY protocol v2, so the proxy sees each client's address and the
 * consumer's VPC endpoint id (TLV 0xEA) and can apply a policy per consumer.
 */
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import type * as ecs from 'aws-cdk-lib/aws-ecs';
import type * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { EndpointService } from '../shared/endpoint-service';
import { GatehouseFargateService } from '../shared/gatehouse-fargate-service';
import { acknowledge } from '../shared/nag';

export const PROXY_PORT = 3128;
export const PROXY_HEALTH_PORT = 9090;

export interface EgressProxyFleetProps {
  readonly vpc: ec2.IVpc;
  /** The repository's Dockerfile image (its entry point is `gatehouse proxy`). */
  readonly image: ecs.ContainerImage;
  /** The proxy policy (YAML text, examples/proxy/). */
  readonly policy: string;
  /** Extra `gatehouse proxy` flags (`--access-log -`, `--decision-log -`, limits). */
  readonly extraArgs?: readonly string[];
  /** @default 2 */
  readonly minTasks?: number;
  /** @default 10 */
  readonly maxTasks?: number;
  /** @default 75 */
  readonly cpuTargetPercent?: number;
  /** @default 512 */
  readonly cpu?: number;
  /** @default 1024 */
  readonly memoryLimitMiB?: number;
  /** @default true */
  readonly acceptanceRequired?: boolean;
  /** Principals allowed to create endpoints to the service. @default none */
  readonly allowedPrincipals?: readonly string[];
  readonly logRetention?: logs.RetentionDays;
}

export class EgressProxyFleet extends Construct {
  readonly fleet: GatehouseFargateService;
  readonly endpointService: EndpointService;

  constructor(scope: Construct, id: string, props: EgressProxyFleetProps) {
    super(scope, id);
    this.fleet = new GatehouseFargateService(this, 'Fleet', {
      vpc: props.vpc,
      image: props.image,
      command: 'proxy',
      configFlag: '--policy',
      configText: props.policy,
      args: [
        '--listen',
        `0.0.0.0:${PROXY_PORT}`,
        '--health-port',
        String(PROXY_HEALTH_PORT),
        '--proxy-protocol',
        '--access-log',
        '-',
        ...(props.extraArgs ?? []),
      ],
      containerPort: PROXY_PORT,
      healthPort: PROXY_HEALTH_PORT,
      healthPath: '/',
      listenerPort: PROXY_PORT,
      internetFacing: false,
      // Clients arrive through PrivateLink (not filtered by this group, see the
      // fleet) or from inside this VPC.
      clientPeer: ec2.Peer.ipv4(props.vpc.vpcCidrBlock),
      proxyProtocolV2: true,
      minTasks: props.minTasks,
      maxTasks: props.maxTasks,
      cpuTargetPercent: props.cpuTargetPercent,
      cpu: props.cpu,
      memoryLimitMiB: props.memoryLimitMiB,
      logRetention: props.logRetention,
    });
    acknowledge(
      this.fleet.loadBalancerSecurityGroup,
      'AwsSolutions-EC23',
      "The only source is this VPC's own CIDR, a CloudFormation reference, which the rule cannot read.",
    );
    // Any TCP port: which destinations and ports are allowed is the policy's
    // decision (connect_ports, rules), made per request where it is logged.
    this.fleet.taskSecurityGroup.addEgressRule(ec2.Peer.anyIpv4(), ec2.Port.allTcp(), 'proxied destinations');
    this.fleet.taskSecurityGroup.addEgressRule(ec2.Peer.anyIpv6(), ec2.Port.allTcp(), 'proxied destinations (IPv6)');
    this.endpointService = new EndpointService(this, 'EndpointService', {
      kind: 'network',
      loadBalancerArn: this.fleet.loadBalancer.loadBalancerArn,
      acceptanceRequired: props.acceptanceRequired,
      allowedPrincipals: props.allowedPrincipals,
    });
  }
}
