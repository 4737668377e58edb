/**
 * Entry point of the example app, for `npm run synth` (no CDK CLI needed) and
 * for the CDK CLI (cdk.json: `npx aws-cdk deploy ...`). The CLI passes
 * context and the output folder in the environment, which App reads; run
 * directly, `-c key=value` arguments are read here the way the CLI reads them.
 */
import { buildGatehouseApp } from '../lib/app/build-app';

function contextFromArgs(args: readonly string[]): Record<string, string> {
  const context: Record<string, string> = {};
  for (let i = 0; i < args.length; i++) {
    if (args[i] !== '-c' && args[i] !== '--context') continue;
    const pair = args[++i] ?? '';
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new Error(`Expected key=value for ${args[i - 1]} but received "${pair}"`);
    context[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return context;
}

const built = buildGatehouseApp({
  context: contextFromArgs(process.argv.slice(2)),
  outdir: process.env.CDK_OUTDIR ?? 'cdk.out',
});
const assembly = built.app.synth();
for (const stack of assembly.stacks) {
  process.stdout.write(`${stack.stackName}: ${stack.templateFullPath}\n`);
}
