import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { Duration, Stack, type CfnElement } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { UNIT_DELIMITER, unitName, type ApplianceMode } from '../lib/inspection/appliance-user-data';
import { InspectionFleet, type InspectionFleetProps } from '../lib/inspection/inspection-fleet';
import { packagingFile, repoFile } from '../lib/shared/repo-files';
import { fakeTarball, joinedText, nagApp, nagFindings, stackWithVpc, tempDir } from './helpers';

type FleetOptions = Omit<InspectionFleetProps, 'vpc' | 'packageTarball'>;

function fleetTemplate(dir: string, options: FleetOptions): { template: Template; fleet: InspectionFleet; findings: string[] } {
  const app = nagApp(dir);
  const { stack, vpc } = stackWithVpc(app, 'Test');
  const fleet = new InspectionFleet(stack, 'Fleet', { vpc, packageTarball: fakeTarball(dir), ...options });
  return { template: Template.fromStack(stack), fleet, findings: nagFindings(app) };
}

/** The user data script as the instance would get it (CloudFormation values as placeholders). */
function userDataOf(template: Template): string {
  const templates = template.findResources('AWS::EC2::LaunchTemplate');
  const [launchTemplate] = Object.values(templates) as { Properties: { LaunchTemplateData: { UserData: unknown } } }[];
  assert.ok(launchTemplate, 'one launch template');
  return joinedText(launchTemplate.Properties.LaunchTemplateData.UserData);
}

/** The text between `cat > <unit path> <<'GATEHOUSE_UNIT'` and the delimiter line. */
function writtenUnit(script: string, mode: ApplianceMode): string {
  const opening = `cat > /etc/systemd/system/${unitName(mode)} <<'${UNIT_DELIMITER}'\n`;
  const start = script.indexOf(opening);
  assert.ok(start >= 0, `user data writes ${unitName(mode)}`);
  const body = script.slice(start + opening.length);
  const end = body.indexOf(`\n${UNIT_DELIMITER}\n`);
  assert.ok(end >= 0, 'the unit heredoc is closed');
  return `${body.slice(0, end)}\n`;
}

/** The target group's attributes as key -> value (their order is not part of the contract). */
function targetGroupAttributes(template: Template): Record<string, string> {
  const groups = Object.values(template.findResources('AWS::ElasticLoadBalancingV2::TargetGroup')) as {
    Properties: { TargetGroupAttributes: { Key: string; Value: string }[] };
  }[];
  assert.equal(groups.length, 1);
  return Object.fromEntries(groups[0]?.Properties.TargetGroupAttributes.map((a) => [a.Key, a.Value]) ?? []);
}

function bashSyntaxCheck(dir: string, script: string): void {
  const path = join(dir, 'user-data.sh');
  writeFileSync(path, script);
  execFileSync('bash', ['-n', path], { stdio: 'pipe' });
}

test('GWLB: gateway type with cross-zone, GENEVE 6081 target group, HTTP health on the health port, failover pair, listener', (t) => {
  const { template, findings } = fleetTemplate(tempDir(t), { mode: 'tunnel', hook: 'route' });
  template.hasResourceProperties('AWS::ElasticLoadBalancingV2::LoadBalancer', {
    Type: 'gateway',
    LoadBalancerAttributes: [{ Key: 'load_balancing.cross_zone.enabled', Value: 'true' }],
  });
  template.hasResourceProperties('AWS::ElasticLoadBalancingV2::TargetGroup', {
    Protocol: 'GENEVE',
    Port: 6081,
    TargetType: 'instance',
    HealthCheckProtocol: 'HTTP',
    HealthCheckPort: '8080',
    HealthCheckPath: '/',
  });
  assert.deepEqual(targetGroupAttributes(template), {
    'deregistration_delay.timeout_seconds': '300',
    'target_failover.on_deregistration': 'rebalance',
    'target_failover.on_unhealthy': 'rebalance',
    'stickiness.enabled': 'false',
  });
  template.hasResourceProperties('AWS::ElasticLoadBalancingV2::Listener', {
    DefaultActions: [{ Type: 'forward', TargetGroupArn: Match.anyValue() }],
    ListenerAttributes: [{ Key: 'tcp.idle_timeout.seconds', Value: '350' }],
  });
  // The health port the target group checks is the one the packaged unit serves.
  assert.match(packagingFile('gatehouse-tunnel.service'), / -p 8080 /);
  assert.deepEqual(findings, []);
});

