/**
 * gatehouse on ECS Fargate behind a Network Load Balancer: what the egress
 * proxy fleet and the Lattice ingress fleet share (cluster, task, container,
 * service, NLB, health check on gatehouse's own health port, CPU target
 * tracking). Each fleet says which command runs, its flags and its config.
 *
 * The config file (a proxy policy, an ingress routing table) travels in an
 * environment variable and the container writes it to /tmp before exec'ing
 * gatehouse: Fargate has no host path to mount a file from, and an image per
 * policy would make every policy change an image build.
 */
import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { acknowledge } from './nag';
import { shellCommand } from './shell';
import { checkInteger } from './validate';

/** The image's user (Dockerfile: uid 10001); set again here so a registry image cannot run as root. */
const GATEHOUSE_UID = '10001';
/** Where the container finds the CLI (Dockerfile WORKDIR /app). */
const GATEHOUSE_MAIN = '/app/dist/src/cli/main.js';
const CONFIG_ENV = 'GATEHOUSE_CONFIG';
const CONTAINER_NAME = 'gatehouse';

export interface GatehouseFargateServiceProps {
  readonly vpc: ec2.IVpc;
  /** The image built from the repository's Dockerfile (an asset, or the same image pushed to a registry). */
  readonly image: ecs.ContainerImage;
  /** `gatehouse <command>`: proxy or ingress. */
  readonly command: 'proxy' | 'ingress';
  /** The flag that names the config file (`--policy`, `--routes`), and the file's text. */
  readonly configFlag: string;
  readonly configText: string;
  /** Further flags after the config file (listen address, health port, ...). */
  readonly args: readonly string[];
  readonly containerPort: number;
  readonly healthPort: number;
  readonly healthPath: string;
  readonly listenerPort: number;
  readonly internetFacing: boolean;
  /** Who may reach the listener through the NLB's security group. */
  readonly clientPeer: ec2.IPeer;
  readonly proxyProtocolV2: boolean;
  /** A TLS listener with these certificates instead of TCP (the NLB terminates TLS). */
  readonly certificates?: elbv2.IListenerCertificate[];
  readonly loadBalancerSubnets?: ec2.SubnetSelection;
  readonly taskSubnets?: ec2.SubnetSelection;
  /** @default 512 (0.5 vCPU) */
  readonly cpu?: number;
  /** @default 1024 */
  readonly memoryLimitMiB?: number;
  /** @default 2 */
  readonly minTasks?: number;
  /** @default 10 */
  readonly maxTasks?: number;
  /** Average CPU the service scales to keep. @default 75 */
  readonly cpuTargetPercent?: number;
  /** How long the NLB lets connections of a stopping task finish (gatehouse drains on SIGTERM meanwhile). @default 60 s */
  readonly deregistrationDelay?: Duration;
  /** @default one month */
  readonly logRetention?: logs.RetentionDays;
}

export class GatehouseFargateService extends Construct {
  readonly cluster: ecs.Cluster;
  readonly service: ecs.FargateService;
  readonly taskDefinition: ecs.FargateTaskDefinition;
  readonly loadBalancer: elbv2.NetworkLoadBalancer;
  readonly targetGroup: elbv2.NetworkTargetGroup;
  readonly logGroup: logs.LogGroup;
  readonly taskSecurityGroup: ec2.SecurityGroup;
  readonly loadBalancerSecurityGroup: ec2.SecurityGroup;

