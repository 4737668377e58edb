/**
 * `gatehouse ingress` on Fargate behind an internet-facing NLB (seed 002):
 * public host names in, SigV4-signed requests to VPC Lattice services out.
 * The VPC is associated with the service network, so Lattice service names
 * resolve (to 169.254.171.x) from the tasks; the task role may invoke the
 * network's services and nothing else.
 */
import { Stack } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import type * as ecs from 'aws-cdk-lib/aws-ecs';
import type * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as logs from 'aws-cdk-lib/aws-logs';
import * as lattice from 'aws-cdk-lib/aws-vpclattice';
import { Construct } from 'constructs';
import { GatehouseFargateService } from '../shared/gatehouse-fargate-service';
import { acknowledge } from '../shared/nag';

export const INGRESS_PORT = 8080;
export const INGRESS_HEALTH_PORT = 9091;
/** Ready only once credentials are loaded (a task that cannot sign gets no traffic). */
export const INGRESS_HEALTH_PATH = '/healthz';

export interface LatticeIngressProps {
  readonly vpc: ec2.IVpc;
  /** The repository's Dockerfile image; the task runs `gatehouse ingress` from it. */
  readonly image: ecs.ContainerImage;
  /** The routing table (YAML text, examples/ingress/routes.yaml). */
  readonly routes: string;
  /** The service network (id or ARN) the VPC joins. */
  readonly serviceNetworkIdentifier: string;
  /** The service network's ARN: invocations are limited to services reached through it. */
  readonly serviceNetworkArn: string;
  /**
   * Lattice service ARNs the task may invoke. @default every service, but only
   * through the service network above (IAM condition)
   */
  readonly serviceArns?: readonly string[];
  /** A TLS listener on 443 with these certificates (ACM); otherwise TCP 80. */
  readonly certificates?: elbv2.IListenerCertificate[];
  /** Who may reach the NLB. @default anywhere (IPv4) */
  readonly clientPeer?: ec2.IPeer;
  readonly extraArgs?: readonly string[];
  readonly minTasks?: number;
  readonly maxTasks?: number;
  readonly cpuTargetPercent?: number;
  readonly logRetention?: logs.RetentionDays;
}

export class LatticeIngress extends Construct {
  readonly fleet: GatehouseFargateService;
  readonly association: lattice.CfnServiceNetworkVpcAssociation;

  constructor(scope: Construct, id: string, props: LatticeIngressProps) {
    super(scope, id);
    const tls = props.certificates !== undefined && props.certificates.length > 0;
    this.fleet = new GatehouseFargateService(this, 'Fleet', {
      vpc: props.vpc,
      image: props.image,
      command: 'ingress',
      configFlag: '--routes',
      configText: props.routes,
      args: [
        '--listen',
        `0.0.0.0:${INGRESS_PORT}`,
        '--health-port',
        String(INGRESS_HEALTH_PORT),
        '--proxy-protocol',
        '--region',
        Stack.of(this).region,
        ...(props.extraArgs ?? []),
      ],
      containerPort: INGRESS_PORT,
      healthPort: INGRESS_HEALTH_PORT,
      healthPath: INGRESS_HEALTH_PATH,
      listenerPort: tls ? 443 : 80,
      certificates: props.certificates,
      internetFacing: true,
      clientPeer: props.clientPeer ?? ec2.Peer.anyIpv4(),
      // The client's address for X-Forwarded-For and the access log.
      proxyProtocolV2: true,
      minTasks: props.minTasks,
      maxTasks: props.maxTasks,
      cpuTargetPercent: props.cpuTargetPercent,
      logRetention: props.logRetention,
    });
    if (props.clientPeer === undefined) {
      acknowledge(
        this.fleet.loadBalancerSecurityGroup,
        'AwsSolutions-EC23',
        'The ingress is the public entrance to the Lattice services: the listener is meant to be reachable from the internet.',
      );
    }
    this.fleet.taskSecurityGroup.addEgressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(443), 'Lattice services (HTTPS)');
    this.fleet.taskSecurityGroup.addEgressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(80), 'Lattice services (HTTP)');
    this.allowInvoke(props);

    const latticeSecurityGroup = new ec2.SecurityGroup(this, 'LatticeSecurityGroup', {
      vpc: props.vpc,
      description: 'VPC Lattice association: requests from the ingress tasks',
      allowAllOutbound: false,
    });
    for (const port of [80, 443]) {
      latticeSecurityGroup.addIngressRule(this.fleet.taskSecurityGroup, ec2.Port.tcp(port), 'ingress tasks');
    }
    this.association = new lattice.CfnServiceNetworkVpcAssociation(this, 'Association', {
      serviceNetworkIdentifier: props.serviceNetworkIdentifier,
      vpcIdentifier: props.vpc.vpcId,
      securityGroupIds: [latticeSecurityGroup.securityGroupId],
    });
  }

  private allowInvoke(props: LatticeIngressProps): void {
    const role = this.fleet.taskDefinition.taskRole;
    const stack = Stack.of(this);
    const anyService = stack.formatArn({ service: 'vpc-lattice', resource: 'service', resourceName: '*' });
    const services = props.serviceArns ?? [];
    // Invoke is authorised on a service's request paths: "<service ARN>/<path>".
    const resources = services.length > 0 ? services.map((arn) => `${arn}/*`) : [`${anyService}/*`];
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ['vpc-lattice-svcs:Invoke'],
        resources,
        conditions: { StringEquals: { 'vpc-lattice-svcs:ServiceNetworkArn': props.serviceNetworkArn } },
      }),
    );
    const nagResources =
      services.length > 0 ? resources : ['arn:<AWS::Partition>:vpc-lattice:<AWS::Region>:<AWS::AccountId>:service/*/*'];
    for (const resource of nagResources) {
      acknowledge(
        role,
        `AwsSolutions-IAM5[Resource::${resource}]`,
        'vpc-lattice-svcs:Invoke is granted on request paths ("<service>/*") and only through the associated service network (condition).',
      );
    }
  }
}
