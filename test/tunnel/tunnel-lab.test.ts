/**
 * Acceptance for `gatehouse tunnel`, in the lab: the tunnel is the
 * appliance; `gatehouse emu` (in gwlb, on 192.0.2.3) and the lab's own
 * emulated GWLB (traffic from app) send it GENEVE. Judged by emu's checks
 * (every reply byte-identical, mirrored), curl/ping/dig, the hook's own record
 * of its arguments, the health endpoint and `ip link`.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, chmodSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { test, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { EmuReport } from '../../src/emu/report';
import { GENEVE_REASONS } from '../../src/geneve/reasons';
import { LAB_ADDRESSES, labDown, labExecCapture, labUp, type LabInfo } from '../../src/lab';
import { CLI_MAIN, PACKAGE_ROOT } from '../../src/lab/programs';
import { skipUnlessNetAdmin } from '../helpers/system';
import { applianceHealth, assertLabGone, labEmu, pidAlive, uniqueLabName, waitFor } from '../lab/lab-helpers';

const HOOKS = resolve(PACKAGE_ROOT, 'examples', 'hooks');

/** Base 60 as DESIGN.md defines it, written independently of src/tunnel. */
function base60(n: bigint): string {
  const alphabet = '0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWX';
  let out = '';
  do {
    out = alphabet[Number(n % 60n)] + out;
    n /= 60n;
  } while (n > 0n);
  return out;
}

/** A hook that records its arguments, then does `then` (a bash snippet). */
function recordingHook(dir: string, then: string): { path: string; record: string } {
  const record = join(dir, 'hook-record');
  const path = join(dir, 'hook.sh');
  writeFileSync(path, `#!/bin/bash\nset -euo pipefail\necho "$*" >> ${record}\n${then}\n`);
  chmodSync(path, 0o755);
  return { path, record };
}

function recorded(record: string): string[][] {
  return existsSync(record) ? readFileSync(record, 'utf8').trim().split('\n').filter(Boolean).map((l) => l.split(' ')) : [];
}

async function tunnelLab(t: TestContext, opts: { tunnelArgs: string[]; twoArm?: boolean; env?: string }): Promise<LabInfo> {
  const lab = uniqueLabName();
  t.after(async () => {
    await labDown(lab);
    assertLabGone(lab);
  });
  const cmd = [process.execPath, CLI_MAIN, 'tunnel', ...opts.tunnelArgs].map((a) => `'${a}'`).join(' ');
  return labUp({ name: lab, twoArm: opts.twoArm, appliance: `${opts.env ?? ''} exec ${cmd}` });
}

/** A late reply is not a lost one: on a loaded machine replies can trail the last packet sent by more than emu's default 500 ms drain. */
const emu = (lab: string, args: string[]): Promise<EmuReport> => labEmu(lab, ['--drain', '3000', ...args]);
const health = applianceHealth;

/** Endpoints attached to the tunnel in the lab (health: endpoints). */
async function attachedEndpoints(lab: string): Promise<number> {
  const doc = JSON.parse((await health(lab)).body) as { components: Array<{ name: string; details: { endpoints?: number } }> };
  return doc.components.find((c) => c.name === 'endpoints')?.details.endpoints ?? 0;
}

/**
 * Announces the ENIs of a seeded plan (`planArgs`, which must hold --seed) at a
 * low rate and waits until the tunnel has attached `count` more endpoints;
 * the packets that waited in their queues while the CREATE hooks ran must all
 * come back. Each queue holds 1024 packets (then queue_dropped): at 10k pps
 * over 10 new ENIs, hooks slowed down by a loaded machine would overflow them.
 * The run at load that follows, with the same plan, measures the packet path.
 */
async function attachPlan(lab: string, planArgs: string[], count: number): Promise<void> {
  assert.ok(planArgs.includes('--seed'), 'a seeded plan: the same ENIs at load');
  const before = await attachedEndpoints(lab);
  const announced = await emu(lab, ['--rate', '1000', '--duration', '0.5', ...planArgs]);
  assert.equal(announced.valid, announced.sent_good, `queued while the hooks ran, then lost: ${JSON.stringify(announced)}`);
  await waitFor(`${count} endpoints attached`, async () => ((await attachedEndpoints(lab)) >= before + count ? true : undefined), 60_000);
}

