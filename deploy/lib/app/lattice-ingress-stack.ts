/**
 * GatehouseLatticeIngress: the public entrance to VPC Lattice services
 * (seed 002). Without serviceNetworkArn the stack creates an IAM-authorised
 * service network for the services to join, whose auth policy lets the
 * ingress tasks invoke (the services' own auth policies still apply).
 */
import { CfnOutput, Stack, type StackProps } from 'aws-cdk-lib';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import * as lattice from 'aws-cdk-lib/aws-vpclattice';
import type { Construct } from 'constructs';
import { LatticeIngress } from '../ingress/lattice-ingress';
import type { GatehouseAppParameters } from './context';
import { fleetImage, fleetVpc, parameterFile } from './shared-parts';

export interface LatticeIngressStackProps extends StackProps {
  readonly params: GatehouseAppParameters;
}

export class LatticeIngressStack extends Stack {
  readonly ingress: LatticeIngress;

  constructor(scope: Construct, id: string, props: LatticeIngressStackProps) {
    super(scope, id, props);
    const { params } = props;
    const created = params.serviceNetworkArn === undefined ? new lattice.CfnServiceNetwork(this, 'ServiceNetwork', { authType: 'AWS_IAM' }) : null;
    const network = params.serviceNetworkArn ?? (created as lattice.CfnServiceNetwork).attrArn;
    this.ingress = new LatticeIngress(this, 'Ingress', {
      vpc: fleetVpc(this, '10.3.0.0/16'),
      image: fleetImage(params),
      routes: parameterFile(params.routesFile),
      // Lattice takes an ARN wherever it takes an id.
      serviceNetworkIdentifier: network,
      serviceNetworkArn: network,
      serviceArns: params.serviceArns,
      certificates:
        params.certificateArn === undefined ? undefined : [elbv2.ListenerCertificate.fromArn(params.certificateArn)],
    });
    if (created !== null) {
      // An IAM-authorised network with no auth policy denies every request:
      // the network this stack creates lets the ingress tasks (and only them) invoke.
      new lattice.CfnAuthPolicy(this, 'ServiceNetworkAuthPolicy', {
        resourceIdentifier: created.attrId,
        policy: {
          Version: '2012-10-17',
          Statement: [
            {
              Effect: 'Allow',
              Principal: { AWS: this.ingress.fleet.taskDefinition.taskRole.roleArn },
              Action: 'vpc-lattice-svcs:Invoke',
              Resource: '*',
            },
          ],
        },
      });
    }
    new CfnOutput(this, 'IngressDnsName', { value: this.ingress.fleet.loadBalancer.loadBalancerDnsName });
    new CfnOutput(this, 'ServiceNetworkArn', { value: network });
  }
}
