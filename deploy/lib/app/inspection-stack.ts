/**
 * GatehouseInspection: the GWLB appliance fleet in its own VPC, and a
 * consumer VPC inspected in the one-arm design (seed 000).
 */
import { CfnOutput, Stack, type StackProps } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import { InspectedVpc } from '../inspection/inspected-vpc';
import { InspectionFleet } from '../inspection/inspection-fleet';
import type { GatehouseAppParameters } from './context';
import { acceptance, applianceSettings, fleetVpc } from './shared-parts';

export interface InspectionStackProps extends StackProps {
  readonly params: GatehouseAppParameters;
  readonly packageTarball: string;
}

export class InspectionStack extends Stack {
  readonly fleet: InspectionFleet;
  readonly inspected: InspectedVpc;

  constructor(scope: Construct, id: string, props: InspectionStackProps) {
    super(scope, id, props);
    const { params } = props;
    const p = params.inspection;
    this.fleet = new InspectionFleet(this, 'Fleet', {
      vpc: fleetVpc(this, '10.0.0.0/16'),
      ...applianceSettings(params, props.packageTarball),
    });
    this.inspected = new InspectedVpc(this, 'Inspected', {
      serviceName: this.fleet.endpointService.serviceName,
      acceptWith: acceptance(params, this.fleet.endpointService),
      egress: p.egress,
    });
    // The endpoints only after the service and its allowed principals exist.
    this.inspected.endpoints.node.addDependency(this.fleet.endpointService);
    new CfnOutput(this, 'EndpointServiceName', { value: this.fleet.endpointService.serviceName });
    new CfnOutput(this, 'InspectedVpcId', { value: this.inspected.vpc.vpcId });
  }
}
