/**
 * The `gatehouse lab` command line: flags and their messages. None of these
 * cases gets as far as touching the network, so they run without root.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { runLabCommand } from '../../src/cli/lab-command';
import { GatehouseError, type ErrorCode } from '../../src/errors';

const CASES: { argv: string[]; code: ErrorCode; message: string }[] = [
  {
    argv: ['frob'],
    code: 'ERR_USAGE',
    message: 'Expected one of up, status, exec, down for gatehouse lab but received "frob"',
  },
  {
    argv: ['up', '--bogus'],
    code: 'ERR_USAGE',
    message: 'Expected one of --name, --two-arm, --appliance, --json, --help for gatehouse lab up but received --bogus',
  },
  {
    argv: ['up', '--name', 'Bad-Name'],
    code: 'ERR_INVALID_ARG',
    message: 'Expected a lab name of 1 to 8 characters from a-z and 0-9 for --name but received "Bad-Name"',
  },
  { argv: ['up', '--name'], code: 'ERR_INVALID_ARG', message: 'Expected a value for --name but received nothing' },
  { argv: ['up', '--two-arm=yes'], code: 'ERR_INVALID_ARG', message: 'Expected no value for --two-arm but received "yes"' },
  {
    argv: ['up', '--appliance', ''],
    code: 'ERR_INVALID_ARG',
    message: 'Expected a non-empty command line for --appliance but received ""',
  },
  { argv: ['up', 'extra'], code: 'ERR_USAGE', message: 'Expected no arguments for gatehouse lab up but received "extra"' },
  {
    argv: ['up', '--name', 'a', '--name', 'b'],
    code: 'ERR_USAGE',
    message: 'Expected --name at most once for gatehouse lab up but received it twice',
  },
  {
    argv: ['down', '--all', '--name', 'x'],
    code: 'ERR_USAGE',
    message: 'Expected either --name or --all for gatehouse lab down but received both',
  },
  {
    argv: ['down', '--force'],
    code: 'ERR_USAGE',
    message: 'Expected one of --name, --all, --help for gatehouse lab down but received --force',
  },
  {
    argv: ['status', '--name', 'toolongname'],
    code: 'ERR_INVALID_ARG',
    message: 'Expected a lab name of 1 to 8 characters from a-z and 0-9 for --name but received "toolongname"',
  },
  {
    argv: ['exec', 'app'],
    code: 'ERR_USAGE',
    message: 'Expected -- followed by a command for gatehouse lab exec but received no --',
  },
  {
    argv: ['exec', 'app', '--'],
    code: 'ERR_USAGE',
    message: 'Expected -- followed by a command for gatehouse lab exec but received nothing after --',
  },
  {
    argv: ['exec', '--', 'ls'],
    code: 'ERR_USAGE',
    message: 'Expected exactly one HOST (app, gwlb, appliance, internet) before -- for gatehouse lab exec but received none',
  },
  {
    argv: ['exec', 'router', '--', 'ls'],
    code: 'ERR_INVALID_ARG',
    message: 'Expected one of app, gwlb, appliance, internet for HOST but received "router"',
  },
];

for (const { argv, code, message } of CASES) {
  test(`gatehouse lab ${argv.join(' ')} -> ${code}`, async () => {
    await assert.rejects(runLabCommand(argv), (err: unknown) => {
      assert.ok(err instanceof GatehouseError, `not a GatehouseError: ${String(err)}`);
      assert.equal(err.code, code);
      assert.equal(err.message, message);
      return true;
    });
  });
}

test('gatehouse lab status/exec for a lab that is not up -> ERR_LAB_MISSING', async () => {
  await assert.rejects(runLabCommand(['status', '--name', 'nolab000']), { code: 'ERR_LAB_MISSING' });
  await assert.rejects(runLabCommand(['exec', '--name', 'nolab000', 'app', '--', 'true']), { code: 'ERR_LAB_MISSING' });
});

/** Runs the lab command in a child Node process and returns its exit code and stdout. */
function runInChild(argv: string[]): { code: number | null; stdout: string } {
  const modulePath = join(__dirname, '..', '..', 'src', 'cli', 'lab-command.js');
  const script = `require(${JSON.stringify(modulePath)}).runLabCommand(${JSON.stringify(argv)}).then((c) => { process.exitCode = c; })`;
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 20_000 });
  return { code: r.status, stdout: r.stdout };
}

test('gatehouse lab with no command, or --help, prints help and succeeds', () => {
  const top = runInChild([]);
  assert.equal(top.code, 0);
  assert.match(top.stdout, /^Usage: gatehouse lab <command>/);
  const up = runInChild(['up', '--help']);
  assert.equal(up.code, 0);
  assert.match(up.stdout, /^Usage: gatehouse lab up /);
  assert.match(up.stdout, /--appliance "CMD"/);
});
