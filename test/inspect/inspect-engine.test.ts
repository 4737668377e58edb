/**
 * `gatehouse inspect` with the real engine, in a namespace pair, with
 * `gatehouse emu` playing GWLB (the topology of test/native/tunnel-harness):
 *
 *   namespace g ("GWLB") 192.0.2.1  vg ──── veth ──── va  192.0.2.2  namespace a
 *   gatehouse emu (generator/checker)                     gatehouse inspect --policy P -p 18080
 *
 * An allow-all policy returns every packet; after a reload to deny-all the
 * flows already allowed keep their verdict and new flows get nothing back;
 * /metrics, the EVE log and the emulator's own count agree.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { sh, skipUnlessNetAdmin } from '../helpers/system';
import { buildTopology, GWLB, runEmu } from '../native/tunnel-harness';

const CLI = path.resolve(__dirname, '..', '..', 'src', 'cli', 'main.js');
const HEALTH_PORT = 18080;
const FLOWS = 20;
/** Every run: 20 flows over 2 endpoints, 1,000 packets, at a rate the hold queues absorb. */
const EMU_ARGS = ['--bind', GWLB, '--flows', String(FLOWS), '--enis', '2', '--rate', '1000', '--count', '1000', '--drain', '500'];

type Metrics = Map<string, number>;

/** Prometheus text -> "name{labels}" -> value. */
function parseMetrics(text: string): Metrics {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    out.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return out;
}

function scrape(ns: string, route = '/metrics'): string {
  return sh('ip', ['netns', 'exec', ns, 'curl', '-s', '--max-time', '5', `http://127.0.0.1:${HEALTH_PORT}${route}`]);
}

const metric = (m: Metrics, name: string): number => m.get(name) ?? 0;

/** Polls until `done` holds, at most ~10 s; returns the last metrics either way. */
async function metricsWhen(ns: string, done: (m: Metrics) => boolean): Promise<Metrics> {
  let m = parseMetrics(scrape(ns));
  for (let i = 0; i < 50 && !done(m); i++) {
    await new Promise((resolve) => setTimeout(resolve, 200));
    m = parseMetrics(scrape(ns));
  }
  return m;
}

