/**
 * `gatehouse lab ...`: the command line over src/lab. Parses and validates
 * flags (one message shape: "Expected <what> for <flag> but received
 * <value>"), calls the lab API and prints. Errors are GatehouseErrors; the
 * dispatcher prints them and picks the exit code.
 */
import { parseArgs } from 'node:util';
import { GatehouseError } from '../errors';
import {
  APPLIANCE_GENEVE_INTERFACE,
  LAB_ADDRESSES,
  LAB_HOSTS,
  labDown,
  labDownAll,
  labExecInherit,
  labStatus,
  labUp,
  validateLabHost,
  validateLabName,
  type LabDownResult,
  type LabStatus,
} from '../lab';
import { validateApplianceCommand } from '../lab/programs';

const A = LAB_ADDRESSES;

export const LAB_HELP = `Usage: gatehouse lab <command> [options]

A local AWS-like network in Linux network namespaces, to try a Gateway Load
Balancer appliance and its hook scripts without an AWS account. Needs root
(CAP_NET_ADMIN and CAP_SYS_ADMIN). Namespaces are named gh-<name>-<host>.

  app ${A.app.v4} ── gwlb (GWLB + endpoint, TUN gwlb0) ── internet ${A.internet.v4}
  ${A.app.v6}          │ GENEVE over UDP 6081           ${A.internet.v6}
                              appliance ${A.appliance.v4} (MTU 9001)

Commands:
  up [--name NAME] [--two-arm] [--appliance "CMD"]   build a lab and start it
  status [--name NAME] [--json]                      hosts, addresses, processes, gateway counters
  exec [--name NAME] HOST -- CMD [ARG...]            run CMD on HOST (${LAB_HOSTS.join(', ')})
  down [--name NAME] | down --all                    stop and remove a lab (or every lab)

Run 'gatehouse lab <command> --help' for details.
`;

const UP_HELP = `Usage: gatehouse lab up [--name NAME] [--two-arm] [--appliance "CMD"] [--json]

  --name NAME        lab name, 1 to 8 characters a-z 0-9 (default lab); several
                     labs can run side by side under different names
  --two-arm          give the appliance its own link to the internet host
                     (${A.appliance.twoArm.v4}/25, ${A.appliance.twoArm.v6}/64) and make it the
                     appliance's default route: for NAT appliances
  --appliance "CMD"  run CMD with /bin/sh -c inside the appliance namespace
                     instead of the built-in reflector (gatehouse emu --echo),
                     e.g. --appliance "/opt/gwlbtun/gwlbtun -c /opt/hooks/create.sh"
                     It must listen on UDP 6081 at ${A.appliance.v4}; its output
                     goes to appliance.log in the lab's state directory.
  --json             print the lab's details as JSON

The internet host serves http:// and https:// (self-signed, by SNI) for
www.example.com, api.example.com, blocked.example.net and api.allowed.test, and answers DNS for
them; every lab host resolves names with it. Traffic from app to internet
crosses the emulated GWLB and the appliance, GENEVE-encapsulated.
State, logs and gateway.json: /run/gatehouse/lab/<name>/.
`;

const STATUS_HELP = `Usage: gatehouse lab status [--name NAME] [--json]

Shows the lab's namespaces and addresses, whether its processes (gateway,
appliance, nginx, dnsmasq) are alive, and the gateway's counters. Exits 1
when the lab is incomplete, a namespace is missing or a process is dead.
`;

const EXEC_HELP = `Usage: gatehouse lab exec [--name NAME] HOST -- CMD [ARG...]

Runs CMD inside HOST's namespace (HOST is one of ${LAB_HOSTS.join(', ')}), with
the lab's DNS, and exits with CMD's exit code. Examples:
  gatehouse lab exec app -- curl -v http://www.example.com/
  gatehouse lab exec appliance -- tshark -i ${APPLIANCE_GENEVE_INTERFACE} -f 'udp port 6081' -V
`;

const DOWN_HELP = `Usage: gatehouse lab down [--name NAME] | gatehouse lab down --all

Stops the lab's processes (SIGTERM, then SIGKILL), deletes its namespaces,
its resolv.conf files and its state directory. --all removes every lab on
this machine (cleanup after a crash). Removing a lab that is not there is
not an error.
`;

type FlagSpec = Record<string, { type: 'string' | 'boolean' }>;
type Flags = Record<string, string | boolean | undefined>;

/**
 * util.parseArgs in non-strict mode for its tokens, checked here so that
 * every complaint names the flag and what is allowed.
 */
