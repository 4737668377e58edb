/**
 * `lab exec HOST -- CMD...`: run a program inside one of the lab's hosts,
 * with an argument array (no shell), through `ip netns exec` so that the
 * lab's resolv.conf applies.
 */
import { spawn } from 'node:child_process';
import { GatehouseError } from '../errors';
import { namespaceInode } from './netns';
import { LAB_HOSTS, namespaceName, validateLabName, type LabHost } from './plan';
import { tryCommand, type CommandResult } from './run';
import { constants as osConstants } from 'node:os';

export function validateLabHost(value: unknown, label = 'host'): LabHost {
  if (typeof value === 'string' && (LAB_HOSTS as readonly string[]).includes(value)) return value as LabHost;
  throw new GatehouseError(
    'ERR_INVALID_ARG',
    `Expected one of ${LAB_HOSTS.join(', ')} for ${label} but received ${JSON.stringify(value)}`,
  );
}

function validateArgv(argv: unknown): string[] {
  if (!Array.isArray(argv) || argv.length === 0 || !argv.every((a) => typeof a === 'string')) {
    throw new GatehouseError('ERR_INVALID_ARG', `Expected a non-empty array of strings for argv but received ${JSON.stringify(argv)}`);
  }
  return argv as string[];
}

/** The namespace of a lab host, or ERR_LAB_MISSING when that lab is not up. */
function labNamespace(name: string, host: LabHost): string {
  const ns = namespaceName(validateLabName(name), host);
  if (namespaceInode(ns) === undefined) {
    throw new GatehouseError('ERR_LAB_MISSING', `No lab named "${name}" is up (no namespace ${ns}); start one with: gatehouse lab up --name ${name}`);
  }
  return ns;
}

/** Runs argv in the host's namespace and collects its output; timeouts give code 124. */
export async function labExecCapture(name: string, host: LabHost, argv: string[], timeoutMs: number): Promise<CommandResult> {
  const ns = labNamespace(name, validateLabHost(host));
  return tryCommand(['ip', 'netns', 'exec', ns, ...validateArgv(argv)], { timeoutMs });
}

/** Runs argv in the host's namespace with our stdio; resolves to its exit code (128+n for signal n). */
export async function labExecInherit(name: string, host: LabHost, argv: string[]): Promise<number> {
  const ns = labNamespace(name, validateLabHost(host));
  const child = spawn('ip', ['netns', 'exec', ns, ...validateArgv(argv)], { stdio: 'inherit' });
  return new Promise((resolve) => {
    child.on('error', (err) => {
      process.stderr.write(`gatehouse lab exec: ${err.message}\n`);
      resolve(127);
    });
    child.on('close', (code, signal) => {
      resolve(code ?? 128 + (signal === null ? 0 : (osConstants.signals[signal] ?? 0)));
    });
  });
}
