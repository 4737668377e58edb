/**
 * Test helpers: apps with cdk-nag on and their output in a temporary folder,
 * a stand-in package tarball (the real `npm pack` runs in `npm run synth`),
 * and readers for what synth produced (templates' joined strings, nag
 * findings, acknowledgements).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { App, Stack, Validations } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import type { IConstruct } from 'constructs';
import { AwsSolutionsChecks } from 'cdk-nag';
import { addNagChecks } from '../lib/shared/nag';

/** A folder removed when the test ends. */
export function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-deploy-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A few bytes standing in for `npm pack`'s tarball: the asset only needs a file. */
export function fakeTarball(dir: string): string {
  const path = join(dir, 'gatehouse-0.0.0-test.tgz');
  writeFileSync(path, 'not a real tarball: tests only stage it as an asset\n');
  return path;
}

/** An app with the AwsSolutions checks registered, as the example app has, writing into `dir`. */
export function nagApp(dir: string, context: Record<string, unknown> = {}): App {
  const app = new App({ outdir: join(dir, 'cdk.out'), context });
  addNagChecks(app);
  return app;
}

/** A stack with a two-AZ VPC (public + private with egress), environment-agnostic like the example's. */
export function stackWithVpc(app: App, id: string): { stack: Stack; vpc: ec2.Vpc } {
  const stack = new Stack(app, id);
  const vpc = new ec2.Vpc(stack, 'Vpc', { maxAzs: 2, natGateways: 1 });
  // Not under test here: flow logs are the example app's (its test checks nag on them).
  Validations.of(vpc).acknowledge({ id: 'AwsSolutions-VPC7', reason: 'test VPC: flow logs are the example app test subject' });
  return { stack, vpc };
}

/** AwsSolutions findings not acknowledged, as "rule at path" lines (empty when clean). */
export function nagFindings(scope: IConstruct): string[] {
  const result = new AwsSolutionsChecks().validateScope(scope);
  return result.violations.flatMap((v) => v.violatingResources.map((r) => `${v.ruleName} at ${r.constructPath}`));
}

/** Every acknowledgement recorded in the tree: rule id, reason and where. */
export function acknowledgements(scope: IConstruct): { id: string; reason: unknown; path: string }[] {
  const found: { id: string; reason: unknown; path: string }[] = [];
  for (const node of scope.node.findAll()) {
    for (const entry of node.node.metadata) {
      if (entry.type !== Validations.ACKNOWLEDGED_RULES_METADATA_KEY) continue;
      for (const [id, reason] of Object.entries(entry.data as Record<string, unknown>)) {
        found.push({ id, reason, path: node.node.path });
      }
    }
  }
  return found;
}

/**
 * A template value as text: strings as they are, Fn::Join joined, Fn::Base64
 * unwrapped, and any other intrinsic (Ref, GetAtt, Select) as a placeholder
 * word that is valid in shell, so a rendered script can go through `bash -n`.
 */
export function joinedText(value: unknown): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number') return String(value);
  if (value !== null && typeof value === 'object') {
    const record = value as Record<string, unknown>;
    if ('Fn::Base64' in record) return joinedText(record['Fn::Base64']);
    const join = record['Fn::Join'];
    if (Array.isArray(join) && typeof join[0] === 'string' && Array.isArray(join[1])) {
      return join[1].map(joinedText).join(join[0]);
    }
  }
  return 'CFN_VALUE';
}
