/**
 * lab up / down as a whole, on the paths that do not need traffic to cross
 * the gateway: failures half way are torn down completely and say what
 * failed; an existing lab is refused and left alone; down is idempotent;
 * without privileges the error says what is needed.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { GatehouseError } from '../../src/errors';
import { findLabNames, labDown, labExecCapture, labStatus, labUp } from '../../src/lab';
import { NETNS_ETC_ROOT, namespaceName, stateDirFor } from '../../src/lab/plan';
import { runCommand } from '../../src/lab/run';
import { shQuiet, skipUnlessNetAdmin } from '../helpers/system';
import { assertLabGone, namespacesOf, uniqueLabName } from './lab-helpers';

function isLabError(code: GatehouseError['code'], ...fragments: string[]) {
  return (err: unknown): boolean => {
    assert.ok(err instanceof GatehouseError, `not a GatehouseError: ${String(err)}`);
    assert.equal(err.code, code, err.message);
    for (const fragment of fragments) assert.ok(err.message.includes(fragment), `"${fragment}" not in: ${err.message}`);
    return true;
  };
}

test('a failing command reports itself and its stderr', async () => {
  await assert.rejects(
    runCommand(['ip', 'link', 'show', 'dev', 'ghnosuchdev0']),
    isLabError('ERR_LAB', 'Command failed (exit 1): ip link show dev ghnosuchdev0\n', 'ghnosuchdev0'),
  );
});

test('an appliance that dies at start: lab up fails with its exit and log, and nothing is left', async (t) => {
  if (skipUnlessNetAdmin(t)) return;
  const name = uniqueLabName();
  t.after(() => labDown(name));
  const lines: string[] = [];
  await assert.rejects(
    labUp({ name, appliance: 'echo appliance-said-boom >&2; exit 3', log: (l) => lines.push(l) }),
    isLabError(
      'ERR_LAB',
      'lab up failed while starting the appliance',
      'appliance exited with code 3',
      `ip netns exec ${namespaceName(name, 'appliance')} /bin/sh -c`,
      'appliance-said-boom',
      'Everything it created was removed',
    ),
  );
  // It got far enough to have built things worth removing.
  assert.ok(lines.some((l) => l.startsWith('starting nginx')), lines.join('\n'));
  assertLabGone(name);
});

test('a step failing after the topology exists (resolv.conf blocked): torn down completely', async (t) => {
  if (skipUnlessNetAdmin(t)) return;
  const name = uniqueLabName();
  // A plain file where lab up needs a directory makes its mkdir fail.
  const blocker = join(NETNS_ETC_ROOT, namespaceName(name, 'app'));
  mkdirSync(NETNS_ETC_ROOT, { recursive: true });
  writeFileSync(blocker, 'not a directory\n');
  t.after(async () => {
    rmSync(blocker, { force: true, recursive: true });
    await labDown(name);
  });
  await assert.rejects(labUp({ name }), isLabError('ERR_LAB', 'lab up failed while writing resolv.conf files', blocker));
  assertLabGone(name);
});

test('lab up refuses a lab that exists, and leaves it alone', async (t) => {
  if (skipUnlessNetAdmin(t)) return;
  const name = uniqueLabName();
  const ns = namespaceName(name, 'gwlb');
  t.after(async () => {
    shQuiet('ip', ['netns', 'del', ns]);
    rmSync(stateDirFor(name), { recursive: true, force: true });
    await labDown(name);
  });
  await runCommand(['ip', 'netns', 'add', ns]);
  await assert.rejects(labUp({ name }), isLabError('ERR_LAB_EXISTS', ns, `gatehouse lab down --name ${name}`));
  assert.deepEqual(namespacesOf(name), [ns]);
  // lab down --all would find it (by its namespace alone).
  assert.ok((await findLabNames()).includes(name));
  await runCommand(['ip', 'netns', 'del', ns]);

  // Same with only a state directory left (e.g. another lab up still starting).
  mkdirSync(stateDirFor(name), { recursive: true });
  await assert.rejects(labUp({ name }), isLabError('ERR_LAB_EXISTS', stateDirFor(name)));
  assert.deepEqual(namespacesOf(name), []);
});

test('down, status and exec on a lab that is not there', async (t) => {
  if (skipUnlessNetAdmin(t)) return;
  const name = uniqueLabName();
  const result = await labDown(name);
  assert.deepEqual(result, { name, stoppedPids: [], removedNamespaces: [], removedPaths: [], existed: false });
  await assert.rejects(labStatus(name), isLabError('ERR_LAB_MISSING', `No lab named "${name}" is up`));
  await assert.rejects(labExecCapture(name, 'app', ['true'], 1000), isLabError('ERR_LAB_MISSING', namespaceName(name, 'app')));
});

test('without root: ERR_NEEDS_ROOT saying what is needed, before anything is made', (t) => {
  if (skipUnlessNetAdmin(t)) return;
  const name = uniqueLabName();
  const indexJs = join(__dirname, '..', '..', 'src', 'lab', 'index.js');
  const script = `require(${JSON.stringify(indexJs)}).labUp({ name: ${JSON.stringify(name)} }).then(
    () => console.log('UP'), (e) => console.log(e.code + ': ' + e.message))`;
  // nobody:nogroup, no capabilities left after the uid change.
  const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '-e', script], {
    encoding: 'utf8',
    timeout: 20_000,
  });
  assert.equal(r.stderr, '');
  assert.equal(
    r.stdout.trim(),
    'ERR_NEEDS_ROOT: gatehouse lab up needs root (CAP_NET_ADMIN to build links and routes, CAP_SYS_ADMIN for ip netns): run it with sudo',
  );
  assertLabGone(name);
});
