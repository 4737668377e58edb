/**
 * A VPC endpoint service (PrivateLink) in front of a Gateway or Network Load
 * Balancer. L1 on purpose: the L2 VpcEndpointService only ever emits
 * NetworkLoadBalancerArns, and a GWLB must be given as GatewayLoadBalancerArns
 * (that property is what makes the service a GatewayLoadBalancer type).
 */
import { Aws, Fn } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { Construct } from 'constructs';

export type LoadBalancerKind = 'gateway' | 'network';

export interface EndpointServiceProps {
  readonly kind: LoadBalancerKind;
  readonly loadBalancerArn: string;
  /**
   * Each consumer endpoint must be accepted by the service owner before traffic
   * flows. On by default: a principal on the allow list can otherwise attach
   * any VPC it owns without the owner seeing it first.
   * @default true
   */
  readonly acceptanceRequired?: boolean;
  /** IAM principals (ARNs, e.g. `arn:aws:iam::123456789012:root`) allowed to create endpoints. @default none */
  readonly allowedPrincipals?: readonly string[];
}

export class EndpointService extends Construct {
  /** `vpce-svc-...` */
  readonly serviceId: string;
  /** `com.amazonaws.vpce.<region>.vpce-svc-...`: what a consumer's endpoint names. */
  readonly serviceName: string;
  /** The service's ARN, for IAM statements about it (accepting connections). */
  readonly serviceArn: string;
  readonly resource: ec2.CfnVPCEndpointService;

  constructor(scope: Construct, id: string, props: EndpointServiceProps) {
    super(scope, id);
    this.resource = new ec2.CfnVPCEndpointService(this, 'Service', {
      acceptanceRequired: props.acceptanceRequired ?? true,
      ...(props.kind === 'gateway'
        ? { gatewayLoadBalancerArns: [props.loadBalancerArn] }
        : { networkLoadBalancerArns: [props.loadBalancerArn] }),
    });
    this.serviceId = this.resource.ref;
    this.serviceName = Fn.join('', ['com.amazonaws.vpce.', Aws.REGION, '.', this.serviceId]);
    this.serviceArn = Fn.join('', [
      'arn:',
      Aws.PARTITION,
      ':ec2:',
      Aws.REGION,
      ':',
      Aws.ACCOUNT_ID,
      ':vpc-endpoint-service/',
      this.serviceId,
    ]);
    const principals = props.allowedPrincipals ?? [];
    if (principals.length > 0) {
      new ec2.CfnVPCEndpointServicePermissions(this, 'Permissions', {
        serviceId: this.serviceId,
        allowedPrincipals: [...principals],
      });
    }
  }
}