test('GWLB options: 3-tuple and 2-tuple stickiness, no_rebalance on both failover keys, delay, idle timeout, cross-zone off', (t) => {
  const dir = tempDir(t);
  const three = fleetTemplate(dir, {
    mode: 'tunnel',
    stickiness: '3-tuple',
    targetFailover: 'no_rebalance',
    deregistrationDelay: Duration.seconds(120),
    tcpIdleTimeout: Duration.seconds(1800),
    crossZone: false,
  }).template;
  assert.deepEqual(targetGroupAttributes(three), {
    'deregistration_delay.timeout_seconds': '120',
    'target_failover.on_deregistration': 'no_rebalance',
    'target_failover.on_unhealthy': 'no_rebalance',
    'stickiness.enabled': 'true',
    'stickiness.type': 'source_ip_dest_ip_proto',
  });
  three.hasResourceProperties('AWS::ElasticLoadBalancingV2::LoadBalancer', {
    LoadBalancerAttributes: [{ Key: 'load_balancing.cross_zone.enabled', Value: 'false' }],
  });
  three.hasResourceProperties('AWS::ElasticLoadBalancingV2::Listener', {
    ListenerAttributes: [{ Key: 'tcp.idle_timeout.seconds', Value: '1800' }],
  });
  // The lifecycle hook outlasts the deregistration delay.
  three.hasResourceProperties('AWS::AutoScaling::LifecycleHook', { HeartbeatTimeout: 180 });
  const two = fleetTemplate(dir, { mode: 'tunnel', stickiness: '2-tuple' }).template;
  assert.equal(targetGroupAttributes(two)['stickiness.type'], 'source_ip_dest_ip');
  assert.throws(
    () => fleetTemplate(dir, { mode: 'tunnel', tcpIdleTimeout: Duration.seconds(30) }),
    { message: 'Expected an integer from 60 to 6000 for tcpIdleTimeout but received 30' },
  );
});

