/**
 * cdk-nag v3 through CDK's own validation API: the AwsSolutions pack runs when
 * the app synthesises, and any finding not acknowledged stops the synth.
 * Every acknowledgement goes through acknowledge() so each one carries a
 * reason a reviewer can judge.
 */
import { Validations, type App } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { IConstruct } from 'constructs';

/** Shortest reason accepted: long enough that "ok" or "n/a" do not pass. */
const MIN_REASON_LENGTH = 20;

export function addNagChecks(app: App): void {
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
}

/** Acknowledges one AwsSolutions rule (or one finding, "Rule[Finding]") on `scope` and below. */
export function acknowledge(scope: IConstruct, id: string, reason: string): void {
  if (reason.trim().length < MIN_REASON_LENGTH) {
    throw new Error(`Expected a reason of at least ${MIN_REASON_LENGTH} characters for ${id} but received "${reason}"`);
  }
  Validations.of(scope).acknowledge({ id, reason });
}
