import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rename, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { LINE_LOG_FILE_MODE, LineLog } from '../../src/observe/line-log';
import { runNodeScript } from '../helpers/system';
import { waitWhile } from '../helpers/wait';

async function tempDir(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'gatehouse-line-log-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function readLines(path: string): Promise<string[]> {
  const text = await readFile(path, 'utf8');
  if (text === '') return [];
  assert.ok(text.endsWith('\n'), 'every line ends with a newline');
  return text.slice(0, -1).split('\n');
}

const numbered = (from: number, to: number): string[] => Array.from({ length: to - from + 1 }, (_, i) => `line ${from + i}`);

test('file: one line per write, appended, mode 0640; write after close is dropped and counted', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'access.log');
  const log = await LineLog.open(path, { label: 'access log' });
  assert.equal(log.target, path);
  for (const l of numbered(1, 300)) log.write(l);
  log.write('héllo ✓'); // multi-byte text arrives as written
  await log.close();
  assert.deepEqual(log.stats(), { written: 301, dropped: 0, errors: 0 });
  assert.deepEqual(await readLines(path), [...numbered(1, 300), 'héllo ✓']);
  assert.equal((await stat(path)).mode & 0o777, LINE_LOG_FILE_MODE & ~process.umask());

  const again = await LineLog.open(path);
  again.write('line 301');
  await again.close();
  again.write('after close');
  await again.close(); // idempotent
  assert.deepEqual(again.stats(), { written: 1, dropped: 1, errors: 0 });
  assert.deepEqual((await readLines(path)).slice(-2), ['héllo ✓', 'line 301']);
});

test('file: rename + reopen (logrotate) splits the lines between the files, none lost, in order', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'decisions.log');
  const log = await LineLog.open(path);
  for (const l of numbered(1, 40)) log.write(l);
  await rename(path, `${path}.1`);
  for (const l of numbered(41, 50)) log.write(l); // the old file still: nothing reopened yet
  const reopening = log.reopen();
  assert.equal(log.reopen(), reopening, 'a second reopen while one runs is the same one');
  for (const l of numbered(51, 60)) log.write(l); // during the reopen
  await reopening;
  for (const l of numbered(61, 90)) log.write(l);
  await log.close();
  const oldLines = await readLines(`${path}.1`);
  const newLines = await readLines(path);
  assert.deepEqual(oldLines.slice(0, 50), numbered(1, 50));
  assert.deepEqual(newLines.slice(-30), numbered(61, 90));
  assert.deepEqual([...oldLines, ...newLines], numbered(1, 90));
  assert.deepEqual(log.stats(), { written: 90, dropped: 0, errors: 0 });
});

test('file: over the backlog bound, lines are dropped and counted, never queued', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'x.log');
  const log = await LineLog.open(path, { maxBufferedBytes: 64 });
  for (let i = 0; i < 100; i++) log.write('0123456789'); // 11 bytes with the newline
  await log.close();
  const s = log.stats();
  assert.equal(s.written + s.dropped, 100);
  const lines = await readLines(path);
  assert.equal(lines.length, s.written);
  // The first goes to the idle stream and stays counted in the backlog until written; then each
  // line is taken while backlog + 11 <= 64: at 11, 22, 33 and 44 waiting bytes; at 55 + 11 = 66 it is dropped.
  assert.equal(s.written, 5);
  assert.equal(s.errors, 0);
});

test('open: bad targets and bounds are rejected, named after the label', async (t) => {
  const dir = await tempDir(t);
  await assert.rejects(LineLog.open('', { label: 'access log' }), {
    code: 'ERR_INVALID_ARG',
    message: `Expected a file path or '-' for the access log target but received ""`,
  });
  await assert.rejects(LineLog.open(dir, { label: 'decision log' }), {
    code: 'ERR_INVALID_ARG',
    message: `Expected a writable file path for the decision log but received ${JSON.stringify(dir)} (EISDIR)`,
  });
  for (const bad of [0, -1, 1.5, Number.NaN]) {
    await assert.rejects(LineLog.open(join(dir, 'a.log'), { maxBufferedBytes: bad }), {
      code: 'ERR_INVALID_ARG',
      message: `Expected a positive integer for maxBufferedBytes but received ${String(bad)}`,
    });
  }
});

test('reopen: a path that cannot be created rejects, counts an error, and writing goes on to the old file', async (t) => {
  const dir = await tempDir(t);
  const sub = join(dir, 'logs');
  await mkdir(sub);
  const log = await LineLog.open(join(sub, 'a.log'), { label: 'access log' });
  log.write('one');
  await rename(sub, join(dir, 'moved'));
  await assert.rejects(log.reopen(), { code: 'ERR_INVALID_ARG', message: /^Expected a writable file path for the access log but received .* \(ENOENT\)$/ });
  log.write('two');
  await log.close();
  assert.deepEqual(await readLines(join(dir, 'moved', 'a.log')), ['one', 'two']);
  assert.deepEqual(log.stats(), { written: 2, dropped: 0, errors: 1 });
});

test("stdout: '-' writes to the process's stdout; close waits for every line; reopen is a no-op", async () => {
  const modulePath = resolve(__dirname, '../../src/observe/line-log.js');
  const script = `
    const { LineLog } = require(${JSON.stringify(modulePath)});
    (async () => {
      const log = await LineLog.open('-');
      for (let i = 1; i <= 2000; i++) log.write('line ' + i);
      await log.reopen();
      await log.close();
      process.stderr.write(JSON.stringify(log.stats()));
    })();
  `;
  const { code, stdout, stderr } = await runNodeScript(script);
  assert.equal(code, 0, stderr);
  assert.deepEqual(JSON.parse(stderr), { written: 2000, dropped: 0, errors: 0 });
  assert.equal(stdout, numbered(1, 2000).join('\n') + '\n');
});

test('file: lines are gathered until flushMs passes or flush() is called, then written together', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'gathered.log');
  const log = await LineLog.open(path, { flushMs: 60_000 });
  for (const l of numbered(1, 3)) log.write(l);
  await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(await readFile(path, 'utf8'), '', 'nothing written before the flush');
  assert.deepEqual(log.stats(), { written: 0, dropped: 0, errors: 0 });
  log.flush();
  await waitWhile(() => log.stats().written < 3);
  assert.deepEqual(await readLines(path), numbered(1, 3));
  log.write('after');
  await log.close(); // close flushes what is gathered
  assert.deepEqual(await readLines(path), [...numbered(1, 3), 'after']);
  for (const bad of [-1, 1.5]) {
    await assert.rejects(LineLog.open(join(dir, 'b.log'), { flushMs: bad }), {
      code: 'ERR_INVALID_ARG',
      message: `Expected an integer >= 0 for flushMs but received ${String(bad)}`,
    });
  }
});
