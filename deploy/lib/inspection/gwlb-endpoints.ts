/**
 * One GWLB endpoint (L1: CDK has no GatewayLoadBalancer endpoint L2) per
 * subnet, one subnet per AZ, and a lookup by AZ: every route to "the
 * endpoint" must name the one in its own AZ, or traffic crosses zones and
 * GWLB sees the two directions of a flow at different endpoints.
 */
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { Construct } from 'constructs';
import { EndpointAcceptance, type ServiceToAccept } from '../shared/endpoint-acceptance';
import { expected } from '../shared/validate';

export interface GatewayEndpointsProps {
  readonly vpc: ec2.IVpc;
  /** One subnet per AZ. */
  readonly subnets: ec2.ISubnet[];
  /** `com.amazonaws.vpce.<region>.vpce-svc-...` of the inspection fleet. */
  readonly serviceName: string;
  /**
   * Accept the endpoints on the service (same account, acceptance required);
   * routes through them then wait for the acceptance.
   */
  readonly acceptWith?: ServiceToAccept;
}

export class GatewayEndpoints extends Construct {
  private readonly byZone = new Map<string, ec2.CfnVPCEndpoint>();
  readonly acceptance?: EndpointAcceptance;

  constructor(scope: Construct, id: string, props: GatewayEndpointsProps) {
    super(scope, id);
    props.subnets.forEach((subnet, index) => {
      if (this.byZone.has(subnet.availabilityZone)) {
        throw expected('one subnet per availability zone', 'subnets', subnet.availabilityZone);
      }
      const endpoint = new ec2.CfnVPCEndpoint(this, `Endpoint${index + 1}`, {
        vpcEndpointType: 'GatewayLoadBalancer',
        serviceName: props.serviceName,
        vpcId: props.vpc.vpcId,
        subnetIds: [subnet.subnetId],
      });
      this.byZone.set(subnet.availabilityZone, endpoint);
    });
    if (props.acceptWith !== undefined) {
      this.acceptance = new EndpointAcceptance(this, 'Acceptance', {
        service: props.acceptWith,
        endpointIds: [...this.byZone.values()].map((endpoint) => endpoint.ref),
      });
    }
  }

  /** The endpoint in `availabilityZone`. */
  inZone(availabilityZone: string): ec2.CfnVPCEndpoint {
    const endpoint = this.byZone.get(availabilityZone);
    if (endpoint === undefined) throw expected('an AZ that has a GWLB endpoint', 'availabilityZone', availabilityZone);
    return endpoint;
  }

  /** A route in `subnet`'s table to `destination` through the endpoint in the subnet's AZ. */
  routeThrough(scope: Construct, id: string, subnet: ec2.ISubnet, destination: string): ec2.CfnRoute {
    return this.route(scope, id, subnet.routeTable.routeTableId, subnet.availabilityZone, destination);
  }

  /** A route in any table (an edge route table) to `destination` through the endpoint in `availabilityZone`. */
  route(scope: Construct, id: string, routeTableId: string, availabilityZone: string, destination: string): ec2.CfnRoute {
    const route = new ec2.CfnRoute(scope, id, {
      routeTableId,
      destinationCidrBlock: destination,
      vpcEndpointId: this.inZone(availabilityZone).ref,
    });
    // An endpoint pending acceptance forwards nothing: route only once it is accepted.
    if (this.acceptance !== undefined) route.node.addDependency(this.acceptance);
    return route;
  }
}
