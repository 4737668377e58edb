import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { Template } from 'aws-cdk-lib/assertions';
import { buildGatehouseApp, STACK_NAMES } from '../lib/app/build-app';
import { acknowledgements, fakeTarball, nagFindings, tempDir } from './helpers';

test('example app: all four stacks synthesise offline with cdk-nag (AwsSolutions) clean and the image as an asset (no Docker)', (t) => {
  const dir = tempDir(t);
  const outdir = join(dir, 'cdk.out');
  const built = buildGatehouseApp({ context: { packageTarball: fakeTarball(dir) }, outdir });
  // The registered plugin fails synth on any finding not acknowledged; the
  // direct call names them if there are any.
  assert.deepEqual(nagFindings(built.app), []);
  const assembly = built.app.synth();
  assert.deepEqual(assembly.stacks.map((s) => s.stackName).sort(), Object.values(STACK_NAMES).sort());
  // Synth staged the Docker build context (what the Dockerfile copies) and built nothing.
  const contexts = readdirSync(outdir).filter((entry) => entry.startsWith('asset.') && existsSync(join(outdir, entry, 'Dockerfile')));
  assert.equal(contexts.length, 1, 'one image asset, shared by the proxy and ingress stacks');
  const imageDir = join(outdir, contexts[0] ?? '');
  assert.deepEqual(readdirSync(imageDir).sort(), ['.dockerignore', 'Dockerfile', 'binding.gyp', 'native', 'package-lock.json', 'package.json', 'src', 'tsconfig.json']);
  assert.ok(!existsSync(join(imageDir, 'node_modules')));
});

test('example app: every acknowledgement of a nag rule carries a reason', (t) => {
  const dir = tempDir(t);
  const built = buildGatehouseApp({
    context: { packageTarball: fakeTarball(dir), image: 'gatehouse:test' },
    outdir: join(dir, 'cdk.out'),
  });
  const found = acknowledgements(built.app);
  assert.ok(found.length > 0);
  for (const { id, reason, path } of found) {
    assert.equal(typeof reason, 'string', `${id} at ${path}`);
    assert.ok((reason as string).trim().length >= 20, `${id} at ${path} has a reason: "${String(reason)}"`);
  }
});

test('example app: context parameters reach the stacks (tunnel mode, hook, 2-tuple, NAT egress, no acceptance, principals)', (t) => {
  const dir = tempDir(t);
  const built = buildGatehouseApp({
    context: {
      packageTarball: fakeTarball(dir),
      image: 'gatehouse:test',
      mode: 'tunnel',
      hook: 'passthrough',
      stickiness: '2-tuple',
      egress: 'nat-gateway',
      acceptanceRequired: 'false',
      allowedPrincipals: 'arn:aws:iam::111122223333:root, arn:aws:iam::444455556666:root',
      proxyMaxTasks: '6',
      transitGatewayId: 'tgw-0123456789abcdef0',
    },
    outdir: join(dir, 'cdk.out'),
  });
  const inspection = Template.fromStack(built.inspection);
  const userData = JSON.stringify(inspection.findResources('AWS::EC2::LaunchTemplate'));
  assert.match(userData, /hooks\/passthrough\.sh/);
  assert.match(userData, /gatehouse-tunnel\.service/);
  inspection.hasResourceProperties('AWS::EC2::VPCEndpointService', { AcceptanceRequired: false });
  inspection.hasResourceProperties('AWS::EC2::VPCEndpointServicePermissions', {
    AllowedPrincipals: [
      { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':iam::', { Ref: 'AWS::AccountId' }, ':root']] },
      'arn:aws:iam::111122223333:root',
      'arn:aws:iam::444455556666:root',
    ],
  });
  inspection.resourceCountIs('Custom::AWS', 0);
  inspection.resourceCountIs('AWS::EC2::GatewayRouteTableAssociation', 0);
  const central = Template.fromStack(built.central);
  central.resourceCountIs('AWS::EC2::TransitGateway', 0);
  central.hasResourceProperties('AWS::EC2::TransitGatewayAttachment', { TransitGatewayId: 'tgw-0123456789abcdef0' });
  Template.fromStack(built.proxy).hasResourceProperties('AWS::ApplicationAutoScaling::ScalableTarget', { MaxCapacity: 6 });
});

