/**
 * The example app: the four stacks, configured from context, with cdk-nag's
 * AwsSolutions checks run on synth.
 */
import { App, type Environment } from 'aws-cdk-lib';
import { addNagChecks } from '../shared/nag';
import { CentralInspectionStack } from './central-inspection-stack';
import { readParameters } from './context';
import { EgressProxyStack } from './egress-proxy-stack';
import { InspectionStack } from './inspection-stack';
import { LatticeIngressStack } from './lattice-ingress-stack';
import { packRepository } from './package-tarball';

export const STACK_NAMES = {
  inspection: 'GatehouseInspection',
  central: 'GatehouseCentralInspection',
  proxy: 'GatehouseEgressProxy',
  ingress: 'GatehouseLatticeIngress',
} as const;

export interface GatehouseAppOptions {
  readonly context?: Record<string, unknown>;
  readonly outdir?: string;
}

export interface GatehouseApp {
  readonly app: App;
  readonly inspection: InspectionStack;
  readonly central: CentralInspectionStack;
  readonly proxy: EgressProxyStack;
  readonly ingress: LatticeIngressStack;
}

export function buildGatehouseApp(options: GatehouseAppOptions = {}): GatehouseApp {
  const app = new App({ context: options.context, outdir: options.outdir });
  addNagChecks(app);
  const params = readParameters(app);
  // No account/region: environment-agnostic stacks, so synth needs no AWS
  // credentials and makes no lookups (AZs and the AMI resolve at deploy time).
  const env: Environment | undefined =
    params.account !== undefined ? { account: params.account, region: params.region } : undefined;
  const packageTarball = params.packageTarball ?? packRepository();
  const description = 'gatehouse (deploy/)';
  return {
    app,
    inspection: new InspectionStack(app, STACK_NAMES.inspection, { env, description, params, packageTarball }),
    central: new CentralInspectionStack(app, STACK_NAMES.central, { env, description, params, packageTarball }),
    proxy: new EgressProxyStack(app, STACK_NAMES.proxy, { env, description, params }),
    ingress: new LatticeIngressStack(app, STACK_NAMES.ingress, { env, description, params }),
  };
}