test('inspect in namespaces: allow-all returns everything; after a reload to deny-all, new flows get nothing', async (t) => {
  if (skipUnlessNetAdmin(t)) return;
  const topo = buildTopology();
  const dir = mkdtempSync(path.join(tmpdir(), 'gh-inspect-'));
  const started: ChildProcess[] = [];
  t.after(() => {
    for (const p of started) if (p.exitCode === null) p.kill('SIGKILL');
    topo.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });
  const policy = path.join(dir, 'policy.yaml');
  const eve = path.join(dir, 'eve.json');
  writeFileSync(policy, 'default: allow\nrules: []\n');

  let stderr = '';
  const proc = spawn('ip', ['netns', 'exec', topo.a, process.execPath, CLI, 'inspect', '--policy', policy, '-p', String(HEALTH_PORT), '-j', '--eve', eve, '--udpthreads', '2'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  started.push(proc);
  proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => proc.on('close', resolve));

  // Ready when the health page says healthy (bounded).
  let health: { healthy?: boolean } = {};
  for (let i = 0; i < 100 && health.healthy !== true; i++) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    try {
      health = JSON.parse(scrape(topo.a, '/')) as { healthy?: boolean };
    } catch {
      health = {};
    }
    assert.equal(proc.exitCode, null, `inspect exited: ${stderr}`);
  }
  assert.equal(health.healthy, true, stderr);

  // 1. Allow-all: every good packet comes back unchanged, whatever the hold queues did not have to drop.
  const allowed = await runEmu(topo.g, [...EMU_ARGS, '--proto', 'tcp', '--seed', '1']);
  let m = await metricsWhen(topo.a, (x) => metric(x, 'gatehouse_inspect_rx_packets_total') >= allowed.sent);
  assert.equal(metric(m, 'gatehouse_inspect_rx_packets_total'), allowed.sent);
  assert.equal(metric(m, 'gatehouse_inspect_flows_created_total'), FLOWS);
  assert.equal(metric(m, 'gatehouse_inspect_upcalls_total'), FLOWS, 'one upcall per flow: decided at the first packet');
  assert.equal(metric(m, 'gatehouse_inspect_verdicts_total{action="allow",rule=":default"}'), FLOWS);
  assert.equal(allowed.invalid, 0, JSON.stringify(allowed.invalid_by_reason));
  assert.ok(allowed.valid > 0);
  assert.equal(allowed.valid, allowed.sent_good - metric(m, 'gatehouse_inspect_held_dropped_total'));
  assert.equal(metric(m, 'gatehouse_inspect_verdict_allow_packets_total'), allowed.valid);
  assert.equal(metric(m, 'gatehouse_inspect_verdict_drop_packets_total'), 0);

  // 2. Reload to deny-all (SIGHUP; the file watch may reload too).
  writeFileSync(policy, 'default: deny\nrules: []\n');
  proc.kill('SIGHUP');
  m = await metricsWhen(topo.a, (x) => metric(x, 'gatehouse_inspect_policy_reloads_total{result="ok"}') >= 1);
  assert.ok(metric(m, 'gatehouse_inspect_policy_reloads_total{result="ok"}') >= 1, stderr);
  const policyNode = (JSON.parse(scrape(topo.a, '/')) as { components: Array<{ name: string; details: { default: string } }> }).components.find(
    (c) => c.name === 'policy',
  );
  assert.equal(policyNode?.details.default, 'drop');

  // 3. The same flows again (same seed: same endpoints and 5-tuples): allowed before, still allowed.
  const before = metric(m, 'gatehouse_inspect_rx_packets_total');
  const again = await runEmu(topo.g, [...EMU_ARGS, '--proto', 'tcp', '--seed', '1']);
  m = await metricsWhen(topo.a, (x) => metric(x, 'gatehouse_inspect_rx_packets_total') >= before + again.sent);
  assert.equal(again.valid, again.sent_good, 'established flows keep their allow verdict');
  assert.equal(metric(m, 'gatehouse_inspect_flows_created_total'), FLOWS);

  // 4. New flows (UDP: other 5-tuples), nothing comes back, every packet is dropped and counted.
  const heldDroppedBefore = metric(m, 'gatehouse_inspect_held_dropped_total');
  const rxBefore = metric(m, 'gatehouse_inspect_rx_packets_total');
  const denied = await runEmu(topo.g, [...EMU_ARGS, '--proto', 'udp', '--seed', '2']);
  m = await metricsWhen(topo.a, (x) => metric(x, 'gatehouse_inspect_rx_packets_total') >= rxBefore + denied.sent);
  assert.equal(denied.received, 0);
  assert.equal(metric(m, 'gatehouse_inspect_flows_created_total'), 2 * FLOWS);
  assert.equal(metric(m, 'gatehouse_inspect_verdicts_total{action="drop",rule=":default"}'), FLOWS);
  assert.equal(
    metric(m, 'gatehouse_inspect_verdict_drop_packets_total') + metric(m, 'gatehouse_inspect_held_dropped_total') - heldDroppedBefore,
    denied.sent,
    'every packet of a denied flow is dropped: by the verdict or by a full hold queue',
  );

  // 5. SIGTERM: the open flows are written as EVE flow events; the drops were alerts.
  proc.kill('SIGTERM');
  assert.equal(await exited, 0, stderr);
  const events = readFileSync(eve, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { event_type: string; alert?: { action: string; signature: string }; flow?: { action?: string; reason: string } });
  const alerts = events.filter((e) => e.event_type === 'alert');
  const flows = events.filter((e) => e.event_type === 'flow');
  assert.equal(alerts.length, FLOWS);
  assert.ok(alerts.every((a) => a.alert?.action === 'blocked' && a.alert.signature === 'default deny'));
  assert.equal(flows.length, 2 * FLOWS);
  assert.deepEqual(
    flows.map((f) => `${f.flow?.action} ${f.flow?.reason}`).sort(),
    [...Array<string>(FLOWS).fill('drop shutdown'), ...Array<string>(FLOWS).fill('pass shutdown')],
  );
});
