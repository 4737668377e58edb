import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import { EgressProxyConsumer } from '../lib/proxy/egress-proxy-consumer';
import { EgressProxyFleet } from '../lib/proxy/egress-proxy-fleet';
import { addFlowLogs } from '../lib/shared/flow-logs';
import { repoFile } from '../lib/shared/repo-files';
import { nagApp, nagFindings, stackWithVpc, tempDir } from './helpers';

function proxyStack(t: Parameters<typeof tempDir>[0], accept: boolean) {
  const app = nagApp(tempDir(t));
  const { stack, vpc } = stackWithVpc(app, 'Test');
  const policy = repoFile('examples/proxy/egress-allowlist.yaml');
  const proxy = new EgressProxyFleet(stack, 'Proxy', {
    vpc,
    image: ecs.ContainerImage.fromRegistry('gatehouse:test'),
    policy,
    allowedPrincipals: ['arn:aws:iam::123456789012:root'],
  });
  const consumerVpc = new ec2.Vpc(stack, 'ConsumerVpc', {
    maxAzs: 2,
    natGateways: 0,
    subnetConfiguration: [{ name: 'Isolated', subnetType: ec2.SubnetType.PRIVATE_ISOLATED }],
  });
  addFlowLogs(consumerVpc);
  new EgressProxyConsumer(stack, 'Consumer', {
    vpc: consumerVpc,
    serviceName: proxy.endpointService.serviceName,
    subnets: { subnetType: ec2.SubnetType.PRIVATE_ISOLATED },
    ...(accept ? { acceptWith: proxy.endpointService } : {}),
  });
  return { template: Template.fromStack(stack), app, policy };
}

/** A load balancer's or target group's attributes as key -> value. */
function attributes(template: Template, type: string, key: string): Record<string, string> {
  const [resource] = Object.values(template.findResources(type)) as { Properties: Record<string, { Key: string; Value: string }[]> }[];
  return Object.fromEntries((resource?.Properties[key] ?? []).map((a) => [a.Key, a.Value]));
}

test('proxy fleet: internal NLB with cross-zone, PROXY v2 target group checked on the health port, 3128 listener', (t) => {
  const { template, app } = proxyStack(t, false);
  template.hasResourceProperties('AWS::ElasticLoadBalancingV2::LoadBalancer', { Type: 'network', Scheme: 'internal' });
  assert.equal(
    attributes(template, 'AWS::ElasticLoadBalancingV2::LoadBalancer', 'LoadBalancerAttributes')['load_balancing.cross_zone.enabled'],
    'true',
  );
  template.hasResourceProperties('AWS::ElasticLoadBalancingV2::Listener', { Port: 3128, Protocol: 'TCP' });
  template.hasResourceProperties('AWS::ElasticLoadBalancingV2::TargetGroup', {
    Port: 3128,
    Protocol: 'TCP',
    TargetType: 'ip',
    HealthCheckProtocol: 'HTTP',
    HealthCheckPort: '9090',
    HealthCheckPath: '/',
  });
  const tg = attributes(template, 'AWS::ElasticLoadBalancingV2::TargetGroup', 'TargetGroupAttributes');
  assert.equal(tg['proxy_protocol_v2.enabled'], 'true');
  assert.equal(tg['deregistration_delay.timeout_seconds'], '60');
  assert.deepEqual(nagFindings(app), []);
});

