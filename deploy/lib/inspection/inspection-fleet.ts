/**
 * The GWLB appliance fleet (seeds 000, 001, 003): a Gateway Load Balancer
 * with its GENEVE target group, an Auto Scaling group of gatehouse instances
 * (tunnel or inspect mode) over 2+ AZs, their role, a draining lifecycle
 * hook, and the endpoint service that consumer VPCs attach GWLB endpoints to.
 */
import { Duration, Names, RemovalPolicy, Stack, Tags } from 'aws-cdk-lib';
import * as autoscaling from 'aws-cdk-lib/aws-autoscaling';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3assets from 'aws-cdk-lib/aws-s3-assets';
import { Construct } from 'constructs';
import { EndpointService } from '../shared/endpoint-service';
import { acknowledge } from '../shared/nag';
import { checkInteger, expected } from '../shared/validate';
import {
  APPLIANCE_HEALTH_PORT,
  applianceUserDataLines,
  type ApplianceMode,
  type TunnelHook,
} from './appliance-user-data';
import { GatewayLoadBalancer, GENEVE_PORT, type FlowStickiness, type TargetFailover } from './gateway-load-balancer';

/** The tag every instance of a fleet carries; the role's ModifyInstanceAttribute is limited to it. */
export const FLEET_TAG = 'gatehouse:fleet';
/** EC2 takes at most this much user data. */
const MAX_USER_DATA_BYTES = 16 * 1024;
/** Room for each value CloudFormation fills in at deploy (bucket, key, region, log group). */
const TOKEN_ALLOWANCE_BYTES = 128;

/**
 * The user data carries the inspect policy: a large one would only fail at
 * deploy (the launch template refuses it). Refused at synth instead, with
 * the size, counting each deploy-time value generously.
 */
function checkUserDataSize(lines: readonly string[]): void {
  const text = ['#!/bin/bash', ...lines].join('\n');
  const tokens = (text.match(/\$\{Token\[[^\]]*\]\}/g) ?? []).length;
  const estimate = Buffer.byteLength(text) + tokens * TOKEN_ALLOWANCE_BYTES;
  if (estimate > MAX_USER_DATA_BYTES) {
    throw expected(
      `user data within EC2's ${MAX_USER_DATA_BYTES} bytes (a smaller policy: move long domain lists out of it)`,
      'policy',
      `${estimate} bytes of user data`,
    );
  }
}

/** How much longer gatehouse keeps an idle flow than GWLB does (DESIGN.md: the cache must outlive GWLB's). */
const FLOW_IDLE_MARGIN_SECONDS = 30;

export interface InspectionFleetProps {
  readonly vpc: ec2.IVpc;
  /** The appliances' and the GWLB's subnets, in 2+ AZs. @default the VPC's private subnets with egress */
  readonly subnets?: ec2.SubnetSelection;
  /** The `npm pack` tarball of gatehouse (a file path), uploaded as an S3 asset. */
  readonly packageTarball: string;
  readonly mode: ApplianceMode;
  /** Tunnel mode's hook. @default 'route' */
  readonly hook?: TunnelHook;
  /** Inspect mode's policy (YAML text); required in inspect mode. */
  readonly policy?: string;
  /** @default c6i.large */
  readonly instanceType?: ec2.InstanceType;
  /** @default 2 (one per AZ) */
  readonly minCapacity?: number;
  /** @default 4 */
  readonly maxCapacity?: number;
  /** Average CPU the group scales to keep. @default 60 */
  readonly cpuTargetPercent?: number;
  /** @default true */
  readonly crossZone?: boolean;
  /** @default '5-tuple' */
  readonly stickiness?: FlowStickiness;
  /** @default 'rebalance' */
  readonly targetFailover?: TargetFailover;
  /** @default 300 s */
  readonly deregistrationDelay?: Duration;
  /** @default 350 s */
  readonly tcpIdleTimeout?: Duration;
  /** @default true */
  readonly acceptanceRequired?: boolean;
  /** @default none */
  readonly allowedPrincipals?: readonly string[];
  /** The nat hook's egress interface (EGRESS_IF); AL2023 on Nitro names the first ENI ens5. @default 'ens5' */
  readonly egressInterface?: string;
  /** @default one month */
  readonly logRetention?: logs.RetentionDays;
}

