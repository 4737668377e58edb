/**
 * A Gateway Load Balancer, its GENEVE target group and listener, in L1:
 * aws-cdk-lib has no L2 for GWLB (no GENEVE protocol, no gateway type).
 * The attributes set here are the ones a GWLB appliance fleet must choose
 * deliberately (DESIGN.md "GWLB protocol facts").
 */
import { Duration } from 'aws-cdk-lib';
import type * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import { Construct } from 'constructs';
import { acknowledge } from '../shared/nag';
import { checkInteger } from '../shared/validate';

/** GWLB talks to targets on UDP 6081, GENEVE, and nothing else. */
export const GENEVE_PORT = 6081;

/**
 * Which fields GWLB hashes a flow on: 5-tuple by default; 3-tuple (addresses
 * and protocol) or 2-tuple (addresses) keep all of a host pair's flows on one
 * appliance, which stateful inspection of protocols with side flows needs.
 */
export type FlowStickiness = '5-tuple' | '3-tuple' | '2-tuple';
export const FLOW_STICKINESS: readonly FlowStickiness[] = ['5-tuple', '3-tuple', '2-tuple'];

/**
 * What GWLB does with existing flows of a target that is deregistered or
 * unhealthy: keep sending them there (no_rebalance), or rehash them to
 * healthy targets (rebalance). gatehouse copes with flows it never saw start
 * (`midstream` in inspect policies), so rebalance is the default.
 */
export type TargetFailover = 'rebalance' | 'no_rebalance';
export const TARGET_FAILOVER: readonly TargetFailover[] = ['rebalance', 'no_rebalance'];

export interface GatewayLoadBalancerProps {
  readonly vpc: ec2.IVpc;
  /** Subnets in 2+ AZs; the appliances' subnets. */
  readonly subnets: ec2.ISubnet[];
  /** gatehouse's health port (`-p`): any path answers 200 healthy, 503 not. */
  readonly healthPort: number;
  /** @default true: an AZ with no healthy appliance still gets its flows served */
  readonly crossZone?: boolean;
  /** @default '5-tuple' */
  readonly stickiness?: FlowStickiness;
  /** @default 'rebalance' */
  readonly targetFailover?: TargetFailover;
  /** How long a deregistering appliance keeps its flows. @default 300 s */
  readonly deregistrationDelay?: Duration;
  /** GWLB's idle timeout for TCP flows (60-6000 s); gatehouse's flow cache (-i) must outlive it. @default 350 s */
  readonly tcpIdleTimeout?: Duration;
}

export class GatewayLoadBalancer extends Construct {
  readonly loadBalancer: elbv2.CfnLoadBalancer;
  readonly targetGroup: elbv2.CfnTargetGroup;
  readonly listener: elbv2.CfnListener;
  readonly tcpIdleTimeoutSeconds: number;

  constructor(scope: Construct, id: string, props: GatewayLoadBalancerProps) {
    super(scope, id);
    const deregistrationSeconds = checkInteger(
      'deregistrationDelay',
      (props.deregistrationDelay ?? Duration.seconds(300)).toSeconds(),
      0,
      3600,
    );
    this.tcpIdleTimeoutSeconds = checkInteger(
      'tcpIdleTimeout',
      (props.tcpIdleTimeout ?? Duration.seconds(350)).toSeconds(),
      60,
      6000,
    );
    this.loadBalancer = new elbv2.CfnLoadBalancer(this, 'LoadBalancer', {
      type: 'gateway',
      subnets: props.subnets.map((subnet) => subnet.subnetId),
      loadBalancerAttributes: [
        { key: 'load_balancing.cross_zone.enabled', value: String(props.crossZone ?? true) },
      ],
    });
    acknowledge(
      this.loadBalancer,
      'AwsSolutions-ELB2',
      'A Gateway Load Balancer has no access logs; gatehouse logs per flow (EVE) and the VPCs have flow logs.',
    );
    const failover = props.targetFailover ?? 'rebalance';
    this.targetGroup = new elbv2.CfnTargetGroup(this, 'TargetGroup', {
      protocol: 'GENEVE',
      port: GENEVE_PORT,
      vpcId: props.vpc.vpcId,
      targetType: 'instance',
      healthCheckEnabled: true,
      healthCheckProtocol: 'HTTP',
      healthCheckPort: String(props.healthPort),
      healthCheckPath: '/',
      healthCheckIntervalSeconds: 10,
      healthyThresholdCount: 3,
      unhealthyThresholdCount: 3,
      targetGroupAttributes: [
        { key: 'deregistration_delay.timeout_seconds', value: String(deregistrationSeconds) },
        // GWLB accepts these two only together and with the same value.
        { key: 'target_failover.on_deregistration', value: failover },
        { key: 'target_failover.on_unhealthy', value: failover },
        ...stickinessAttributes(props.stickiness ?? '5-tuple'),
      ],
    });
    this.listener = new elbv2.CfnListener(this, 'Listener', {
      loadBalancerArn: this.loadBalancer.ref,
      // A GWLB listener has no port or protocol: it forwards everything.
      defaultActions: [{ type: 'forward', targetGroupArn: this.targetGroup.ref }],
      // A listener attribute on GWLB (not the target group's).
      listenerAttributes: [{ key: 'tcp.idle_timeout.seconds', value: String(this.tcpIdleTimeoutSeconds) }],
    });
  }
}

/** 5-tuple is GWLB's hashing without stickiness; the others are stickiness types. */
function stickinessAttributes(stickiness: FlowStickiness): elbv2.CfnTargetGroup.TargetGroupAttributeProperty[] {
  switch (stickiness) {
    case '5-tuple':
      return [{ key: 'stickiness.enabled', value: 'false' }];
    case '3-tuple':
      return [
        { key: 'stickiness.enabled', value: 'true' },
        { key: 'stickiness.type', value: 'source_ip_dest_ip_proto' },
      ];
    case '2-tuple':
      return [
        { key: 'stickiness.enabled', value: 'true' },
        { key: 'stickiness.type', value: 'source_ip_dest_ip' },
      ];
  }
}
