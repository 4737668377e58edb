/**
 * GatehouseCentralInspection: an inspection VPC on a Transit Gateway
 * (appliance mode), the fleet inside it, and the GWLB endpoints the spokes'
 * traffic crosses. Without a transitGatewayId the stack creates a TGW with
 * no default route table association or propagation: spokes and routes are
 * set up by its owner (README "Deploy").
 */
import { CfnOutput, Stack, type StackProps } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import type { Construct } from 'constructs';
import { CentralInspectionVpc } from '../inspection/central-inspection-vpc';
import { InspectionFleet } from '../inspection/inspection-fleet';
import type { GatehouseAppParameters } from './context';
import { acceptance, applianceSettings } from './shared-parts';

export interface CentralInspectionStackProps extends StackProps {
  readonly params: GatehouseAppParameters;
  readonly packageTarball: string;
}

export class CentralInspectionStack extends Stack {
  readonly central: CentralInspectionVpc;
  readonly fleet: InspectionFleet;

  constructor(scope: Construct, id: string, props: CentralInspectionStackProps) {
    super(scope, id, props);
    const { params } = props;
    const transitGatewayId = params.transitGatewayId ?? this.createTransitGateway();
    this.central = new CentralInspectionVpc(this, 'Central', { transitGatewayId, spokeCidrs: params.spokeCidrs });
    this.fleet = new InspectionFleet(this, 'Fleet', {
      vpc: this.central.vpc,
      subnets: this.central.applianceSubnets,
      ...applianceSettings(params, props.packageTarball),
    });
    const endpoints = this.central.attachEndpoints(
      this.fleet.endpointService.serviceName,
      acceptance(params, this.fleet.endpointService),
    );
    // The endpoints only after the service and its allowed principals exist.
    endpoints.node.addDependency(this.fleet.endpointService);
    new CfnOutput(this, 'TransitGatewayId', { value: transitGatewayId });
    new CfnOutput(this, 'InspectionAttachmentId', { value: this.central.attachment.ref });
  }

  private createTransitGateway(): string {
    const tgw = new ec2.CfnTransitGateway(this, 'TransitGateway', {
      description: 'gatehouse centralised inspection',
      defaultRouteTableAssociation: 'disable',
      defaultRouteTablePropagation: 'disable',
      autoAcceptSharedAttachments: 'disable',
    });
    return tgw.ref;
  }
}
