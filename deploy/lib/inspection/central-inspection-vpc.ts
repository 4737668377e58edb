/**
 * The centralised design: one inspection VPC attached to a Transit Gateway
 * that all spoke VPCs use. Traffic from a spoke arrives on the attachment's
 * subnets, goes to the GWLB endpoint of that AZ, then (inspected) to the
 * internet through NAT, or back to the TGW toward another spoke; answers come
 * back the same way. The attachment is in appliance mode, so the TGW keeps
 * both directions of a flow in one AZ (one endpoint, one appliance) even
 * when the spokes use different AZs.
 *
 * The appliances themselves (InspectionFleet) go in this VPC's Appliance
 * subnets; with the nat hook they NAT on their own (two-arm).
 * Spoke attachments and TGW route tables (spokes: 0.0.0.0/0 -> this
 * attachment; this attachment: spoke CIDRs -> spokes) are the TGW owner's.
 */
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { Construct } from 'constructs';
import type { ServiceToAccept } from '../shared/endpoint-acceptance';
import { addFlowLogs } from '../shared/flow-logs';
import { expected } from '../shared/validate';
import { GatewayEndpoints } from './gwlb-endpoints';

export const APPLIANCE_SUBNETS = 'Appliance';
const PUBLIC_SUBNETS = 'Public';
const ENDPOINT_SUBNETS = 'Endpoint';
const TRANSIT_SUBNETS = 'Transit';

export interface CentralInspectionVpcProps {
  readonly transitGatewayId: string;
  /** The spokes' CIDRs: routed back to the TGW after inspection. */
  readonly spokeCidrs: readonly string[];
  /** @default 10.100.0.0/16 */
  readonly cidr?: string;
  /** @default 2 */
  readonly maxAzs?: number;
}

export class CentralInspectionVpc extends Construct {
  readonly vpc: ec2.Vpc;
  readonly attachment: ec2.CfnTransitGatewayAttachment;
  private readonly transitGatewayId: string;
  private readonly spokeCidrs: readonly string[];

  constructor(scope: Construct, id: string, props: CentralInspectionVpcProps) {
    super(scope, id);
    if (props.spokeCidrs.length === 0) throw expected('at least one spoke CIDR', 'spokeCidrs', props.spokeCidrs);
    this.transitGatewayId = props.transitGatewayId;
    this.spokeCidrs = props.spokeCidrs;
    const maxAzs = props.maxAzs ?? 2;
    this.vpc = new ec2.Vpc(this, 'Vpc', {
      ipAddresses: ec2.IpAddresses.cidr(props.cidr ?? '10.100.0.0/16'),
      maxAzs,
      natGateways: maxAzs,
      subnetConfiguration: [
        { name: PUBLIC_SUBNETS, subnetType: ec2.SubnetType.PUBLIC, cidrMask: 28 },
        { name: ENDPOINT_SUBNETS, subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS, cidrMask: 28 },
        { name: APPLIANCE_SUBNETS, subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS, cidrMask: 24 },
        { name: TRANSIT_SUBNETS, subnetType: ec2.SubnetType.PRIVATE_ISOLATED, cidrMask: 28 },
      ],
    });
    addFlowLogs(this.vpc);
    this.attachment = new ec2.CfnTransitGatewayAttachment(this, 'Attachment', {
      transitGatewayId: props.transitGatewayId,
      vpcId: this.vpc.vpcId,
      subnetIds: this.vpc.selectSubnets({ subnetGroupName: TRANSIT_SUBNETS }).subnetIds,
      options: { ApplianceModeSupport: 'enable' },
    });
  }

  /** The appliances' subnets (one per AZ), for InspectionFleet. */
  get applianceSubnets(): ec2.SubnetSelection {
    return { subnetGroupName: APPLIANCE_SUBNETS };
  }

  /**
   * GWLB endpoints of the fleet's service and the routes through them. A
   * separate step because the service belongs to a fleet built in this VPC.
   */
  attachEndpoints(serviceName: string, acceptWith?: ServiceToAccept): GatewayEndpoints {
    const endpoints = new GatewayEndpoints(this, 'Endpoints', {
      vpc: this.vpc,
      subnets: this.vpc.selectSubnets({ subnetGroupName: ENDPOINT_SUBNETS }).subnets,
      serviceName,
      acceptWith,
    });
    const transit = this.vpc.selectSubnets({ subnetGroupName: TRANSIT_SUBNETS }).subnets;
    transit.forEach((subnet, index) => {
      endpoints.routeThrough(this, `TransitDefaultRoute${index + 1}`, subnet, '0.0.0.0/0');
    });
    const endpointSubnets = this.vpc.selectSubnets({ subnetGroupName: ENDPOINT_SUBNETS }).subnets;
    const publicSubnets = this.vpc.selectSubnets({ subnetGroupName: PUBLIC_SUBNETS }).subnets;
    this.spokeCidrs.forEach((cidr, c) => {
      endpointSubnets.forEach((subnet, index) => {
        // Inspected traffic toward a spoke goes back to the TGW.
        const route = new ec2.CfnRoute(this, `SpokeRoute${c + 1}x${index + 1}`, {
          routeTableId: subnet.routeTable.routeTableId,
          destinationCidrBlock: cidr,
          transitGatewayId: this.transitGatewayId,
        });
        route.node.addDependency(this.attachment);
      });
      // Answers from the internet (through NAT) go through the endpoint again.
      publicSubnets.forEach((subnet, index) => {
        endpoints.routeThrough(this, `ReturnRoute${c + 1}x${index + 1}`, subnet, cidr);
      });
    });
    return endpoints;
  }
}
