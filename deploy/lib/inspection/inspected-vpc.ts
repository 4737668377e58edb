/**
 * A consumer VPC whose internet traffic crosses the inspection fleet, in the
 * one-arm design of seed 000: GWLB endpoints in their own subnets, app
 * subnets' default route to the endpoint of their AZ, and the way back through
 * the same endpoint:
 *
 *   internet-gateway: app subnets have public addresses; the endpoint
 *     subnets route 0.0.0.0/0 to the internet gateway, and an edge route
 *     table on the internet gateway sends each app subnet's CIDR to the
 *     endpoint of its AZ (ingress routing).
 *   nat-gateway: app subnets are private; the endpoint subnets route
 *     0.0.0.0/0 to the NAT gateway of their AZ, and the NAT's (public)
 *     subnets send the app subnets' CIDRs back to the endpoint.
 */
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { Construct } from 'constructs';
import type { ServiceToAccept } from '../shared/endpoint-acceptance';
import { addFlowLogs } from '../shared/flow-logs';
import { GatewayEndpoints } from './gwlb-endpoints';

export type InspectedEgress = 'internet-gateway' | 'nat-gateway';
export const INSPECTED_EGRESS: readonly InspectedEgress[] = ['internet-gateway', 'nat-gateway'];

export interface InspectedVpcProps {
  /** The inspection fleet's endpoint service name. */
  readonly serviceName: string;
  /** Accept the endpoints on the service (same account, acceptance required). */
  readonly acceptWith?: ServiceToAccept;
  /** @default 'internet-gateway' */
  readonly egress?: InspectedEgress;
  /** @default 10.1.0.0/16 */
  readonly cidr?: string;
  /** @default 2 */
  readonly maxAzs?: number;
}

export const APP_SUBNETS = 'App';
export const ENDPOINT_SUBNETS = 'Endpoint';
const NAT_SUBNETS = 'Public';

export class InspectedVpc extends Construct {
  readonly vpc: ec2.Vpc;
  readonly endpoints: GatewayEndpoints;
  readonly appSubnets: ec2.ISubnet[];
  /** The internet gateway's edge route table (internet-gateway egress only). */
  readonly edgeRouteTable?: ec2.CfnRouteTable;

  constructor(scope: Construct, id: string, props: InspectedVpcProps) {
    super(scope, id);
    const egress = props.egress ?? 'internet-gateway';
    const maxAzs = props.maxAzs ?? 2;
    this.vpc = new ec2.Vpc(this, 'Vpc', {
      ipAddresses: ec2.IpAddresses.cidr(props.cidr ?? '10.1.0.0/16'),
      maxAzs,
      natGateways: egress === 'nat-gateway' ? maxAzs : 0,
      subnetConfiguration:
        egress === 'nat-gateway'
          ? [
              { name: NAT_SUBNETS, subnetType: ec2.SubnetType.PUBLIC, cidrMask: 28 },
              { name: ENDPOINT_SUBNETS, subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS, cidrMask: 28 },
              // Isolated: no default route from CDK; ours goes to the endpoint.
              { name: APP_SUBNETS, subnetType: ec2.SubnetType.PRIVATE_ISOLATED, cidrMask: 24 },
            ]
          : [
              { name: ENDPOINT_SUBNETS, subnetType: ec2.SubnetType.PUBLIC, cidrMask: 28 },
              { name: APP_SUBNETS, subnetType: ec2.SubnetType.PRIVATE_ISOLATED, cidrMask: 24 },
            ],
    });
    addFlowLogs(this.vpc);
    this.endpoints = new GatewayEndpoints(this, 'Endpoints', {
      vpc: this.vpc,
      subnets: this.vpc.selectSubnets({ subnetGroupName: ENDPOINT_SUBNETS }).subnets,
      serviceName: props.serviceName,
      acceptWith: props.acceptWith,
    });
    this.appSubnets = this.vpc.selectSubnets({ subnetGroupName: APP_SUBNETS }).subnets;
    this.appSubnets.forEach((subnet, index) => {
      this.endpoints.routeThrough(this, `AppDefaultRoute${index + 1}`, subnet, '0.0.0.0/0');
    });

    if (egress === 'internet-gateway') {
      for (const subnet of this.appSubnets) {
        // Public addresses on app hosts: the internet gateway maps them, and the
        // edge route brings their answers back through the endpoint.
        (subnet.node.defaultChild as ec2.CfnSubnet).mapPublicIpOnLaunch = true;
      }
      this.edgeRouteTable = this.addEdgeRoutes();
    } else {
      const natSubnets = this.vpc.selectSubnets({ subnetGroupName: NAT_SUBNETS }).subnets;
      natSubnets.forEach((natSubnet, index) => {
        this.appSubnets
          .filter((app) => app.availabilityZone === natSubnet.availabilityZone)
          .forEach((app, a) => {
            this.endpoints.routeThrough(this, `ReturnRoute${index + 1}x${a + 1}`, natSubnet, app.ipv4CidrBlock);
          });
      });
    }
  }

  /** The internet gateway's own route table: app subnet CIDR -> its AZ's endpoint. */
  private addEdgeRoutes(): ec2.CfnRouteTable {
    const table = new ec2.CfnRouteTable(this, 'EdgeRouteTable', { vpcId: this.vpc.vpcId });
    this.appSubnets.forEach((subnet, index) => {
      this.endpoints.route(this, `EdgeRoute${index + 1}`, table.ref, subnet.availabilityZone, subnet.ipv4CidrBlock);
    });
    const association = new ec2.CfnGatewayRouteTableAssociation(this, 'EdgeAssociation', {
      gatewayId: this.vpc.internetGatewayId ?? '',
      routeTableId: table.ref,
    });
    // The gateway must be attached to this VPC first, or CloudFormation may
    // run both at once and the association fails (the gateway is in no VPC yet).
    // (internetConnectivityEstablished names the gateway, not its attachment: the attachment is CDK's 'VPCGW'.)
    const attachment = this.vpc.node.tryFindChild('VPCGW');
    association.node.addDependency(attachment ?? this.vpc.internetConnectivityEstablished);
    return table;
  }
}
