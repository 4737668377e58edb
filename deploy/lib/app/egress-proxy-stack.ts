/**
 * GatehouseEgressProxy: the proxy fleet and, as its first consumer, a VPC with
 * no route to the internet at all: its hosts reach the internet only through
 * the proxy's endpoint (seed 004).
 */
import { CfnOutput, Fn, Stack, type StackProps } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import type { Construct } from 'constructs';
import { EgressProxyConsumer } from '../proxy/egress-proxy-consumer';
import { EgressProxyFleet, PROXY_PORT } from '../proxy/egress-proxy-fleet';
import { addFlowLogs } from '../shared/flow-logs';
import type { GatehouseAppParameters } from './context';
import { acceptance, allowedPrincipals, fleetImage, fleetVpc, parameterFile } from './shared-parts';

export interface EgressProxyStackProps extends StackProps {
  readonly params: GatehouseAppParameters;
}

export class EgressProxyStack extends Stack {
  readonly proxy: EgressProxyFleet;
  readonly consumer: EgressProxyConsumer;

  constructor(scope: Construct, id: string, props: EgressProxyStackProps) {
    super(scope, id, props);
    const { params } = props;
    this.proxy = new EgressProxyFleet(this, 'Proxy', {
      vpc: fleetVpc(this, '10.0.0.0/16'),
      image: fleetImage(params),
      policy: parameterFile(params.proxyPolicyFile),
      minTasks: params.proxyMinTasks,
      maxTasks: params.proxyMaxTasks,
      acceptanceRequired: params.acceptanceRequired,
      allowedPrincipals: allowedPrincipals(params),
    });
    const consumerVpc = new ec2.Vpc(this, 'ConsumerVpc', {
      ipAddresses: ec2.IpAddresses.cidr('10.2.0.0/16'),
      maxAzs: 2,
      natGateways: 0,
      subnetConfiguration: [{ name: 'Isolated', subnetType: ec2.SubnetType.PRIVATE_ISOLATED, cidrMask: 24 }],
    });
    addFlowLogs(consumerVpc);
    this.consumer = new EgressProxyConsumer(this, 'Consumer', {
      vpc: consumerVpc,
      serviceName: this.proxy.endpointService.serviceName,
      acceptWith: acceptance(params, this.proxy.endpointService),
      subnets: { subnetType: ec2.SubnetType.PRIVATE_ISOLATED },
    });
    // The endpoint only after the service and its allowed principals exist.
    this.consumer.endpoint.node.addDependency(this.proxy.endpointService);
    // "Z123:vpce-...-abc.vpce-svc-....region.vpce.amazonaws.com": the regional name after the colon.
    const dnsName = Fn.select(1, Fn.split(':', Fn.select(0, this.consumer.endpoint.vpcEndpointDnsEntries)));
    new CfnOutput(this, 'ProxyUrl', { value: Fn.join('', ['http://', dnsName, `:${PROXY_PORT}`]) });
    new CfnOutput(this, 'EndpointServiceName', { value: this.proxy.endpointService.serviceName });
  }
}