test('proxy tasks: Fargate running `gatehouse proxy` with the policy, non-root, init process, logs; scaling 2..10 at 75 % CPU', (t) => {
  const { template, policy } = proxyStack(t, false);
  template.hasResourceProperties('AWS::ECS::TaskDefinition', {
    RequiresCompatibilities: ['FARGATE'],
    ContainerDefinitions: [
      Match.objectLike({
        Image: 'gatehouse:test',
        User: '10001',
        EntryPoint: ['/bin/sh', '-c'],
        Command: [
          `umask 077 && printf '%s' "$GATEHOUSE_CONFIG" > /tmp/gatehouse-proxy.yaml && exec node /app/dist/src/cli/main.js proxy --policy /tmp/gatehouse-proxy.yaml --listen 0.0.0.0:3128 --health-port 9090 --proxy-protocol --access-log -`,
        ],
        Environment: [{ Name: 'GATEHOUSE_CONFIG', Value: policy }],
        LinuxParameters: Match.objectLike({ InitProcessEnabled: true }),
        PortMappings: [Match.objectLike({ ContainerPort: 3128 }), Match.objectLike({ ContainerPort: 9090 })],
        LogConfiguration: Match.objectLike({ LogDriver: 'awslogs' }),
      }),
    ],
  });
  // No DesiredCount: a deploy must not reset what the scaling chose (the scaling below sets the floor).
  assert.equal(Object.values(template.findResources('AWS::ECS::Service'))[0]?.Properties?.DesiredCount, undefined);
  template.hasResourceProperties('AWS::ECS::Service', {
    LaunchType: 'FARGATE',
    NetworkConfiguration: { AwsvpcConfiguration: Match.objectLike({ AssignPublicIp: 'DISABLED' }) },
  });
  template.hasResourceProperties('AWS::ApplicationAutoScaling::ScalableTarget', {
    MinCapacity: 2,
    MaxCapacity: 10,
    ScalableDimension: 'ecs:service:DesiredCount',
  });
  template.hasResourceProperties('AWS::ApplicationAutoScaling::ScalingPolicy', {
    PolicyType: 'TargetTrackingScaling',
    TargetTrackingScalingPolicyConfiguration: Match.objectLike({
      TargetValue: 75,
      PredefinedMetricSpecification: { PredefinedMetricType: 'ECSServiceAverageCPUUtilization' },
    }),
  });
  template.hasResourceProperties('AWS::Logs::LogGroup', { RetentionInDays: 30 });
  template.hasResourceProperties('AWS::ECS::Cluster', {
    ClusterSettings: [{ Name: 'containerInsights', Value: 'enabled' }],
  });
});

test('proxy endpoint service: NetworkLoadBalancerArns, acceptance required, principals; consumer interface endpoint with 3128 allowed', (t) => {
  const { template } = proxyStack(t, false);
  template.hasResourceProperties('AWS::EC2::VPCEndpointService', {
    AcceptanceRequired: true,
    NetworkLoadBalancerArns: [{ Ref: Match.stringLikeRegexp('LoadBalancer') }],
    GatewayLoadBalancerArns: Match.absent(),
  });
  template.hasResourceProperties('AWS::EC2::VPCEndpointServicePermissions', {
    AllowedPrincipals: ['arn:aws:iam::123456789012:root'],
  });
  template.hasResourceProperties('AWS::EC2::VPCEndpoint', {
    VpcEndpointType: 'Interface',
    PrivateDnsEnabled: false,
    SubnetIds: Match.arrayEquals([{ Ref: Match.stringLikeRegexp('IsolatedSubnet1') }, { Ref: Match.stringLikeRegexp('IsolatedSubnet2') }]),
  });
  template.hasResourceProperties('AWS::EC2::SecurityGroup', {
    GroupDescription: 'gatehouse egress proxy endpoint: port 3128 from the VPC',
    SecurityGroupIngress: [Match.objectLike({ IpProtocol: 'tcp', FromPort: 3128, ToPort: 3128 })],
  });
  template.resourceCountIs('Custom::AWS', 0);
});

test('consumer acceptance: the owner accepts exactly the consumer endpoint, with a role limited to the service', (t) => {
  const { template, app } = proxyStack(t, true);
  const [acceptance] = Object.values(template.findResources('Custom::AWS')) as { Properties: { Create: unknown } }[];
  assert.ok(acceptance);
  const create = JSON.stringify(acceptance.Properties.Create);
  assert.match(create, /acceptVpcEndpointConnections/);
  assert.match(create, /ConsumerEndpoint/);
  template.hasResourceProperties('AWS::IAM::Policy', {
    PolicyDocument: {
      Statement: [{ Action: 'ec2:AcceptVpcEndpointConnections', Effect: 'Allow', Resource: Match.objectLike({ 'Fn::Join': Match.anyValue() }) }],
    },
  });
  assert.deepEqual(nagFindings(app), []);
});
