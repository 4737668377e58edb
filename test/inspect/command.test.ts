/**
 * `gatehouse inspect` as an operator runs it: the CLI process, its exit
 * codes and messages, policy reloads (a bad file refused, the running
 * policy kept), SIGHUP reopening the EVE log after a rename (logrotate),
 * and -t forgetting idle endpoints.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { INSPECT_HELP } from '../../src/inspect/options';
import { sh, skipUnlessNetAdmin } from '../helpers/system';
import { buildTopology, GWLB, runEmu } from '../native/tunnel-harness';

const execFileAsync = promisify(execFile);
const CLI = path.resolve(__dirname, '..', '..', 'src', 'cli', 'main.js');
const EXAMPLES = path.resolve(__dirname, '..', '..', '..', 'examples', 'policies');
const HEALTH_PORT = 18081;

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await execFileAsync(process.execPath, [CLI, ...args], { timeout: 20_000 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

function tempDir(t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'gh-inspect-cmd-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('a policy that does not load stops the start with file:line:column and exit 1', async (t) => {
  const file = path.join(tempDir(t), 'bad.yaml');
  writeFileSync(file, 'default: deny\nrules:\n  - {id: x, action: maybe}\n');
  const r = await cli(['inspect', '--policy', file]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, new RegExp(`^gatehouse: ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:3:\\d+: .*\\[ERR_POLICY\\]\\n$`));
  const missing = await cli(['inspect', '--policy', path.join(path.dirname(file), 'none.yaml')]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /none\.yaml:1:1: .*ENOENT.*\[ERR_POLICY\]/);
});

test('gatehouse inspect --help; usage errors exit 2; gatehouse policy is routed', async () => {
  const help = await cli(['inspect', '--help']);
  assert.equal(help.code, 0);
  assert.equal(help.stdout, INSPECT_HELP);
  const usage = await cli(['inspect']);
  assert.equal(usage.code, 2);
  assert.match(usage.stderr, /--policy FILE is required.*\[ERR_USAGE\]/);
  const check = await cli(['policy', 'check', path.join(EXAMPLES, 'allow-all.yaml')]);
  assert.equal(check.code, 0, check.stderr);
  const top = await cli(['--help']);
  assert.match(top.stdout, /\n {2}inspect {3}/);
  assert.match(top.stdout, /\n {2}policy {4}/);
});

function scrape(ns: string, route: string): string {
  return sh('ip', ['netns', 'exec', ns, 'curl', '-s', '--max-time', '5', `http://127.0.0.1:${HEALTH_PORT}${route}`]);
}

interface PolicyComponent {
  name: string;
  reason: string | null;
  details: { digest: string; default: string; reloads_refused: number; last_reload: { result: string } };
}

function healthOf(ns: string): { healthy: boolean; components: Array<PolicyComponent & { details: Record<string, unknown> }> } {
  return JSON.parse(scrape(ns, '/')) as ReturnType<typeof healthOf>;
}

async function until<T>(read: () => T, done: (v: T) => boolean, what: string): Promise<T> {
  let v = read();
  for (let i = 0; i < 75 && !done(v); i++) {
    await new Promise((resolve) => setTimeout(resolve, 200));
    v = read();
  }
  assert.ok(done(v), `${what}: ${JSON.stringify(v)}`);
  return v;
}

test('reload: a bad file is refused and the policy keeps running; SIGHUP reopens a rotated EVE log; -t forgets idle endpoints', async (t) => {
  if (skipUnlessNetAdmin(t)) return;
  const topo = buildTopology();
  const dir = tempDir(t);
  const started: ChildProcess[] = [];
  t.after(() => {
    for (const p of started) if (p.exitCode === null) p.kill('SIGKILL');
    topo.cleanup();
  });
  const policy = path.join(dir, 'policy.yaml');
  const eve = path.join(dir, 'eve.json');
  writeFileSync(policy, 'default: deny\nrules: []\n');
  let stderr = '';
  const proc = spawn(
    'ip',
    ['netns', 'exec', topo.a, process.execPath, CLI, 'inspect', '--policy', policy, '-p', String(HEALTH_PORT), '-j', '--eve', eve, '--eve-wrap', 'anf', '--firewall-name', 'fw-test', '-t', '1', '--udpthreads', '1'],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  started.push(proc);
  proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => proc.on('close', resolve));
  const health = (): ReturnType<typeof healthOf> | null => {
    try {
      return healthOf(topo.a);
    } catch {
      return null;
    }
  };
  const ready = await until(health, (h) => h?.healthy === true, `healthy (${stderr})`);
  const digest = ready!.components.find((c) => c.name === 'policy')!.details.digest;

  // A broken file: refused (the watch sees it), the old policy stays, health stays 200 and says why.
  writeFileSync(policy, 'default: deny\nrules:\n  - {id: x, action: maybe}\n');
  const refused = await until(health, (h) => (h?.components.find((c) => c.name === 'policy')?.details.reloads_refused ?? 0) >= 1, 'reload refused');
  const p = refused!.components.find((c) => c.name === 'policy')!;
  assert.equal(refused!.healthy, true);
  assert.equal(p.details.digest, digest);
  assert.match(p.reason ?? '', /^last reload refused \(.*policy\.yaml:3:\d+: .*\); running the previous policy$/);
  assert.match(scrape(topo.a, '/metrics'), /\ngatehouse_inspect_policy_reloads_total\{result="refused"\} [1-9]/);

  // Traffic under the running policy (deny): alerts in the EVE log, wrapped for Network Firewall.
  const report = await runEmu(topo.g, ['--bind', GWLB, '--proto', 'udp', '--flows', '4', '--enis', '1', '--count', '40', '--rate', '400', '--drain', '300']);
  assert.equal(report.received, 0);
  const alerts = await until(
    () => (existsSync(eve) ? readFileSync(eve, 'utf8').trim().split('\n').filter(Boolean) : []),
    (lines) => lines.length >= 4,
    'four alerts',
  );
  const first = JSON.parse(alerts[0]) as { firewall_name: string; availability_zone: string; event: { event_type: string } };
  assert.equal(first.firewall_name, 'fw-test');
  assert.equal(first.availability_zone, 'local');
  assert.equal(first.event.event_type, 'alert');

  // logrotate: rename, SIGHUP; what is logged after goes to a new file at the same path.
  renameSync(eve, `${eve}.1`);
  proc.kill('SIGHUP');
  await until(() => existsSync(eve), (e) => e, 'the EVE file reopened');
  await runEmu(topo.g, ['--bind', GWLB, '--proto', 'tcp', '--flows', '4', '--enis', '1', '--count', '40', '--rate', '400', '--drain', '300']);
  // -t 1: idle endpoints are forgotten, their flows end (reason 'endpoint', EVE 'forced').
  await until(() => healthOf(topo.a).components.find((c) => c.name === 'endpoints')!.details.endpoints, (n) => n === 0, 'endpoints forgotten');
  const read = (file: string): Array<{ event_type: string; proto: string; flow?: { reason: string; action: string } }> =>
    readFileSync(file, 'utf8')
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as { event: ReturnType<typeof read>[number] }).event);
  const rotated = read(`${eve}.1`);
  const current = await until(() => read(eve), (events) => rotated.length + events.length >= 16, 'eight alerts and eight flow events');
  assert.deepEqual(
    rotated.filter((e) => e.event_type === 'alert').map((e) => e.proto),
    Array<string>(4).fill('UDP'),
    'the alerts before the rename stay in the rotated file',
  );
  assert.deepEqual(
    current.filter((e) => e.event_type === 'alert').map((e) => e.proto),
    Array<string>(4).fill('TCP'),
    'the alerts after SIGHUP are in the new file',
  );
  const flows = [...rotated, ...current].filter((e) => e.event_type === 'flow');
  assert.deepEqual(
    flows.map((f) => `${f.flow?.reason} ${f.flow?.action}`),
    Array<string>(8).fill('forced drop'),
  );
  assert.match(stderr, /endpoint idle: forgotten with its flows/);

  proc.kill('SIGTERM');
  assert.equal(await exited, 0, stderr);
});