test('instances: launch template requires IMDSv2 on AL2023, ASG over 2 AZs in the target group, draining hook', (t) => {
  const { template } = fleetTemplate(tempDir(t), { mode: 'inspect', policy: 'default: deny\n', minCapacity: 2, maxCapacity: 6 });
  template.hasResourceProperties('AWS::EC2::LaunchTemplate', {
    LaunchTemplateData: Match.objectLike({
      MetadataOptions: { HttpTokens: 'required', HttpPutResponseHopLimit: 1 },
      ImageId: { Ref: Match.stringLikeRegexp('al2023') },
      BlockDeviceMappings: [Match.objectLike({ Ebs: Match.objectLike({ Encrypted: true }) })],
    }),
  });
  template.hasResourceProperties('AWS::AutoScaling::AutoScalingGroup', {
    MinSize: '2',
    MaxSize: '6',
    HealthCheckType: 'ELB',
    TargetGroupARNs: [{ Ref: Match.stringLikeRegexp('TargetGroup') }],
    VPCZoneIdentifier: Match.arrayEquals([Match.anyValue(), Match.anyValue()]),
  });
  // A Graviton instance type gets the arm64 AL2023 image.
  const graviton = fleetTemplate(tempDir(t), { mode: 'inspect', policy: 'default: deny\n', instanceType: new ec2.InstanceType('c7g.large') }).template;
  assert.match(JSON.stringify(graviton.findParameters('*')), /\/aws\/service\/ami-amazon-linux-latest\/al2023-ami-kernel-[^"]*-arm64"/);
  assert.doesNotMatch(JSON.stringify(template.findParameters('*')), /arm64/);
  // A changed launch template replaces the appliances one at a time, the others in service.
  template.hasResource('AWS::AutoScaling::AutoScalingGroup', {
    UpdatePolicy: { AutoScalingRollingUpdate: { MaxBatchSize: 1, MinInstancesInService: 2, PauseTime: 'PT10M' } },
  });
  template.hasResourceProperties('AWS::AutoScaling::LifecycleHook', {
    LifecycleTransition: 'autoscaling:EC2_INSTANCE_TERMINATING',
    DefaultResult: 'CONTINUE',
    HeartbeatTimeout: 360,
  });
  // The instances carry the fleet tag the role's condition names.
  template.hasResourceProperties('AWS::AutoScaling::AutoScalingGroup', {
    Tags: Match.arrayWith([Match.objectLike({ Key: 'gatehouse:fleet', PropagateAtLaunch: true })]),
  });
});

test('instance role: SSM core, its own log group, the tarball object, ModifyInstanceAttribute only on instances tagged with this fleet', (t) => {
  const { template, fleet } = fleetTemplate(tempDir(t), { mode: 'tunnel', hook: 'nat' });
  template.hasResourceProperties('AWS::IAM::Role', {
    ManagedPolicyArns: [{ 'Fn::Join': ['', Match.arrayWith([Match.stringLikeRegexp('AmazonSSMManagedInstanceCore')])] }],
  });
  const policies = Object.values(template.findResources('AWS::IAM::Policy')) as {
    Properties: { PolicyDocument: { Statement: { Action: string | string[]; Resource: unknown; Condition?: unknown }[] } };
  }[];
  const statements = policies.flatMap((p) => p.Properties.PolicyDocument.Statement);
  const modify = statements.filter((s) => s.Action === 'ec2:ModifyInstanceAttribute');
  assert.equal(modify.length, 1);
  assert.deepEqual(Object.keys((modify[0]?.Condition as { StringEquals: object }).StringEquals), ['aws:ResourceTag/gatehouse:fleet']);
  assert.match(joinedText(modify[0]?.Resource), /:ec2:CFN_VALUE:CFN_VALUE:instance\/\*$/);
  const getObject = statements.filter((s) => s.Action === 's3:GetObject');
  assert.equal(getObject.length, 1);
  // The one object, not the whole asset bucket.
  assert.match(joinedText(getObject[0]?.Resource), /\/[0-9a-f]{64}\.tgz$/);
  const logs = statements.find((s) => Array.isArray(s.Action) && s.Action.includes('logs:PutLogEvents'));
  const logGroupId = fleet.node.tryFindChild('Logs')?.node.defaultChild;
  assert.ok(logGroupId !== undefined);
  assert.deepEqual(logs?.Resource, { 'Fn::GetAtt': [Stack.of(fleet).getLogicalId(logGroupId as CfnElement), 'Arn'] });
  // The tag in the condition is the tag the group puts on its instances.
  const tagValue = (modify[0]?.Condition as { StringEquals: Record<string, string> }).StringEquals['aws:ResourceTag/gatehouse:fleet'];
  template.hasResourceProperties('AWS::AutoScaling::AutoScalingGroup', {
    Tags: Match.arrayWith([{ Key: 'gatehouse:fleet', Value: tagValue, PropagateAtLaunch: true }]),
  });
});

test('endpoint service: GatewayLoadBalancerArns (not NLB), acceptance required by default, allowed principals', (t) => {
  const { template } = fleetTemplate(tempDir(t), {
    mode: 'tunnel',
    allowedPrincipals: ['arn:aws:iam::123456789012:root'],
  });
  template.hasResourceProperties('AWS::EC2::VPCEndpointService', {
    AcceptanceRequired: true,
    GatewayLoadBalancerArns: [{ Ref: Match.stringLikeRegexp('GatewayLoadBalancer') }],
    NetworkLoadBalancerArns: Match.absent(),
  });
  template.hasResourceProperties('AWS::EC2::VPCEndpointServicePermissions', {
    AllowedPrincipals: ['arn:aws:iam::123456789012:root'],
  });
  template.hasResourceProperties('AWS::EC2::SecurityGroup', {
    SecurityGroupIngress: Match.arrayWith([Match.objectLike({ IpProtocol: 'udp', FromPort: 6081, ToPort: 6081 })]),
  });
});

test('user data (tunnel): passes bash -n, writes packaging/gatehouse-tunnel.service verbatim, installs the hook and the tarball', (t) => {
  const dir = tempDir(t);
  const script = userDataOf(fleetTemplate(dir, { mode: 'tunnel', hook: 'nat' }).template);
  bashSyntaxCheck(dir, script);
  assert.equal(writtenUnit(script, 'tunnel'), packagingFile('gatehouse-tunnel.service'));
  assert.match(script, /^#!\/bin\/bash\n/);
  assert.match(script, /\ndnf install -y nodejs22 nodejs22-npm gcc-c\+\+ make python3 /);
  assert.match(script, /\naws s3 cp --region 'CFN_VALUE' 's3:\/\/CFN_VALUE\/[0-9a-f]{64}\.tgz' \/root\/gatehouse\.tgz\n/);
  assert.match(script, /\nnpm-22 install --global --no-audit --no-fund \/root\/gatehouse\.tgz\n/);
  assert.match(script, /\ninstall -m 755 "\$PKG\/examples\/hooks\/nat\.sh" \/etc\/gatehouse\/hooks\/create\.sh\n/);
  assert.match(script, /\nGATEHOUSE_TUNNEL_ARGS=--gwlb-cidr CFN_VALUE -i 380 --log-format json\nEGRESS_IF=ens5\n/);
  assert.match(script, /--no-source-dest-check/);
  assert.match(script, /\nsystemctl enable --now gatehouse-tunnel$/);
});

test('user data (inspect): passes bash -n, writes packaging/gatehouse-inspect.service and the policy verbatim', (t) => {
  const dir = tempDir(t);
  const policy = repoFile('examples/policies/egress-allowlist.yaml');
  const script = userDataOf(fleetTemplate(dir, { mode: 'inspect', policy }).template);
  bashSyntaxCheck(dir, script);
  assert.equal(writtenUnit(script, 'inspect'), packagingFile('gatehouse-inspect.service'));
  assert.ok(script.includes(`<<'GATEHOUSE_POLICY'\n${policy}GATEHOUSE_POLICY\n`), 'the policy file is written as given');
  assert.doesNotMatch(script, /--no-source-dest-check/);
  assert.match(script, /"file_path": "\/var\/log\/gatehouse\/eve\.json"/);
  // EC2 refuses user data over 16 KiB.
  assert.ok(Buffer.byteLength(script) < 16 * 1024, `user data is ${Buffer.byteLength(script)} bytes`);
  assert.match(script, /\nsystemctl enable --now gatehouse-inspect$/);
});

test('props are checked: inspect needs a policy, subnets in 2 AZs, a policy that would end its heredoc', (t) => {
  const dir = tempDir(t);
  assert.throws(() => fleetTemplate(dir, { mode: 'inspect' }), {
    message: 'Expected a policy (YAML text) in inspect mode for policy but received undefined',
  });
  // A policy that would push the user data past EC2's 16 KiB fails at synth, not at deploy.
  const big = `default: deny\nrules:\n${'  - { id: r, action: allow, host: [a-long-name.example.com] }\n'.repeat(300)}`;
  assert.throws(() => fleetTemplate(dir, { mode: 'inspect', policy: big }), {
    message: /^Expected user data within EC2's 16384 bytes \(a smaller policy: move long domain lists out of it\) for policy but received "\d+ bytes of user data"$/,
  });
  assert.throws(() => fleetTemplate(dir, { mode: 'inspect', policy: 'default: deny\nGATEHOUSE_POLICY\n' }), {
    message: 'Expected file content without a line "GATEHOUSE_POLICY" for /etc/gatehouse/policy.yaml but received one',
  });
  const app = nagApp(dir);
  const { stack } = stackWithVpc(app, 'OneAz');
  const oneAz = new ec2.Vpc(stack, 'OneAzVpc', { maxAzs: 1 });
  assert.throws(
    () => new InspectionFleet(stack, 'Fleet', { vpc: oneAz, packageTarball: fakeTarball(dir), mode: 'tunnel' }),
    { message: /^Expected subnets in at least 2 availability zones for subnets but received \[/ },
  );
});
