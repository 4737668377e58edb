import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import { LatticeIngress } from '../lib/ingress/lattice-ingress';
import { repoFile } from '../lib/shared/repo-files';
import { joinedText, nagApp, nagFindings, stackWithVpc, tempDir } from './helpers';

const NETWORK_ARN = 'arn:aws:vpc-lattice:us-east-1:123456789012:servicenetwork/sn-0123456789abcdef0';
const SERVICE_ARN = 'arn:aws:vpc-lattice:us-east-1:123456789012:service/svc-0123456789abcdef0';

function ingressStack(t: Parameters<typeof tempDir>[0], serviceArns?: string[]) {
  const app = nagApp(tempDir(t));
  const { stack, vpc } = stackWithVpc(app, 'Test');
  new LatticeIngress(stack, 'Ingress', {
    vpc,
    image: ecs.ContainerImage.fromRegistry('gatehouse:test'),
    routes: repoFile('examples/ingress/routes.yaml'),
    serviceNetworkIdentifier: NETWORK_ARN,
    serviceNetworkArn: NETWORK_ARN,
    serviceArns,
  });
  return { template: Template.fromStack(stack), app };
}

test('lattice ingress: internet-facing NLB, `gatehouse ingress` tasks checked on /healthz of the health port', (t) => {
  const { template, app } = ingressStack(t);
  template.hasResourceProperties('AWS::ElasticLoadBalancingV2::LoadBalancer', { Type: 'network', Scheme: 'internet-facing' });
  template.hasResourceProperties('AWS::ElasticLoadBalancingV2::Listener', { Port: 80, Protocol: 'TCP' });
  template.hasResourceProperties('AWS::ElasticLoadBalancingV2::TargetGroup', {
    Port: 8080,
    HealthCheckProtocol: 'HTTP',
    HealthCheckPort: '9091',
    HealthCheckPath: '/healthz',
  });
  const [task] = Object.values(template.findResources('AWS::ECS::TaskDefinition')) as {
    Properties: { ContainerDefinitions: { Command: unknown[] }[] };
  }[];
  assert.equal(
    joinedText(task?.Properties.ContainerDefinitions[0]?.Command[0]),
    `umask 077 && printf '%s' "$GATEHOUSE_CONFIG" > /tmp/gatehouse-ingress.yaml && exec node /app/dist/src/cli/main.js ingress --routes /tmp/gatehouse-ingress.yaml --listen 0.0.0.0:8080 --health-port 9091 --proxy-protocol --region 'CFN_VALUE'`,
  );
  template.hasResourceProperties('AWS::ApplicationAutoScaling::ScalableTarget', { MinCapacity: 2, MaxCapacity: 10 });
  // The tasks connect out to HTTPS and HTTP only (Lattice services, ECR, CloudWatch Logs).
  template.hasResourceProperties('AWS::EC2::SecurityGroup', {
    GroupDescription: 'gatehouse ingress tasks: the listener and health ports from the NLB only',
    SecurityGroupEgress: [
      Match.objectLike({ CidrIp: '0.0.0.0/0', IpProtocol: 'tcp', FromPort: 443, ToPort: 443 }),
      Match.objectLike({ CidrIp: '0.0.0.0/0', IpProtocol: 'tcp', FromPort: 80, ToPort: 80 }),
    ],
  });
  assert.deepEqual(nagFindings(app), []);
});

test('lattice ingress: the task role may invoke through the service network only; the VPC joins the network', (t) => {
  const { template } = ingressStack(t);
  template.hasResourceProperties('AWS::IAM::Policy', {
    PolicyDocument: {
      Statement: [
        {
          Action: 'vpc-lattice-svcs:Invoke',
          Effect: 'Allow',
          Resource: { 'Fn::Join': ['', Match.arrayWith([Match.stringLikeRegexp(':service/\\*/\\*$')])] },
          Condition: { StringEquals: { 'vpc-lattice-svcs:ServiceNetworkArn': NETWORK_ARN } },
        },
      ],
    },
    Roles: [{ Ref: Match.stringLikeRegexp('TaskRole') }],
  });
  template.hasResourceProperties('AWS::VpcLattice::ServiceNetworkVpcAssociation', {
    ServiceNetworkIdentifier: NETWORK_ARN,
    VpcIdentifier: { Ref: Match.stringLikeRegexp('Vpc') },
    SecurityGroupIds: [{ 'Fn::GetAtt': [Match.stringLikeRegexp('LatticeSecurityGroup'), 'GroupId'] }],
  });
});

test('lattice ingress: named services narrow Invoke to their request paths', (t) => {
  const { template, app } = ingressStack(t, [SERVICE_ARN]);
  template.hasResourceProperties('AWS::IAM::Policy', {
    PolicyDocument: { Statement: [Match.objectLike({ Action: 'vpc-lattice-svcs:Invoke', Resource: `${SERVICE_ARN}/*` })] },
  });
  assert.deepEqual(nagFindings(app), []);
});