test('example app: a wrong parameter fails the synth with its name', (t) => {
  const dir = tempDir(t);
  const build = (context: Record<string, unknown>) => () =>
    buildGatehouseApp({ context: { packageTarball: fakeTarball(dir), image: 'x', ...context }, outdir: join(dir, 'out') });
  assert.throws(build({ mode: 'tunel' }), { message: 'Expected one of tunnel, inspect for mode but received "tunel"' });
  assert.throws(build({ stickiness: '4-tuple' }), { message: 'Expected one of 5-tuple, 3-tuple, 2-tuple for stickiness but received "4-tuple"' });
  assert.throws(build({ crossZone: 'yes' }), { message: 'Expected true or false for crossZone but received "yes"' });
  assert.throws(build({ minCapacity: '0' }), { message: 'Expected an integer from 1 to 100 for minCapacity but received 0' });
  assert.throws(build({ account: '123456789012' }), { message: 'Expected account and region together (or neither) for region but received "123456789012"' });
});

test('example app: the service network it creates lets the ingress tasks invoke; consumer endpoints wait for their service and its principals', (t) => {
  const dir = tempDir(t);
  const built = buildGatehouseApp({ context: { packageTarball: fakeTarball(dir), image: 'gatehouse:test' }, outdir: join(dir, 'cdk.out') });
  const ingress = Template.fromStack(built.ingress);
  const networks = Object.keys(ingress.findResources('AWS::VpcLattice::ServiceNetwork'));
  assert.equal(networks.length, 1);
  const taskRoles = Object.keys(ingress.findResources('AWS::IAM::Role', { Properties: { AssumeRolePolicyDocument: { Statement: [{ Principal: { Service: 'ecs-tasks.amazonaws.com' } }] } } }));
  const taskRole = taskRoles.find((id) => /TaskTaskRole/.test(id));
  assert.ok(taskRole, taskRoles.join(', '));
  ingress.hasResourceProperties('AWS::VpcLattice::AuthPolicy', {
    ResourceIdentifier: { 'Fn::GetAtt': [networks[0], 'Id'] },
    Policy: {
      Statement: [{ Effect: 'Allow', Principal: { AWS: { 'Fn::GetAtt': [taskRole, 'Arn'] } }, Action: 'vpc-lattice-svcs:Invoke', Resource: '*' }],
    },
  });
  // Given an existing network, its owner's auth policy applies: none is made here.
  const own = buildGatehouseApp({
    context: { packageTarball: fakeTarball(dir), image: 'gatehouse:test', serviceNetworkArn: 'arn:aws:vpc-lattice:us-east-1:111122223333:servicenetwork/sn-0123456789abcdef0' },
    outdir: join(dir, 'cdk.out.2'),
  });
  Template.fromStack(own.ingress).resourceCountIs('AWS::VpcLattice::AuthPolicy', 0);

  const permissionsOf = (template: Template) => Object.keys(template.findResources('AWS::EC2::VPCEndpointServicePermissions'));
  for (const [name, stack] of [['inspection', built.inspection], ['central', built.central], ['proxy', built.proxy]] as const) {
    const template = Template.fromStack(stack);
    const permissions = permissionsOf(template);
    assert.equal(permissions.length, 1, `${name}: the service's allowed principals`);
    const endpoints = Object.values(template.findResources('AWS::EC2::VPCEndpoint'));
    assert.ok(endpoints.length > 0, name);
    for (const endpoint of endpoints) assert.ok((endpoint.DependsOn as string[] | undefined)?.includes(permissions[0] as string), `${name}: an endpoint before its service's permissions`);
  }
});