export class InspectionFleet extends Construct {
  readonly gateway: GatewayLoadBalancer;
  readonly autoScalingGroup: autoscaling.AutoScalingGroup;
  readonly launchTemplate: ec2.LaunchTemplate;
  readonly role: iam.Role;
  readonly endpointService: EndpointService;
  readonly logGroup: logs.LogGroup;
  readonly userData: ec2.UserData;

  constructor(scope: Construct, id: string, props: InspectionFleetProps) {
    super(scope, id);
    const minCapacity = checkInteger('minCapacity', props.minCapacity ?? 2, 1, 100);
    const maxCapacity = checkInteger('maxCapacity', props.maxCapacity ?? 4, minCapacity, 100);
    if (props.mode === 'inspect' && props.policy === undefined) {
      throw expected('a policy (YAML text) in inspect mode', 'policy', props.policy);
    }
    const selection = props.vpc.selectSubnets(props.subnets ?? { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS });
    if (new Set(selection.availabilityZones).size < 2) {
      throw expected('subnets in at least 2 availability zones', 'subnets', selection.availabilityZones);
    }
    const fleetId = Names.uniqueId(this);

    this.gateway = new GatewayLoadBalancer(this, 'Gateway', {
      vpc: props.vpc,
      subnets: selection.subnets,
      healthPort: APPLIANCE_HEALTH_PORT,
      crossZone: props.crossZone,
      stickiness: props.stickiness,
      targetFailover: props.targetFailover,
      deregistrationDelay: props.deregistrationDelay,
      tcpIdleTimeout: props.tcpIdleTimeout,
    });
    this.logGroup = new logs.LogGroup(this, 'Logs', {
      retention: props.logRetention ?? logs.RetentionDays.ONE_MONTH,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    const tarball = new s3assets.Asset(this, 'Package', { path: props.packageTarball });
    this.role = this.createRole(tarball, fleetId);

    this.userData = ec2.UserData.forLinux();
    const lines = applianceUserDataLines({
        mode: props.mode,
        hook: props.hook ?? 'route',
        policy: props.policy ?? '',
        tarball: { bucket: tarball.s3BucketName, key: tarball.s3ObjectKey },
        region: Stack.of(this).region,
        gwlbCidr: props.vpc.vpcCidrBlock,
        flowIdleSeconds: this.gateway.tcpIdleTimeoutSeconds + FLOW_IDLE_MARGIN_SECONDS,
        egressInterface: props.egressInterface ?? 'ens5',
        logGroupName: this.logGroup.logGroupName,
    });
    checkUserDataSize(lines);
    this.userData.addCommands(...lines);

    const securityGroup = new ec2.SecurityGroup(this, 'SecurityGroup', {
      vpc: props.vpc,
      description: 'gatehouse appliances: GENEVE and health checks from the GWLB (in this VPC)',
    });
    securityGroup.addIngressRule(ec2.Peer.ipv4(props.vpc.vpcCidrBlock), ec2.Port.udp(GENEVE_PORT), 'GENEVE from GWLB');
    securityGroup.addIngressRule(
      ec2.Peer.ipv4(props.vpc.vpcCidrBlock),
      ec2.Port.tcp(APPLIANCE_HEALTH_PORT),
      'GWLB health checks',
    );
    acknowledge(
      securityGroup,
      'AwsSolutions-EC23',
      "The only sources are this VPC's own CIDR (the GWLB's nodes); it is a CloudFormation reference, which the rule cannot read.",
    );

    const instanceType = props.instanceType ?? new ec2.InstanceType('c6i.large');
    this.launchTemplate = new ec2.LaunchTemplate(this, 'LaunchTemplate', {
      // The AMI's architecture follows the instance type's (a Graviton type needs the arm64 image).
      machineImage: ec2.MachineImage.latestAmazonLinux2023({
        cpuType: instanceType.architecture === ec2.InstanceArchitecture.ARM_64 ? ec2.AmazonLinuxCpuType.ARM_64 : ec2.AmazonLinuxCpuType.X86_64,
      }),
      instanceType,
      role: this.role,
      securityGroup,
      userData: this.userData,
      requireImdsv2: true,
      // One hop: nothing on the appliance (containers) should reach the instance's credentials.
      httpPutResponseHopLimit: 1,
      blockDevices: [
        {
          deviceName: '/dev/xvda',
          volume: ec2.BlockDeviceVolume.ebs(16, { encrypted: true, volumeType: ec2.EbsDeviceVolumeType.GP3 }),
        },
      ],
    });

    this.autoScalingGroup = new autoscaling.AutoScalingGroup(this, 'Group', {
      vpc: props.vpc,
      vpcSubnets: { subnets: selection.subnets },
      launchTemplate: this.launchTemplate,
      minCapacity,
      maxCapacity,
      // GWLB's health (gatehouse's health port) replaces instances that stop serving.
      healthChecks: autoscaling.HealthChecks.withAdditionalChecks({
        additionalTypes: [autoscaling.AdditionalHealthCheckType.ELB],
        gracePeriod: Duration.minutes(10),
      }),
      // A new policy, mode or hook is a new launch template version: replace the
      // appliances one at a time (each drains through the lifecycle hook below),
      // keeping the others in service, instead of leaving the old ones running.
      updatePolicy: autoscaling.UpdatePolicy.rollingUpdate({
        maxBatchSize: 1,
        minInstancesInService: Math.min(minCapacity, maxCapacity - 1),
        pauseTime: Duration.minutes(10),
      }),
    });
    const cfnGroup = this.autoScalingGroup.node.defaultChild as autoscaling.CfnAutoScalingGroup;
    cfnGroup.targetGroupArns = [this.gateway.targetGroup.ref];
    Tags.of(this.autoScalingGroup).add(FLEET_TAG, fleetId, { applyToLaunchedInstances: true });
    this.autoScalingGroup.scaleOnCpuUtilization('Cpu', {
      targetUtilizationPercent: checkInteger('cpuTargetPercent', props.cpuTargetPercent ?? 60, 10, 95),
    });
    // Scale-in: the instance leaves the target group when it enters Terminating:Wait,
    // and GWLB keeps its flows for the deregistration delay; the hook keeps the
    // instance (and gatehouse) running until that is over.
    const deregistration = props.deregistrationDelay ?? Duration.seconds(300);
    this.autoScalingGroup.addLifecycleHook('Draining', {
      lifecycleTransition: autoscaling.LifecycleTransition.INSTANCE_TERMINATING,
      heartbeatTimeout: Duration.seconds(deregistration.toSeconds() + 60),
      defaultResult: autoscaling.DefaultResult.CONTINUE,
    });
    acknowledge(
      this.autoScalingGroup,
      'AwsSolutions-AS3',
      'Scaling events are in the group activity history and on EventBridge; an SNS topic per fleet would have no subscriber here.',
    );

    this.endpointService = new EndpointService(this, 'EndpointService', {
      kind: 'gateway',
      loadBalancerArn: this.gateway.loadBalancer.ref,
      acceptanceRequired: props.acceptanceRequired,
      allowedPrincipals: props.allowedPrincipals,
    });
  }

  /**
   * The instances' role: SSM for shell access without SSH, CloudWatch Logs into
   * the fleet's group, the tarball object, and the source/dest check of the
   * fleet's own instances (two-arm NAT).
   */
  private createRole(tarball: s3assets.Asset, fleetId: string): iam.Role {
    const role = new iam.Role(this, 'InstanceRole', {
      assumedBy: new iam.ServicePrincipal('ec2.amazonaws.com'),
      description: 'gatehouse appliance instances',
      managedPolicies: [iam.ManagedPolicy.fromAwsManagedPolicyName('AmazonSSMManagedInstanceCore')],
    });
    acknowledge(
      role,
      'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonSSMManagedInstanceCore]',
      'AmazonSSMManagedInstanceCore is the AWS-maintained minimum for the SSM agent (Session Manager instead of SSH).',
    );
    role.addToPolicy(
      new iam.PolicyStatement({
        actions: ['s3:GetObject'],
        resources: [tarball.bucket.arnForObjects(tarball.s3ObjectKey)],
      }),
    );
    role.addToPolicy(
      new iam.PolicyStatement({
        actions: ['logs:CreateLogStream', 'logs:PutLogEvents', 'logs:DescribeLogStreams'],
        resources: [this.logGroup.logGroupArn],
      }),
    );
    const stack = Stack.of(this);
    role.addToPolicy(
      new iam.PolicyStatement({
        actions: ['ec2:ModifyInstanceAttribute'],
        resources: [stack.formatArn({ service: 'ec2', resource: 'instance', resourceName: '*' })],
        conditions: { StringEquals: { [`aws:ResourceTag/${FLEET_TAG}`]: fleetId } },
      }),
    );
    acknowledge(
      role,
      'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ec2:<AWS::Region>:<AWS::AccountId>:instance/*]',
      'Instance ids are not known before launch: the statement is limited to instances tagged with this fleet, a tag the role cannot set.',
    );
    return role;
  }
}
