import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { CentralInspectionVpc } from '../lib/inspection/central-inspection-vpc';
import { InspectedVpc, type InspectedVpcProps } from '../lib/inspection/inspected-vpc';
import { nagApp, nagFindings, tempDir } from './helpers';

const SERVICE_NAME = 'com.amazonaws.vpce.us-east-1.vpce-svc-0123456789abcdef0';

interface Route {
  RouteTableId: unknown;
  DestinationCidrBlock: unknown;
  VpcEndpointId?: unknown;
  GatewayId?: unknown;
  NatGatewayId?: unknown;
  TransitGatewayId?: unknown;
}

function routes(template: Template): Route[] {
  return (Object.values(template.findResources('AWS::EC2::Route')) as { Properties: Route }[]).map((r) => r.Properties);
}

/** Logical ids of resources of a type whose id contains `part` (CDK ids name the subnet group). */
function logicalIds(template: Template, type: string, part: string): string[] {
  return Object.keys(template.findResources(type)).filter((id) => id.includes(part));
}

/** A subnet's CIDR as the template gives it (CDK computes them at synth). */
function subnetCidr(template: Template, logicalId: string | undefined): unknown {
  const subnet = template.findResources('AWS::EC2::Subnet')[logicalId ?? ''] as { Properties: { CidrBlock: unknown } } | undefined;
  assert.ok(subnet, `subnet ${logicalId}`);
  return subnet.Properties.CidrBlock;
}

function inspected(t: Parameters<typeof tempDir>[0], props: Partial<InspectedVpcProps> = {}) {
  const dir = tempDir(t);
  const app = nagApp(dir);
  const stack = new Stack(app, 'Test');
  const vpc = new InspectedVpc(stack, 'Inspected', { serviceName: SERVICE_NAME, ...props });
  return { template: Template.fromStack(stack), vpc, findings: nagFindings(app) };
}

test('one-arm (internet gateway): GWLB endpoint per AZ, app 0.0.0.0/0 -> endpoint, endpoint subnets -> IGW, edge table back through the endpoint', (t) => {
  const { template, findings } = inspected(t);
  template.resourceCountIs('AWS::EC2::VPCEndpoint', 2);
  template.allResourcesProperties('AWS::EC2::VPCEndpoint', {
    VpcEndpointType: 'GatewayLoadBalancer',
    ServiceName: SERVICE_NAME,
    SubnetIds: [{ Ref: Match.stringLikeRegexp('EndpointSubnet') }],
  });
  const all = routes(template);
  const endpointIds = logicalIds(template, 'AWS::EC2::VPCEndpoint', 'Endpoint');
  const appTables = logicalIds(template, 'AWS::EC2::RouteTable', 'AppSubnet');
  assert.equal(appTables.length, 2);
  appTables.forEach((table, i) => {
    const defaults = all.filter((r) => JSON.stringify(r.RouteTableId) === JSON.stringify({ Ref: table }));
    // Exactly one route in an app table: everything leaves through its AZ's endpoint.
    assert.deepEqual(defaults, [
      { RouteTableId: { Ref: table }, DestinationCidrBlock: '0.0.0.0/0', VpcEndpointId: { Ref: endpointIds[i] } },
    ]);
  });
  for (const table of logicalIds(template, 'AWS::EC2::RouteTable', 'EndpointSubnet')) {
    const own = all.filter((r) => JSON.stringify(r.RouteTableId) === JSON.stringify({ Ref: table }));
    assert.deepEqual(own.map((r) => [r.DestinationCidrBlock, Object.keys(r.GatewayId as object)[0]]), [['0.0.0.0/0', 'Ref']]);
    assert.match(JSON.stringify(own[0]?.GatewayId), /IGW/);
  }
  // The edge route table: each app subnet's CIDR back to its own AZ's endpoint, associated with the IGW.
  const [edgeTable] = logicalIds(template, 'AWS::EC2::RouteTable', 'EdgeRouteTable');
  assert.ok(edgeTable);
  const edge = all.filter((r) => JSON.stringify(r.RouteTableId) === JSON.stringify({ Ref: edgeTable }));
  const appSubnets = logicalIds(template, 'AWS::EC2::Subnet', 'AppSubnet');
  assert.deepEqual(
    edge,
    appSubnets.map((subnet, i) => ({
      RouteTableId: { Ref: edgeTable },
      DestinationCidrBlock: subnetCidr(template, subnet),
      VpcEndpointId: { Ref: endpointIds[i] },
    })),
  );
  template.hasResourceProperties('AWS::EC2::GatewayRouteTableAssociation', {
    GatewayId: { Ref: Match.stringLikeRegexp('IGW') },
    RouteTableId: { Ref: edgeTable },
  });
  // Only once the gateway is attached to the VPC (else CloudFormation may race the two).
  template.hasResource('AWS::EC2::GatewayRouteTableAssociation', { DependsOn: Match.arrayWith([Match.stringLikeRegexp('VPCGW')]) });
  template.hasResourceProperties('AWS::EC2::Subnet', { MapPublicIpOnLaunch: true, Tags: Match.arrayWith([{ Key: 'aws-cdk:subnet-name', Value: 'App' }]) });
  assert.deepEqual(findings, []);
});

