/**
 * `npm start` (gatehouse start) end to end: as root it brings a lab up and
 * every demonstration step crosses the appliance; without root it says what
 * it needs and still runs the loopback demonstration.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { labDown } from '../../src/lab';
import { CLI_MAIN } from '../../src/lab/programs';
import { skipUnlessNetAdmin } from '../helpers/system';
import { assertLabGone, uniqueLabName } from '../lab/lab-helpers';

test('gatehouse start as root: lab up, curl and ping through the appliance, summary', { timeout: 120_000 }, async (t) => {
  if (skipUnlessNetAdmin(t)) return;
  const lab = uniqueLabName();
  t.after(async () => {
    await labDown(lab);
    assertLabGone(lab);
  });
  const r = spawnSync(process.execPath, [CLI_MAIN, 'start', '--name', lab], { encoding: 'utf8', timeout: 100_000 });
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.equal((r.stdout.match(/^ {2}ok {3}/gm) ?? []).length, 5, r.stdout);
  assert.doesNotMatch(r.stdout, /FAIL/);
  const toAppliance = Number(/to the appliance: +(\d+) GENEVE packets/.exec(r.stdout)?.[1]);
  const fromAppliance = Number(/from the appliance: +(\d+) GENEVE packets/.exec(r.stdout)?.[1]);
  assert.ok(toAppliance > 20, r.stdout);
  assert.equal(fromAppliance, toAppliance);
  assert.match(r.stdout, /drops: none/);
  // HTTP by name goes over IPv4 or IPv6, as the resolver orders the answers.
  assert.match(r.stdout, /tcp +(198\.51\.100\.10|\[2001:db8:100::10\]):\d+ <-> (203\.0\.113\.10|\[2001:db8:200::10\]):80/);
  assert.match(r.stdout, /icmp {2}198\.51\.100\.10 <-> 203\.0\.113\.10 id \d+/);
  assert.match(r.stdout, /icmp6 2001:db8:100::10 <-> 2001:db8:200::10 id \d+/);
  assert.doesNotMatch(r.stdout, /ff02::/, 'no link-local multicast crosses the GWLB');
  assert.match(r.stdout, /How to go on/);
});

test('gatehouse start without root explains what it needs and runs the loopback demonstration', { timeout: 60_000 }, (t) => {
  if (process.getuid?.() !== 0) {
    t.skip('needs root to drop to an unprivileged user (setpriv) for this check');
    return;
  }
  const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, CLI_MAIN, 'start'], { encoding: 'utf8', timeout: 50_000 });
  assert.match(r.stdout, /the lab needs root: CAP_NET_ADMIN and CAP_SYS_ADMIN/);
  if (r.status !== 0 && /user namespace/.test(r.stderr)) {
    t.skip(`unprivileged user namespaces unavailable here: ${r.stderr.trim()}`);
    return;
  }
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /loss {8}0 % of good packets/);
  assert.match(r.stdout, /good packets all came back: yes/);
  const kinds = r.stdout.split('\n').filter((l) => /^ {12}[a-z_]+ +\d+ +\d+$/.test(l));
  assert.equal(kinds.length, 13, 'one line per malformed kind');
  for (const line of kinds) assert.match(line, / 0$/, `malformed came back: ${line}`);
});
