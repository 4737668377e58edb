#!/usr/bin/env node
/**
 * The `gatehouse` command: one binary, one subcommand per capability.
 */
import { GatehouseError } from '../errors';
import { runEmuCommand, type CommandIo } from '../emu/command';
import { runInspectCommand } from '../inspect/command';
import { runPolicyCommand } from '../inspect/policy';
import { runLabCommand } from './lab-command';
import { runIngressCommand } from '../ingress/command';
import { runProxyCommand } from '../proxy/command';
import { runStart } from './start';
import { runTunnelCommand } from '../tunnel/command';

const HELP = `Usage: gatehouse <command> [options]

Commands:
  emu       a local Gateway Load Balancer: load generator and checker,
            reflector (--echo), and the lab's GWLB (emu gateway)
  tunnel    GWLB target: GENEVE <-> per-endpoint TUN pairs + hook scripts (gwlbtun drop-in)
  inspect   GWLB target with the policy engine in-process: a verdict per flow, EVE logs
  policy    check a policy file, test it against a flow, import a domain list
  proxy     egress forward proxy (HTTP + CONNECT) for NLB + PrivateLink fleets
  ingress   reverse proxy: public host names -> VPC Lattice services, SigV4-signed
  lab       a local AWS network in namespaces: lab up | exec | status | down
  start     bring a lab up, send traffic through it and explain (npm start)
  version   print the version

Run 'gatehouse <command> --help' for a command's options.
`;

function makeIo(): CommandIo {
  const tty = process.stderr.isTTY === true;
  let open = false;
  return {
    stdout: (line) => {
      if (open) process.stderr.write('\n');
      open = false;
      process.stdout.write(line.endsWith('\n') ? line : `${line}\n`);
    },
    stderr: (line) => process.stderr.write(`${line}\n`),
    progress: (line, final) => {
      if (tty) {
        process.stderr.write(`\r\x1b[K${line}${final ? '\n' : ''}`);
        open = !final;
      } else {
        process.stderr.write(`${line}\n`);
      }
    },
  };
}

export async function main(argv: string[]): Promise<number> {
  const io = makeIo();
  const [command, ...rest] = argv;
  switch (command) {
    case 'emu':
      return runEmuCommand(rest, io);
    case 'lab':
      return runLabCommand(rest);
    case 'start':
      return runStart(rest, io);
    case 'version':
    case '--version':
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      io.stdout((require('../../../package.json') as { version: string }).version);
      return 0;
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      io.stdout(HELP);
      return 0;
    case 'tunnel':
      return runTunnelCommand(rest, io);
    case 'inspect':
      return runInspectCommand(rest, io);
    case 'policy':
      return runPolicyCommand(rest, io);
    case 'proxy':
      return runProxyCommand(rest, io);
    case 'ingress':
      return runIngressCommand(rest, io);
    default:
      io.stderr(`gatehouse: unknown command ${JSON.stringify(command)}\n\n${HELP}`);
      return 2;
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      if (err instanceof GatehouseError) {
        process.stderr.write(`gatehouse: ${err.message} [${err.code}]\n`);
        process.exitCode = err.code === 'ERR_USAGE' || err.code === 'ERR_INVALID_ARG' ? 2 : 1;
      } else {
        process.stderr.write(`gatehouse: unexpected error: ${(err as Error).stack ?? String(err)}\n`);
        process.exitCode = 1;
      }
    },
  );
}
