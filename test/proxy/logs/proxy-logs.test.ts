import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decisionLogLine, ProxyLogs, squidAccessLine } from '../../../src/proxy/logs';
import { entry } from './entry';

async function tempDir(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'gatehouse-proxy-logs-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

const lines = async (path: string): Promise<string[]> => (await readFile(path, 'utf8')).split('\n').slice(0, -1);

test('record() writes the Squid line and the decision line for each entry; reopen rotates both', async (t) => {
  const dir = await tempDir(t);
  const accessLog = join(dir, 'access.log');
  const decisionLog = join(dir, 'decisions.log');
  const logs = await ProxyLogs.open({ accessLog, decisionLog });
  const entries = [
    entry(),
    entry({ url: 'http://api.example.com/q?token=1', status: 404 }),
    entry({ method: 'CONNECT', url: 'api.example.com:443', squidResult: 'TCP_TUNNEL', contentType: null }),
  ];
  for (const e of entries) logs.record(e);
  await rename(accessLog, `${accessLog}.1`);
  await rename(decisionLog, `${decisionLog}.1`);
  await logs.reopen();
  logs.record(entries[0]);
  await logs.close();
  assert.deepEqual(await lines(`${accessLog}.1`), entries.map((e) => squidAccessLine(e)));
  assert.ok((await lines(`${accessLog}.1`))[1].includes(' http://api.example.com/q? '), 'the access log strips queries by default');
  assert.deepEqual(await lines(`${decisionLog}.1`), entries.map((e) => decisionLogLine(e)));
  assert.deepEqual(await lines(accessLog), [squidAccessLine(entries[0])]);
  assert.deepEqual(await lines(decisionLog), [decisionLogLine(entries[0])]);
  assert.deepEqual(logs.stats(), { access: { written: 4, dropped: 0, errors: 0 }, decision: { written: 4, dropped: 0, errors: 0 } });
});

test('each log is optional; stripQueryTerms false keeps queries in the access log', async (t) => {
  const dir = await tempDir(t);
  const accessLog = join(dir, 'access.log');
  const logs = await ProxyLogs.open({ accessLog, decisionLog: null, stripQueryTerms: false });
  logs.record(entry({ url: 'http://h/p?x=1' }));
  await logs.reopen();
  await logs.close();
  assert.deepEqual(logs.stats(), { access: { written: 1, dropped: 0, errors: 0 }, decision: null });
  assert.ok((await lines(accessLog))[0].includes(' http://h/p?x=1 '));
  const none = await ProxyLogs.open();
  none.record(entry());
  await none.close();
  assert.deepEqual(none.stats(), { access: null, decision: null });
});

test('open fails on a path that cannot be a log, naming which log', async (t) => {
  const dir = await tempDir(t);
  await assert.rejects(ProxyLogs.open({ accessLog: join(dir, 'a.log'), decisionLog: dir }), {
    code: 'ERR_INVALID_ARG',
    message: `Expected a writable file path for the decision log but received ${JSON.stringify(dir)} (EISDIR)`,
  });
  const logs = await ProxyLogs.open({ accessLog: join(dir, 'sub-missing', 'a.log') }).catch((e: unknown) => e);
  assert.equal((logs as { code?: string }).code, 'ERR_INVALID_ARG');
});
