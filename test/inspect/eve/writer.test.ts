import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rename, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { GatehouseError } from '../../../src/errors';
import { alertEvent, EveWriter, flowEvent, type EveAlertEvent, type EveEvent, type EveFlowTuple } from '../../../src/inspect/eve';
import { runNodeScript } from '../../helpers/system';

const AT = new Date('2026-11-22T02:39:45.123Z');
const TUPLE: EveFlowTuple = { flowId: 42n, src: '10.0.1.5', srcPort: 50432, dst: '203.0.113.20', dstPort: 443, protocol: 6 };

function alert(i: number): EveAlertEvent {
  return alertEvent(TUPLE, { action: 'allowed', signatureId: i, signature: `line ${i}` }, { tls: { sni: 'api.example.com' } }, AT);
}

async function tempDir(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'gatehouse-eve-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function readLines(path: string): Promise<unknown[]> {
  const text = await readFile(path, 'utf8');
  assert.ok(text.endsWith('\n'), 'every line ends with a newline');
  return text
    .slice(0, -1)
    .split('\n')
    .map((l) => JSON.parse(l) as unknown);
}

const sids = (lines: unknown[]): number[] => lines.map((l) => (l as EveAlertEvent).alert.signature_id);

test('file: appends one JSON object per line, mode 0640, close flushes', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'eve.json');
  const writer = await EveWriter.open(path);
  for (let i = 1; i <= 200; i++) writer.write(alert(i));
  await writer.close();
  assert.deepEqual(writer.stats(), { written: 200, dropped: 0, errors: 0 });
  const lines = await readLines(path);
  assert.deepEqual(sids(lines), Array.from({ length: 200 }, (_, i) => i + 1));
  assert.deepEqual(lines[0], alert(1));
  // 0640 as asked; the process umask can only take bits away.
  assert.equal((await stat(path)).mode & 0o777, 0o640 & ~process.umask());

  // Append, not truncate.
  const again = await EveWriter.open(path);
  again.write(alert(201));
  await again.close();
  assert.deepEqual(sids(await readLines(path)).slice(-2), [200, 201]);

  // After close, writes are dropped and counted; close is idempotent.
  again.write(alert(202));
  await again.close();
  assert.deepEqual(again.stats(), { written: 1, dropped: 1, errors: 0 });
});

test('file: logrotate rename + reopen splits the lines between the old and the new file', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'eve.json');
  const rotated = join(dir, 'eve.json.1');
  const writer = await EveWriter.open(path);
  for (let i = 1; i <= 50; i++) writer.write(alert(i));
  await rename(path, rotated); // what logrotate does before its postrotate signal
  for (let i = 51; i <= 60; i++) writer.write(alert(i)); // still the old file: nothing reopened yet
  const reopening = writer.reopen();
  for (let i = 61; i <= 70; i++) writer.write(alert(i)); // while reopening: must not be lost
  await reopening;
  for (let i = 71; i <= 100; i++) writer.write(alert(i));
  await writer.close();

  const oldLines = sids(await readLines(rotated));
  const newLines = sids(await readLines(path));
  assert.deepEqual(oldLines.slice(0, 60), Array.from({ length: 60 }, (_, i) => i + 1));
  assert.deepEqual(newLines.slice(-30), Array.from({ length: 30 }, (_, i) => i + 71));
  assert.deepEqual([...oldLines, ...newLines], Array.from({ length: 100 }, (_, i) => i + 1), 'every line once, in order');
  assert.deepEqual(writer.stats(), { written: 100, dropped: 0, errors: 0 });
  assert.equal((await stat(path)).mode & 0o777, 0o640 & ~process.umask());
});

test('file: a backlog over the bound drops lines and counts them', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'eve.json');
  // A 1-byte bound: the first line goes to the idle stream; the rest, written in the same tick, find it busy.
  const writer = await EveWriter.open(path, { maxBufferedBytes: 1 });
  for (let i = 1; i <= 100; i++) writer.write(alert(i));
  await writer.close();
  assert.deepEqual(writer.stats(), { written: 1, dropped: 99, errors: 0 });
  assert.deepEqual(sids(await readLines(path)), [1]);
});