  constructor(scope: Construct, id: string, props: GatehouseFargateServiceProps) {
    super(scope, id);
    const minTasks = checkInteger('minTasks', props.minTasks ?? 2, 1, 1000);
    const maxTasks = checkInteger('maxTasks', props.maxTasks ?? 10, minTasks, 1000);
    const cpuTarget = checkInteger('cpuTargetPercent', props.cpuTargetPercent ?? 75, 10, 95);
    const deregistrationDelay = props.deregistrationDelay ?? Duration.seconds(60);

    this.logGroup = new logs.LogGroup(this, 'Logs', {
      retention: props.logRetention ?? logs.RetentionDays.ONE_MONTH,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.cluster = new ecs.Cluster(this, 'Cluster', {
      vpc: props.vpc,
      containerInsightsV2: ecs.ContainerInsights.ENABLED,
    });
    this.taskDefinition = new ecs.FargateTaskDefinition(this, 'Task', {
      cpu: props.cpu ?? 512,
      memoryLimitMiB: props.memoryLimitMiB ?? 1024,
      runtimePlatform: {
        cpuArchitecture: ecs.CpuArchitecture.X86_64,
        operatingSystemFamily: ecs.OperatingSystemFamily.LINUX,
      },
    });
    const configPath = `/tmp/gatehouse-${props.command}.yaml`;
    const gatehouse = ['node', GATEHOUSE_MAIN, props.command, props.configFlag, configPath, ...props.args];
    this.taskDefinition.addContainer(CONTAINER_NAME, {
      image: props.image,
      user: GATEHOUSE_UID,
      // umask: the config is readable by gatehouse's user only; exec: gatehouse gets the signals.
      entryPoint: ['/bin/sh', '-c'],
      command: [`umask 077 && printf '%s' "$${CONFIG_ENV}" > ${configPath} && exec ${shellCommand(gatehouse)}`],
      environment: { [CONFIG_ENV]: props.configText },
      // tini as PID 1 forwards SIGTERM to gatehouse, which then drains (Dockerfile says why).
      linuxParameters: new ecs.LinuxParameters(this, 'Linux', { initProcessEnabled: true }),
      portMappings: [{ containerPort: props.containerPort }, { containerPort: props.healthPort }],
      logging: ecs.LogDrivers.awsLogs({ logGroup: this.logGroup, streamPrefix: props.command }),
      stopTimeout: Duration.seconds(120),
    });
    acknowledge(
      this.taskDefinition.obtainExecutionRole(),
      'AwsSolutions-IAM5[Resource::*]',
      'ecr:GetAuthorizationToken (pulling an image asset) has no resource-level permissions; the pull itself is limited to the repository.',
    );
    acknowledge(
      this.taskDefinition,
      'AwsSolutions-ECS2',
      'The only environment variable is the gatehouse policy or routing table (no secrets: credentials come from the task role); Fargate has no host file to mount it from.',
    );

    this.taskSecurityGroup = new ec2.SecurityGroup(this, 'TaskSecurityGroup', {
      vpc: props.vpc,
      description: `gatehouse ${props.command} tasks: the listener and health ports from the NLB only`,
      // Each fleet says where its tasks may connect (image pulls and logs use 443).
      allowAllOutbound: false,
    });
    this.service = new ecs.FargateService(this, 'Service', {
      cluster: this.cluster,
      taskDefinition: this.taskDefinition,
      // No desiredCount: on create ECS starts one task and the scaling below raises it to
      // minTasks; on later deploys the count the scaling chose is kept, not reset.
      minHealthyPercent: 100,
      maxHealthyPercent: 200,
      assignPublicIp: false,
      vpcSubnets: props.taskSubnets ?? { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS },
      securityGroups: [this.taskSecurityGroup],
      circuitBreaker: { rollback: true },
    });
    const scaling = this.service.autoScaleTaskCount({ minCapacity: minTasks, maxCapacity: maxTasks });
    scaling.scaleOnCpuUtilization('Cpu', { targetUtilizationPercent: cpuTarget });

    const nlbSecurityGroup = (this.loadBalancerSecurityGroup = new ec2.SecurityGroup(this, 'LoadBalancerSecurityGroup', {
      vpc: props.vpc,
      description: `gatehouse ${props.command} NLB: clients to the listener`,
    }));
    nlbSecurityGroup.addIngressRule(props.clientPeer, ec2.Port.tcp(props.listenerPort), 'clients');
    this.loadBalancer = new elbv2.NetworkLoadBalancer(this, 'LoadBalancer', {
      vpc: props.vpc,
      internetFacing: props.internetFacing,
      crossZoneEnabled: true,
      vpcSubnets:
        props.loadBalancerSubnets ??
        { subnetType: props.internetFacing ? ec2.SubnetType.PUBLIC : ec2.SubnetType.PRIVATE_WITH_EGRESS },
      securityGroups: [nlbSecurityGroup],
      // PrivateLink consumers are filtered by their endpoint's security group; the
      // NLB's group would see the endpoint's addresses, not the clients'.
      enforceSecurityGroupInboundRulesOnPrivateLinkTraffic: false,
    });
    acknowledge(
      this.loadBalancer,
      'AwsSolutions-ELB2',
      'gatehouse writes one access-log line per request itself (CloudWatch Logs); NLB access logs exist only for TLS listeners and would repeat less.',
    );
    for (const port of [props.containerPort, props.healthPort]) {
      this.taskSecurityGroup.addIngressRule(nlbSecurityGroup, ec2.Port.tcp(port), 'NLB traffic and health checks');
    }
    const useTls = props.certificates !== undefined && props.certificates.length > 0;
    const listener = this.loadBalancer.addListener('Listener', {
      port: props.listenerPort,
      protocol: useTls ? elbv2.Protocol.TLS : elbv2.Protocol.TCP,
      ...(useTls ? { certificates: props.certificates, sslPolicy: elbv2.SslPolicy.RECOMMENDED_TLS } : {}),
    });
    this.targetGroup = listener.addTargets('Tasks', {
      port: props.containerPort,
      protocol: elbv2.Protocol.TCP,
      proxyProtocolV2: props.proxyProtocolV2,
      deregistrationDelay,
      targets: [this.service.loadBalancerTarget({ containerName: CONTAINER_NAME, containerPort: props.containerPort })],
      // The health port, not the listener: probes never reach the access log
      // and never need a PROXY header.
      healthCheck: {
        protocol: elbv2.Protocol.HTTP,
        port: String(props.healthPort),
        path: props.healthPath,
        interval: Duration.seconds(10),
        healthyThresholdCount: 2,
        unhealthyThresholdCount: 2,
      },
    });
  }
}