function parseFlags(argv: string[], spec: FlagSpec, command: string): { flags: Flags; positionals: string[] } {
  const { tokens } = parseArgs({
    args: argv,
    options: { ...spec, help: { type: 'boolean', short: 'h' } },
    strict: false,
    allowPositionals: true,
    tokens: true,
  });
  const allowed = [...Object.keys(spec).map((f) => `--${f}`), '--help'];
  const flags: Flags = {};
  const positionals: string[] = [];
  for (const token of tokens) {
    if (token.kind === 'positional') positionals.push(token.value);
    if (token.kind !== 'option') continue;
    const flag = `--${token.name}`;
    const type = token.name === 'help' || token.name === 'h' ? 'boolean' : spec[token.name]?.type;
    if (type === undefined) {
      throw new GatehouseError('ERR_USAGE', `Expected one of ${allowed.join(', ')} for ${command} but received ${token.rawName}`);
    }
    if (type === 'boolean' && token.value !== undefined) {
      throw new GatehouseError('ERR_INVALID_ARG', `Expected no value for ${flag} but received ${JSON.stringify(token.value)}`);
    }
    if (type === 'string' && token.value === undefined) {
      throw new GatehouseError('ERR_INVALID_ARG', `Expected a value for ${flag} but received nothing`);
    }
    if (flags[token.name] !== undefined) {
      throw new GatehouseError('ERR_USAGE', `Expected ${flag} at most once for ${command} but received it twice`);
    }
    flags[token.name === 'h' ? 'help' : token.name] = type === 'boolean' ? true : token.value;
  }
  return { flags, positionals };
}

function noPositionals(positionals: string[], command: string): void {
  if (positionals.length > 0) {
    throw new GatehouseError('ERR_USAGE', `Expected no arguments for ${command} but received ${JSON.stringify(positionals[0])}`);
  }
}

function out(text: string): void {
  process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
}

export async function runLabCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  switch (sub) {
    case 'up':
      return up(rest);
    case 'down':
      return down(rest);
    case 'status':
      return status(rest);
    case 'exec':
      return exec(rest);
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      out(LAB_HELP);
      return 0;
    default:
      throw new GatehouseError('ERR_USAGE', `Expected one of up, status, exec, down for gatehouse lab but received ${JSON.stringify(sub)}`);
  }
}

async function up(argv: string[]): Promise<number> {
  const command = 'gatehouse lab up';
  const { flags, positionals } = parseFlags(
    argv,
    { name: { type: 'string' }, 'two-arm': { type: 'boolean' }, appliance: { type: 'string' }, json: { type: 'boolean' } },
    command,
  );
  if (flags.help === true) return (out(UP_HELP), 0);
  noPositionals(positionals, command);
  const name = flags.name === undefined ? undefined : validateLabName(flags.name, '--name');
  const appliance = validateApplianceCommand(flags.appliance, '--appliance');
  // Ctrl-C half way leaves a half-built lab: say how to remove it rather than die silently.
  const onInterrupt = (): void => {
    process.stderr.write(`\nlab up interrupted; remove what it made with: gatehouse lab down --name ${name ?? 'lab'}\n`);
    process.exit(130);
  };
  process.once('SIGINT', onInterrupt);
  const info = await labUp({
    ...(name === undefined ? {} : { name }),
    ...(appliance === undefined ? {} : { appliance }),
    twoArm: flags['two-arm'] === true,
    log: (line) => process.stderr.write(`lab: ${line}\n`),
  }).finally(() => process.removeListener('SIGINT', onInterrupt));
  if (flags.json === true) {
    out(JSON.stringify(info, null, 2));
    return 0;
  }
  const nameFlag = info.name === 'lab' ? '' : ` --name ${info.name}`;
  out(
    [
      `Lab "${info.name}" is up${info.twoArm ? ' (two-arm)' : ''}. Try:`,
      `  gatehouse lab exec${nameFlag} app -- curl http://www.example.com/`,
      `  gatehouse lab exec${nameFlag} app -- curl -k https://api.example.com/`,
      `  gatehouse lab exec${nameFlag} app -- ping -c 2 ${A.internet.v4}`,
      `  gatehouse lab exec${nameFlag} appliance -- tshark -i ${APPLIANCE_GENEVE_INTERFACE} -f 'udp port 6081'`,
      `  gatehouse lab status${nameFlag}`,
      `  gatehouse lab down${nameFlag}`,
      `Endpoint ENI id ${info.eni}, attachment ${info.attachment}; logs and state in ${info.stateDir}`,
    ].join('\n'),
  );
  return 0;
}

