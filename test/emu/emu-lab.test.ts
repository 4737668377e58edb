/**
 * Acceptance: `gatehouse emu` against `gatehouse emu --echo` inside the lab
 * (emu in the gwlb namespace on 192.0.2.3, the reflector as the appliance on
 * 192.0.2.2, across a real veth). 20k pps, 10 ENIs x 10k flows, 20 % IPv6:
 * no loss, every reply valid. Malformed packets of every kind: reported per
 * kind, all of them back from a plain reflector, none from a validating one,
 * and the good packets all come back in both cases.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { test } from 'node:test';
import type { EmuReport } from '../../src/emu/report';
import { GENEVE_REASONS } from '../../src/geneve/reasons';
import { LAB_ADDRESSES, labDown, labExecCapture, labUp } from '../../src/lab';
import { CLI_MAIN } from '../../src/lab/programs';
import { skipUnlessNetAdmin } from '../helpers/system';
import { assertLabGone, uniqueLabName } from '../lab/lab-helpers';

const EMU_ADDR = LAB_ADDRESSES.gwlb.loadGenerator.v4;
const APPLIANCE = LAB_ADDRESSES.appliance.v4;

async function emuInLab(lab: string, args: string[]): Promise<EmuReport> {
  const r = await labExecCapture(lab, 'gwlb', [process.execPath, CLI_MAIN, 'emu', '--bind', EMU_ADDR, '--target', APPLIANCE, '--json', '--quiet', ...args], 60_000);
  assert.equal(r.code, 0, `emu failed: ${r.stderr}`);
  const last = r.stdout.trim().split('\n').pop() ?? '';
  return JSON.parse(last) as EmuReport;
}

/**
 * Resolves once `emu --echo` says it is reflecting (its socket is bound: it
 * prints that line right after), so no packet is sent before anything
 * listens; rejects if it exits first or is not up within 30 s.
 */
function reflecting(child: ChildProcess): Promise<void> {
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    const timer = setTimeout(() => reject(new Error(`emu --echo did not start within 30 s: ${out}${err}`)), 30_000);
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('reflecting GENEVE')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`emu --echo exited (${code ?? signal}) before reflecting: ${out}${err}`));
    });
  });
}

test('emu against emu --echo in the lab: 20k pps, 10 ENIs x 10k flows, 20 % IPv6, malformed kinds', { timeout: 180_000 }, async (t) => {
  if (skipUnlessNetAdmin(t)) return;
  const lab = uniqueLabName();
  let validating: ChildProcess | undefined;
  t.after(async () => {
    validating?.kill('SIGKILL');
    await labDown(lab);
    assertLabGone(lab);
  });
  const info = await labUp({ name: lab });

  await t.test('0 % loss at 20k pps', async () => {
    const r = await emuInLab(lab, ['--rate', '20000', '--duration', '3', '--enis', '10', '--flows', '10000', '--v6', '20']);
    assert.ok(r.sent >= 55_000, `sent ${r.sent}`);
    assert.equal(r.sent_malformed, 0);
    assert.equal(r.valid, r.sent_good, `loss: ${JSON.stringify(r)}`);
    assert.equal(r.loss_pct, 0);
    assert.equal(r.invalid, 0);
    assert.deepEqual(r.invalid_by_reason, {});
    assert.equal(r.good_all_returned, true);
    assert.ok(r.p50_us > 0 && r.p99_us >= r.p50_us && r.max_us >= r.p99_us);
  });

  await t.test('a plain reflector returns every malformed kind, and emu reports each', async () => {
    const r = await emuInLab(lab, ['--rate', '10000', '--duration', '2', '--enis', '10', '--flows', '1000', '--v6', '20', '--malformed', '10']);
    assert.deepEqual(Object.keys(r.malformed).sort(), [...GENEVE_REASONS].sort());
    for (const [kind, m] of Object.entries(r.malformed)) {
      assert.ok(m.sent > 0, `${kind} sent`);
      assert.equal(m.returned, m.sent, `${kind} echoed back`);
    }
    assert.equal(r.good_all_returned, true);
    assert.equal(r.invalid, 0, 'echoed malformed packets are recognised, not counted invalid');
  });

  await t.test('a validating target returns no malformed packet and every good one', async () => {
    validating = spawn('ip', ['netns', 'exec', info.namespaces.appliance, process.execPath, CLI_MAIN, 'emu', '--echo', '--bind', APPLIANCE, '--port', '6082', '--validate', '--duration', '60', '--quiet'], { stdio: ['ignore', 'pipe', 'pipe'] });
    await reflecting(validating);
    const r = await emuInLab(lab, ['--port', '6082', '--rate', '10000', '--duration', '2', '--enis', '10', '--flows', '1000', '--v6', '20', '--malformed', '20']);
    for (const kind of GENEVE_REASONS) {
      assert.ok(r.malformed[kind]?.sent > 0, `${kind} sent`);
      assert.equal(r.malformed[kind].returned, 0, `${kind} must not come back`);
    }
    assert.equal(r.good_all_returned, true);
    assert.equal(r.loss_pct, 0);
  });
});