test('file: wrap applies the AWS Network Firewall envelope to every line', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'eve.json');
  const clock = (): Date => new Date('2026-11-22T02:39:46.500Z');
  const writer = await EveWriter.open(path, { wrap: { firewallName: 'egress-fw', availabilityZone: 'eu-west-1b' }, clock });
  const flow = flowEvent(
    TUPLE,
    { pktsToServer: 3, pktsToClient: 2, bytesToServer: 300, bytesToClient: 200, start: AT, end: AT, verdict: 'allow', reason: 'timeout', alerted: false },
    AT,
  );
  writer.write(flow);
  await writer.close();
  assert.deepEqual(await readLines(path), [
    { firewall_name: 'egress-fw', availability_zone: 'eu-west-1b', event_timestamp: '1795315186', event: JSON.parse(JSON.stringify(flow)) },
  ]);
});

test('write never throws: an event JSON cannot hold is counted, the next line is written', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'eve.json');
  const writer = await EveWriter.open(path);
  const broken = { ...alert(1), extra: 1n } as unknown as EveEvent; // JSON.stringify throws on bigint
  assert.doesNotThrow(() => writer.write(broken));
  writer.write(alert(2));
  await writer.close();
  assert.deepEqual(writer.stats(), { written: 1, dropped: 1, errors: 1 });
  assert.deepEqual(sids(await readLines(path)), [2]);
});

test('open: bad targets are rejected with ERR_INVALID_ARG', async (t) => {
  const dir = await tempDir(t);
  await assert.rejects(EveWriter.open(''), (e: unknown) => e instanceof GatehouseError && e.code === 'ERR_INVALID_ARG');
  await assert.rejects(EveWriter.open(dir), {
    name: 'GatehouseError',
    code: 'ERR_INVALID_ARG',
    message: `Expected a writable file path for the EVE log but received ${JSON.stringify(dir)} (EISDIR)`,
  });
  await assert.rejects(EveWriter.open(join(dir, 'eve.json'), { maxBufferedBytes: 0 }), {
    code: 'ERR_INVALID_ARG',
    message: 'Expected a positive integer for maxBufferedBytes but received 0',
  });
});

test('reopen: a path that cannot be opened rejects, and writing goes on to the old file', async (t) => {
  const dir = await tempDir(t);
  const sub = join(dir, 'logs');
  await mkdir(sub);
  const path = join(sub, 'eve.json');
  const writer = await EveWriter.open(path);
  writer.write(alert(1));
  await rename(sub, join(dir, 'moved')); // the directory is gone: the path cannot be created
  await assert.rejects(writer.reopen(), { code: 'ERR_INVALID_ARG' });
  writer.write(alert(2));
  await writer.close();
  assert.deepEqual(sids(await readLines(join(dir, 'moved', 'eve.json'))), [1, 2]);
  assert.deepEqual(writer.stats(), { written: 2, dropped: 0, errors: 1 });
});

test("stdout: '-' writes lines to the process's stdout", async () => {
  const indexPath = resolve(__dirname, '../../../src/inspect/eve/index.js');
  const script = `
    const eve = require(${JSON.stringify(indexPath)});
    (async () => {
      const tuple = { flowId: 7n, src: '10.0.1.5', srcPort: 1, dst: '203.0.113.20', dstPort: 443, protocol: 6 };
      const w = await eve.EveWriter.open('-', { wrap: { firewallName: 'fw', availabilityZone: 'az1' } });
      for (let i = 1; i <= 500; i++) w.write(eve.alertEvent(tuple, { action: 'blocked', signatureId: i, signature: 's' }));
      await w.reopen(); // a no-op for stdout
      await w.close();
      process.stderr.write(JSON.stringify(w.stats()));
    })();
  `;
  const { code, stdout, stderr } = await runNodeScript(script);
  assert.equal(code, 0, stderr);
  assert.deepEqual(JSON.parse(stderr), { written: 500, dropped: 0, errors: 0 });
  assert.ok(stdout.endsWith('\n'));
  const lines = stdout.slice(0, -1).split('\n').map((l) => JSON.parse(l) as { firewall_name: string; event: EveAlertEvent });
  assert.equal(lines.length, 500);
  assert.deepEqual(
    lines.map((l) => l.event.alert.signature_id),
    Array.from({ length: 500 }, (_, i) => i + 1),
  );
  assert.equal(lines[0].firewall_name, 'fw');
  assert.equal(lines[0].event.flow_id, 7);
  assert.equal(lines[0].event.alert.action, 'blocked');
});