async function down(argv: string[]): Promise<number> {
  const command = 'gatehouse lab down';
  const { flags, positionals } = parseFlags(argv, { name: { type: 'string' }, all: { type: 'boolean' } }, command);
  if (flags.help === true) return (out(DOWN_HELP), 0);
  noPositionals(positionals, command);
  if (flags.all === true && flags.name !== undefined) {
    throw new GatehouseError('ERR_USAGE', `Expected either --name or --all for ${command} but received both`);
  }
  const results = flags.all === true ? await labDownAll() : [await labDown(validateLabName(flags.name ?? 'lab', '--name'))];
  if (results.length === 0) out('No lab to remove.');
  for (const result of results) out(describeDown(result));
  return 0;
}

function describeDown(result: LabDownResult): string {
  if (!result.existed) return `Lab "${result.name}": nothing to remove.`;
  return [
    `Lab "${result.name}" removed:`,
    `  processes stopped: ${result.stoppedPids.length === 0 ? 'none' : result.stoppedPids.join(' ')}`,
    `  namespaces deleted: ${result.removedNamespaces.join(' ') || 'none'}`,
    `  paths removed: ${result.removedPaths.join(' ') || 'none'}`,
  ].join('\n');
}

async function status(argv: string[]): Promise<number> {
  const command = 'gatehouse lab status';
  const { flags, positionals } = parseFlags(argv, { name: { type: 'string' }, json: { type: 'boolean' } }, command);
  if (flags.help === true) return (out(STATUS_HELP), 0);
  noPositionals(positionals, command);
  const result = await labStatus(validateLabName(flags.name ?? 'lab', '--name'));
  out(flags.json === true ? JSON.stringify(result, null, 2) : formatStatus(result));
  // Non-zero when something is missing or dead, so scripts can check health.
  const healthy = result.complete && result.hosts.every((h) => h.present) && result.processes.every((p) => p.alive);
  return healthy ? 0 : 1;
}

export function formatStatus(s: LabStatus): string {
  const lines = [
    `Lab "${s.name}"${s.twoArm ? ' (two-arm)' : ''}: ${s.complete ? 'up' : 'INCOMPLETE (lab up failed or is still running)'}${s.created === null ? '' : ` since ${s.created}`}`,
    `  state: ${s.stateDir}`,
    'Hosts:',
  ];
  for (const h of s.hosts) {
    if (!h.present) {
      lines.push(`  ${h.host.padEnd(10)} ${h.namespace}  MISSING`);
      continue;
    }
    lines.push(`  ${h.host.padEnd(10)} ${h.namespace}`);
    for (const i of h.interfaces) {
      lines.push(`    ${i.ifname.padEnd(14)} ${i.up ? 'up  ' : 'DOWN'} ${i.addresses.join(' ')}`);
    }
  }
  lines.push('Processes:');
  for (const p of s.processes) {
    lines.push(`  ${p.role.padEnd(10)} pid ${String(p.pid).padEnd(8)} ${p.alive ? 'alive' : 'DEAD '}  log ${p.log}`);
  }
  if (s.gateway === null) {
    lines.push('Gateway counters: not written yet');
  } else {
    const counters = Object.entries(s.gateway.counters).map(([k, v]) => `${k}=${v}`);
    lines.push(`Gateway (eni ${s.gateway.eni}, updated ${s.gateway.updated}):`);
    for (let i = 0; i < counters.length; i += 4) lines.push(`  ${counters.slice(i, i + 4).join('  ')}`);
    lines.push(`  flows listed: ${Array.isArray(s.gateway.flows) ? s.gateway.flows.length : 0}`);
  }
  return lines.join('\n');
}

async function exec(argv: string[]): Promise<number> {
  const command = 'gatehouse lab exec';
  const separator = argv.indexOf('--');
  const before = separator === -1 ? argv : argv.slice(0, separator);
  const cmd = separator === -1 ? [] : argv.slice(separator + 1);
  const { flags, positionals } = parseFlags(before, { name: { type: 'string' } }, command);
  if (flags.help === true) return (out(EXEC_HELP), 0);
  if (positionals.length !== 1) {
    throw new GatehouseError(
      'ERR_USAGE',
      `Expected exactly one HOST (${LAB_HOSTS.join(', ')}) before -- for ${command} but received ${positionals.length === 0 ? 'none' : JSON.stringify(positionals.join(' '))}`,
    );
  }
  const host = validateLabHost(positionals[0], 'HOST');
  if (cmd.length === 0) {
    throw new GatehouseError('ERR_USAGE', `Expected -- followed by a command for ${command} but received ${separator === -1 ? 'no --' : 'nothing after --'}`);
  }
  return labExecInherit(validateLabName(flags.name ?? 'lab', '--name'), host, cmd);
}