async function tunnelLinks(lab: string): Promise<string[]> {
  const r = await labExecCapture(lab, 'appliance', ['ip', '-o', 'link', 'show'], 10_000);
  return [...r.stdout.matchAll(/^\d+: (gw[io]-[0-9a-zA-X]+)[:@]/gm)].map((m) => m[1]);
}

test('tunnel in the lab: passthrough load, names and hook arguments, health, malformed, 8500 bytes, SIGTERM', { timeout: 240_000 }, async (t) => {
  if (skipUnlessNetAdmin(t)) return;
  const dir = mkdtempSync(join(tmpdir(), 'gh-tunnel-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const hook = recordingHook(dir, `exec ${HOOKS}/passthrough.sh "$@"`);
  const info = await tunnelLab(t, { tunnelArgs: ['-c', hook.path, '-r', hook.path, '-p', '8080', '-j'] });
  const lab = info.name;
  const labEni = BigInt('0x' + info.eni);
  const labGwi = `gwi-${base60(labEni)}`;

  await t.test('a TUN that cannot be created: 503, then 200 once it can', async () => {
    // Take the name with another kind of device (a veth; the dummy module may be absent).
    const taken = await labExecCapture(lab, 'appliance', ['ip', 'link', 'add', labGwi, 'type', 'veth', 'peer', 'name', 'ghtaken'], 10_000);
    assert.equal(taken.code, 0, taken.stderr);
    assert.equal((await health(lab)).code, 200);
    await labExecCapture(lab, 'app', ['ping', '-c', '1', '-W', '1', LAB_ADDRESSES.internet.v4], 10_000);
    const bad = await waitFor('503', async () => {
      const h = await health(lab);
      return h.code === 503 ? h : undefined;
    }, 10_000);
    const doc = JSON.parse(bad.body) as { healthy: boolean; reasons: string[] };
    assert.equal(doc.healthy, false);
    assert.match(doc.reasons.join('\n'), /TUN failed on the last try/);
    // Two retries (every 5 s) fail too, with no traffic: still 503, still running.
    await sleep(11_000);
    assert.equal((await health(lab)).code, 503);
    assert.ok(pidAlive(info.pids.appliance), 'the tunnel survives repeated failures');
    await labExecCapture(lab, 'appliance', ['ip', 'link', 'del', labGwi], 10_000);
    await waitFor('200 again', async () => ((await health(lab)).code === 200 ? true : undefined), 15_000);
    const ping = await labExecCapture(lab, 'app', ['ping', '-c', '2', '-W', '2', LAB_ADDRESSES.internet.v4], 15_000);
    assert.equal(ping.code, 0, ping.stdout);
    const curl = await labExecCapture(lab, 'app', ['curl', '-sS', '-m', '5', 'http://www.example.com/'], 15_000);
    assert.equal(curl.code, 0, curl.stderr);
  });

  await t.test('10 ENIs x 10k flows, 20 % IPv6, 10k pps: no loss, every reply byte-identical', async () => {
    const plan = ['--enis', '10', '--flows', '10000', '--v6', '20', '--seed', '101'];
    await attachPlan(lab, plan, 10);
    const r = await emu(lab, ['--rate', '10000', '--duration', '3', ...plan]);
    assert.ok(r.sent >= 25_000, `sent ${r.sent}`);
    assert.equal(r.invalid, 0, JSON.stringify(r.invalid_by_reason));
    assert.equal(r.valid, r.sent_good, `loss: ${JSON.stringify(r)}`);
    assert.equal(r.loss_pct, 0);
  });

  await t.test('interface names are base 60 of the ENI id; the hook gets exactly CREATE gwi gwo <17 hex>', async () => {
    const creates = recorded(hook.record).filter((a) => a[0] === 'CREATE');
    assert.ok(creates.length >= 11, `${creates.length} CREATE calls`);
    for (const args of creates) {
      assert.equal(args.length, 4, args.join(' '));
      assert.match(args[3], /^[0-9a-f]{17}$/);
      const x = base60(BigInt('0x' + args[3]));
      assert.deepEqual(args.slice(1, 3), [`gwi-${x}`, `gwo-${x}`]);
    }
    assert.ok(creates.some((a) => a[1] === labGwi && a[3] === info.eni), 'the lab endpoint was created with its own id');
    const links = await tunnelLinks(lab);
    for (const args of creates) assert.ok(links.includes(args[1]) && links.includes(args[2]), `${args[1]} exists`);
  });

  await t.test('health JSON and /metrics', async () => {
    const h = await health(lab);
    assert.equal(h.code, 200);
    const doc = JSON.parse(h.body) as { schema: string; healthy: boolean; components: Array<{ name: string; details: Record<string, unknown>; children: unknown[] }> };
    assert.equal(doc.schema, 'gatehouse.health/v1');
    assert.deepEqual(doc.components.map((c) => c.name), ['workers', 'receive', 'endpoints']);
    const receive = doc.components[1].details;
    assert.ok(Number(receive.rx_packets) > 25_000);
    assert.equal(doc.components[2].children.length, 11, 'one child per endpoint');
    const m = await health(lab, '/metrics');
    assert.equal(m.code, 200);
    assert.match(m.body, /^gatehouse_tunnel_rx_packets_total \d+$/m);
    assert.match(m.body, /^gatehouse_tunnel_endpoint_rx_packets_total\{endpoint="vpce-[0-9a-f]{17}"\} \d+$/m);
    assert.match(readFileSync(info.logs.appliance, 'utf8'), /warning \[core\] GENEVE is accepted from any address: set --gwlb-cidr/);
  });

  await t.test('--malformed 20 at load: none comes back, no good packet lost, still up', async () => {
    const plan = ['--enis', '10', '--flows', '1000', '--v6', '20', '--seed', '202'];
    await attachPlan(lab, plan, 10);
    const r = await emu(lab, ['--rate', '10000', '--duration', '2', ...plan, '--malformed', '20']);
    for (const kind of GENEVE_REASONS) {
      assert.ok(r.malformed[kind]?.sent > 0, `${kind} sent`);
      assert.equal(r.malformed[kind].returned, 0, `${kind} came back`);
    }
    assert.equal(r.good_all_returned, true);
    assert.equal(r.loss_pct, 0);
    assert.ok(pidAlive(info.pids.appliance));
    const doc = JSON.parse((await health(lab)).body) as { components: Array<{ details: Record<string, unknown> }> };
    const byReason = doc.components[1].details.malformed_by_reason as Record<string, number>;
    assert.deepEqual(Object.keys(byReason).sort(), [...GENEVE_REASONS].sort());
  });

  await t.test('8500-byte inner packets round-trip', async () => {
    const plan = ['--size', '8500', '--enis', '2', '--flows', '50', '--v6', '50', '--seed', '303'];
    await attachPlan(lab, plan, 2);
    const r = await emu(lab, ['--rate', '2000', '--duration', '2', ...plan]);
    assert.equal(r.invalid, 0, JSON.stringify(r.invalid_by_reason));
    assert.equal(r.loss_pct, 0);
  });

  await t.test('TUN ring drops (kernel tx_dropped of gwo) show in health and /metrics', async () => {
    // With the tunnel stopped nobody reads gwo: 20,000 packets written into
    // it (AF_PACKET, no address needed) overflow its rings (4096 each).
    const gwo = labGwi.replace('gwi-', 'gwo-');
    const pid = info.pids.appliance;
    const flood = [
      'import socket, sys',
      's = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM)',
      // IPv4 + UDP, 192.0.2.99 -> 192.0.2.100 (no flow: the tunnel drops what it reads later).
      "p = bytes.fromhex('4500001c' '00000000' '40110000' 'c0000263' 'c0000264') + bytes(8)",
      'for _ in range(20000): s.sendto(p, (sys.argv[1], 0x0800))',
    ].join('\n');
    process.kill(pid, 'SIGSTOP');
    let r;
    try {
      r = await labExecCapture(lab, 'appliance', ['python3', '-c', flood, gwo], 30_000);
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    assert.equal(r.code, 0, r.stderr);
    const h = await waitFor('health 200', async () => {
      const x = await health(lab);
      return x.code === 200 ? x : undefined;
    }, 10_000);
    const doc = JSON.parse(h.body) as { components: Array<{ details: Record<string, unknown>; children: Array<{ name: string; details: Record<string, number> }> }> };
    const child = doc.components[2].children.find((c) => (c.details as Record<string, unknown>).gwo === gwo);
    assert.ok(child, `an endpoint child for ${gwo}`);
    assert.ok(child.details.gwo_ring_dropped >= 20000 - 2 * 4096, `gwo_ring_dropped ${child.details.gwo_ring_dropped}`);
    const drops = doc.components[1].details.drops_by_reason as Record<string, number>;
    assert.ok(drops.tun_ring_dropped >= child.details.gwo_ring_dropped);
    const m = await health(lab, '/metrics');
    const line = m.body.split('\n').find((l) => l.startsWith(`gatehouse_tunnel_endpoint_tun_ring_dropped_total{endpoint="${child.name}",interface="${gwo}"}`));
    assert.ok(line, 'the metric for gwo');
    assert.equal(Number(line.split(' ').pop()), child.details.gwo_ring_dropped);
  });

  await t.test('SIGTERM: DESTROY hooks run for every endpoint, interfaces gone', async () => {
    const pid = info.pids.appliance;
    process.kill(pid, 'SIGTERM');
    await waitFor('the tunnel to exit', async () => (pidAlive(pid) ? undefined : true), 60_000);
    const calls = recorded(hook.record);
    const created = new Set(calls.filter((a) => a[0] === 'CREATE').map((a) => a[3]));
    const destroyed = calls.filter((a) => a[0] === 'DESTROY');
    assert.deepEqual(new Set(destroyed.map((a) => a[3])), created);
    assert.deepEqual(await tunnelLinks(lab), []);
    assert.match(readFileSync(info.logs.appliance, 'utf8'), /stopped/);
  });
});

test('tunnel -t 3: inbound-only traffic keeps the endpoint; silence destroys it; the next packet recreates it', { timeout: 120_000 }, async (t) => {
  if (skipUnlessNetAdmin(t)) return;
  const dir = mkdtempSync(join(tmpdir(), 'gh-tunnel-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  // Inbound only: packets reach gwi and the kernel drops them (no forwarding on gwi): nothing goes back.
  const slow = join(dir, 'slow');
  const hook = recordingHook(
    dir,
    `if [ "$1" = CREATE ]; then sysctl -qw "net.ipv4.conf.$2.forwarding=0"; if [ -e ${slow} ]; then sleep 3; fi; fi`,
  );
  // The lab's GWLB sends from 192.0.2.1: --gwlb-cidr lets it in (and silences the start warning).
  const info = await tunnelLab(t, { tunnelArgs: ['-c', hook.path, '-r', hook.path, '-t', '3', '--gwlb-cidr', '192.0.2.0/30'] });
  const lab = info.name;
  assert.doesNotMatch(readFileSync(info.logs.appliance, 'utf8'), /set --gwlb-cidr/);
  // 8 s of pings at 5 per second: none answered, the endpoint must stay.
  await labExecCapture(lab, 'app', ['ping', '-c', '40', '-i', '0.2', '-W', '1', LAB_ADDRESSES.internet.v4], 30_000);
  assert.deepEqual(recorded(hook.record).map((a) => a[0]), ['CREATE']);
  assert.equal((await tunnelLinks(lab)).length, 2);
  // Silence: destroyed after -t (3 s) plus up to a second of sweep.
  await waitFor('DESTROY', async () => (recorded(hook.record).some((a) => a[0] === 'DESTROY') ? true : undefined), 10_000);
  await waitFor('interfaces removed', async () => ((await tunnelLinks(lab)).length === 0 ? true : undefined), 5_000);
  await labExecCapture(lab, 'app', ['ping', '-c', '2', '-W', '1', LAB_ADDRESSES.internet.v4], 15_000);
  await waitFor('CREATE again', async () => (recorded(hook.record).filter((a) => a[0] === 'CREATE').length === 2 ? true : undefined), 10_000);
  assert.deepEqual(recorded(hook.record).map((a) => a[0]), ['CREATE', 'DESTROY', 'CREATE']);

  // SIGTERM while a CREATE hook is still running: its DESTROY runs too.
  await waitFor('silence destroys it again', async () => (recorded(hook.record).length === 4 ? true : undefined), 10_000);
  writeFileSync(slow, '');
  await labExecCapture(lab, 'app', ['ping', '-c', '1', '-W', '1', LAB_ADDRESSES.internet.v4], 15_000);
  await waitFor('the slow CREATE to start', async () => (recorded(hook.record).length === 5 ? true : undefined), 5_000);
  process.kill(info.pids.appliance, 'SIGTERM');
  await waitFor('the tunnel to exit', async () => (pidAlive(info.pids.appliance) ? undefined : true), 30_000);
  const calls = recorded(hook.record);
  assert.deepEqual(calls.map((a) => a[0]), ['CREATE', 'DESTROY', 'CREATE', 'DESTROY', 'CREATE', 'DESTROY']);
  assert.ok(calls.every((a) => a[3] === info.eni));
  assert.deepEqual(await tunnelLinks(lab), []);
});

test('tunnel two-arm NAT with the nat hook: HTTP, ping and DNS (UDP) from app reach internet', { timeout: 120_000 }, async (t) => {
  if (skipUnlessNetAdmin(t)) return;
  const info = await tunnelLab(t, {
    twoArm: true,
    env: 'EGRESS_IF=veth-internet',
    tunnelArgs: ['-c', `${HOOKS}/nat.sh`, '-r', `${HOOKS}/nat.sh`],
  });
  const lab = info.name;
  const curl = await labExecCapture(lab, 'app', ['curl', '-sS', '-m', '5', 'http://www.example.com/'], 15_000);
  assert.equal(curl.code, 0, curl.stderr);
  assert.match(curl.stdout, /www\.example\.com/);
  const ping = await labExecCapture(lab, 'app', ['ping', '-c', '2', '-W', '2', LAB_ADDRESSES.internet.v4], 15_000);
  assert.equal(ping.code, 0, ping.stdout);
  const dig = await labExecCapture(lab, 'app', ['dig', '+short', '+time=2', '+tries=1', `@${LAB_ADDRESSES.internet.v4}`, 'api.example.com', 'A'], 15_000);
  assert.equal(dig.stdout.trim(), LAB_ADDRESSES.internet.v4);
  const curl4 = await labExecCapture(lab, 'app', ['curl', '-sS', '-4', '-m', '5', 'http://www.example.com/'], 15_000);
  assert.equal(curl4.code, 0, curl4.stderr);
  // NAT: the server saw the appliance's own addresses (v6 and v4), never the app's.
  const access = readFileSync(join(info.stateDir, 'nginx-access.log'), 'utf8');
  const clients = new Set(access.trim().split('\n').map((l) => l.split(' ')[0]));
  // (The first curl goes over IPv4 or IPv6, as the resolver orders the answers.)
  const natted = new Set<string>([LAB_ADDRESSES.appliance.twoArm.v6, LAB_ADDRESSES.appliance.twoArm.v4]);
  assert.ok([...clients].every((c) => natted.has(c)), `clients seen: ${[...clients].join(', ')}`);
  assert.ok(clients.has(LAB_ADDRESSES.appliance.twoArm.v4));
});
