/**
 * A consumer VPC's side of the egress proxy: an interface endpoint to the
 * fleet's endpoint service, a security group that lets the VPC's hosts reach
 * port 3128 on it, and (when the service is in the same account and requires
 * acceptance) the owner's acceptance of this one endpoint, so a single deploy
 * ends with a working proxy address.
 */
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { Construct } from 'constructs';
import { EndpointAcceptance, type ServiceToAccept } from '../shared/endpoint-acceptance';
import { acknowledge } from '../shared/nag';
import { PROXY_PORT } from './egress-proxy-fleet';

export interface EgressProxyConsumerProps {
  readonly vpc: ec2.IVpc;
  /** `com.amazonaws.vpce.<region>.vpce-svc-...` */
  readonly serviceName: string;
  /**
   * Accept this endpoint's connection on the service (same account only: the
   * call is the service owner's). Give the service's id and ARN to do so.
   */
  readonly acceptWith?: ServiceToAccept;
  /** Who may use the proxy. @default the consumer VPC's CIDR */
  readonly clientPeer?: ec2.IPeer;
  /** @default the VPC's private subnets, one endpoint network interface per AZ */
  readonly subnets?: ec2.SubnetSelection;
}

export class EgressProxyConsumer extends Construct {
  readonly endpoint: ec2.InterfaceVpcEndpoint;
  readonly securityGroup: ec2.SecurityGroup;

  constructor(scope: Construct, id: string, props: EgressProxyConsumerProps) {
    super(scope, id);
    this.securityGroup = new ec2.SecurityGroup(this, 'SecurityGroup', {
      vpc: props.vpc,
      description: 'gatehouse egress proxy endpoint: port 3128 from the VPC',
      allowAllOutbound: false,
    });
    this.securityGroup.addIngressRule(
      props.clientPeer ?? ec2.Peer.ipv4(props.vpc.vpcCidrBlock),
      ec2.Port.tcp(PROXY_PORT),
      'proxy clients',
    );
    if (props.clientPeer === undefined) {
      acknowledge(
        this.securityGroup,
        'AwsSolutions-EC23',
        "The only source is the consumer VPC's own CIDR, a CloudFormation reference, which the rule cannot read.",
      );
    }
    this.endpoint = new ec2.InterfaceVpcEndpoint(this, 'Endpoint', {
      vpc: props.vpc,
      service: new ec2.InterfaceVpcEndpointService(props.serviceName, PROXY_PORT),
      subnets: props.subnets ?? { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS },
      securityGroups: [this.securityGroup],
      // The service has no private DNS name: clients use the endpoint's DNS name.
      privateDnsEnabled: false,
      open: false,
    });
    if (props.acceptWith !== undefined) {
      new EndpointAcceptance(this, 'Acceptance', {
        service: props.acceptWith,
        endpointIds: [this.endpoint.vpcEndpointId],
      });
    }
  }
}