test('one-arm (NAT gateway): endpoint subnets -> NAT, NAT subnets send the app CIDR back through the endpoint, no edge table', (t) => {
  const { template, findings } = inspected(t, { egress: 'nat-gateway' });
  const all = routes(template);
  template.resourceCountIs('AWS::EC2::GatewayRouteTableAssociation', 0);
  template.resourceCountIs('AWS::EC2::NatGateway', 2);
  for (const table of logicalIds(template, 'AWS::EC2::RouteTable', 'EndpointSubnet')) {
    const own = all.filter((r) => JSON.stringify(r.RouteTableId) === JSON.stringify({ Ref: table }));
    assert.equal(own.length, 1);
    assert.equal(own[0]?.DestinationCidrBlock, '0.0.0.0/0');
    assert.ok(own[0]?.NatGatewayId !== undefined, 'endpoint subnets leave through NAT');
  }
  const endpointIds = logicalIds(template, 'AWS::EC2::VPCEndpoint', 'Endpoint');
  const appSubnets = logicalIds(template, 'AWS::EC2::Subnet', 'AppSubnet');
  logicalIds(template, 'AWS::EC2::RouteTable', 'PublicSubnet').forEach((table, i) => {
    const back = all.filter(
      (r) => JSON.stringify(r.RouteTableId) === JSON.stringify({ Ref: table }) && r.VpcEndpointId !== undefined,
    );
    assert.deepEqual(back, [
      {
        RouteTableId: { Ref: table },
        DestinationCidrBlock: subnetCidr(template, appSubnets[i]),
        VpcEndpointId: { Ref: endpointIds[i] },
      },
    ]);
  });
  assert.deepEqual(findings, []);
});

test('acceptance: the endpoints are accepted on the service and every route through them waits for it', (t) => {
  const { template } = inspected(t, {
    acceptWith: { serviceId: 'vpce-svc-0123456789abcdef0', serviceArn: 'arn:aws:ec2:us-east-1:123456789012:vpc-endpoint-service/vpce-svc-0123456789abcdef0' },
  });
  const [acceptance] = logicalIds(template, 'Custom::AWS', 'Acceptance');
  assert.ok(acceptance);
  const create = JSON.stringify(template.findResources('Custom::AWS')[acceptance]);
  assert.match(create, /acceptVpcEndpointConnections/);
  template.hasResourceProperties('AWS::IAM::Policy', {
    PolicyDocument: {
      Statement: [
        {
          Action: 'ec2:AcceptVpcEndpointConnections',
          Effect: 'Allow',
          Resource: 'arn:aws:ec2:us-east-1:123456789012:vpc-endpoint-service/vpce-svc-0123456789abcdef0',
        },
      ],
    },
  });
  const throughEndpoint = Object.values(template.findResources('AWS::EC2::Route')).filter(
    (r) => (r as { Properties: Route }).Properties.VpcEndpointId !== undefined,
  ) as { DependsOn?: string[] }[];
  assert.equal(throughEndpoint.length, 4);
  for (const route of throughEndpoint) assert.ok(route.DependsOn?.some((d) => d.includes('Acceptance')));
});

test('centralised: TGW attachment in appliance mode, transit subnets -> endpoint, spokes back to the TGW and through the endpoint from NAT', (t) => {
  const dir = tempDir(t);
  const app = nagApp(dir);
  const stack = new Stack(app, 'Test');
  const central = new CentralInspectionVpc(stack, 'Central', {
    transitGatewayId: 'tgw-0123456789abcdef0',
    spokeCidrs: ['10.10.0.0/16', '10.20.0.0/16'],
  });
  central.attachEndpoints(SERVICE_NAME);
  const template = Template.fromStack(stack);
  template.hasResourceProperties('AWS::EC2::TransitGatewayAttachment', {
    TransitGatewayId: 'tgw-0123456789abcdef0',
    Options: { ApplianceModeSupport: 'enable' },
    SubnetIds: [{ Ref: Match.stringLikeRegexp('TransitSubnet1') }, { Ref: Match.stringLikeRegexp('TransitSubnet2') }],
  });
  const all = routes(template);
  const endpointIds = logicalIds(template, 'AWS::EC2::VPCEndpoint', 'Endpoint');
  logicalIds(template, 'AWS::EC2::RouteTable', 'TransitSubnet').forEach((table, i) => {
    const own = all.filter((r) => JSON.stringify(r.RouteTableId) === JSON.stringify({ Ref: table }));
    assert.deepEqual(own, [{ RouteTableId: { Ref: table }, DestinationCidrBlock: '0.0.0.0/0', VpcEndpointId: { Ref: endpointIds[i] } }]);
  });
  const toTgw = all.filter((r) => r.TransitGatewayId === 'tgw-0123456789abcdef0');
  assert.deepEqual(toTgw.map((r) => r.DestinationCidrBlock).sort(), ['10.10.0.0/16', '10.10.0.0/16', '10.20.0.0/16', '10.20.0.0/16']);
  const fromNat = all.filter(
    (r) => JSON.stringify(r.RouteTableId).includes('PublicSubnet') && r.VpcEndpointId !== undefined,
  );
  assert.equal(fromNat.length, 4);
  // Routes to the TGW wait for the attachment (CloudFormation would try them first otherwise).
  for (const route of Object.values(template.findResources('AWS::EC2::Route', { Properties: { TransitGatewayId: Match.anyValue() } }))) {
    assert.ok((route as { DependsOn?: string[] }).DependsOn?.some((d) => d.includes('Attachment')));
  }
  assert.deepEqual(nagFindings(app), []);
});
