import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GatehouseError } from '../../../src/errors';
import { PolicySource, evaluate, type ReloadResult } from '../../../src/inspect/policy';
import { flow } from './helpers';

const GOOD = 'default: deny\nrules:\n  - {id: web, action: allow, dst: 203.0.113.0/24}\n';
const GOOD_2 = 'default: allow\nrules:\n  - {id: block, action: drop, dst: 203.0.113.0/24}\n';
const BAD = 'default: deny\nrules:\n  - id: web\n    action: permit\n';

function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-policy-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Writes the way editors do: a temporary file renamed over the old one. */
function replaceFile(path: string, text: string): void {
  writeFileSync(`${path}.tmp`, text);
  renameSync(`${path}.tmp`, path);
}

/** The next onChange result, or a failure after 10 s (a hang guard, not a timing assertion). */
function nextChange(results: ReloadResult[], waiters: Array<(r: ReloadResult) => void>): Promise<ReloadResult> {
  const queued = results.shift();
  if (queued !== undefined) return Promise.resolve(queued);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no reload was reported within 10 s')), 10_000);
    waiters.push((r) => {
      clearTimeout(timer);
      resolve(r);
    });
  });
}

function watchInto(source: PolicySource): () => Promise<ReloadResult> {
  const results: ReloadResult[] = [];
  const waiters: Array<(r: ReloadResult) => void> = [];
  source.watch((r) => {
    const waiter = waiters.shift();
    if (waiter) waiter(r);
    else results.push(r);
  });
  return () => nextChange(results, waiters);
}

const actionFor = (source: PolicySource): string => {
  const d = evaluate(source.current, flow());
  return d.final ? d.action : 'pending';
};

test('open refuses an invalid file with its line and column', async (t) => {
  const dir = tempDir(t);
  const path = join(dir, 'policy.yaml');
  writeFileSync(path, BAD);
  await assert.rejects(PolicySource.open(path), (err: unknown) => {
    assert.ok(err instanceof GatehouseError);
    assert.equal(err.code, 'ERR_POLICY');
    assert.equal(err.message, `${path}:4:13: Expected one of allow, drop, reject, alert for action but received "permit"`);
    return true;
  });
  await assert.rejects(PolicySource.open(join(dir, 'missing.yaml')), /missing\.yaml:1:1: Expected a readable policy file .* \(ENOENT\)/);
});

test('reload: a good file replaces the policy, a bad one is refused and the old one stays', async (t) => {
  const dir = tempDir(t);
  const path = join(dir, 'policy.yaml');
  writeFileSync(path, GOOD);
  const source = await PolicySource.open(path);
  t.after(() => source.close());
  const first = source.current;
  assert.equal(actionFor(source), 'allow');

  writeFileSync(path, BAD);
  const refused = await source.reload();
  assert.equal(refused.ok, false);
  assert.ok(!refused.ok && refused.error.message.startsWith(`${path}:4:13: `));
  assert.equal(source.current, first, 'the running policy stays');

  rmSync(path);
  const gone = await source.reload();
  assert.ok(!gone.ok && gone.error.code === 'ERR_POLICY');
  assert.equal(source.current, first);

  writeFileSync(path, GOOD_2);
  const accepted = await source.reload();
  assert.ok(accepted.ok);
  assert.equal(source.current, accepted.policy);
  assert.notEqual(accepted.policy.digest, first.digest);
  assert.equal(actionFor(source), 'drop');
});

test('watch: an editor-style replace reloads, a bad file is reported and refused', async (t) => {
  const dir = tempDir(t);
  const path = join(dir, 'policy.yaml');
  writeFileSync(path, GOOD);
  const source = await PolicySource.open(path);
  t.after(() => source.close());
  const next = watchInto(source);

  replaceFile(path, GOOD_2);
  const changed = await next();
  assert.ok(changed.ok);
  assert.equal(source.current, changed.policy);
  assert.equal(actionFor(source), 'drop');

  const before = source.current;
  writeFileSync(path, BAD);
  const refused = await next();
  assert.ok(!refused.ok);
  assert.equal(refused.error.message, `${path}:4:13: Expected one of allow, drop, reject, alert for action but received "permit"`);
  assert.equal(source.current, before);
  assert.equal(actionFor(source), 'drop');

  // Other files in the directory do not trigger a reload; the policy file does.
  writeFileSync(join(dir, 'notes.txt'), 'unrelated');
  replaceFile(path, GOOD);
  const back = await next();
  assert.ok(back.ok);
  assert.equal(back.policy.digest, source.current.digest);
  assert.equal(actionFor(source), 'allow');
});

test('watch: a change to an imported domain list reloads the policy', async (t) => {
  const dir = tempDir(t);
  const listDir = join(dir, 'lists');
  const { mkdirSync } = await import('node:fs');
  mkdirSync(listDir);
  const path = join(dir, 'policy.yaml');
  writeFileSync(join(listDir, 'allowed.txt'), '.example.com\n');
  writeFileSync(path, 'rules:\n  - {id: names, action: allow, domain_list: lists/allowed.txt}\n');
  const source = await PolicySource.open(path);
  t.after(() => source.close());
  const sni = (name: string): string => {
    const d = evaluate(source.current, flow({ app: { kind: 'tls', sni: name } }));
    return d.final ? d.action : 'pending';
  };
  assert.equal(sni('a.example.org'), 'drop');
  const next = watchInto(source);

  replaceFile(join(listDir, 'allowed.txt'), '.example.com\n.example.org\n');
  const changed = await next();
  assert.ok(changed.ok);
  assert.equal(sni('a.example.org'), 'allow');

  writeFileSync(join(listDir, 'allowed.txt'), '.example.com\nbad..name\n');
  const refused = await next();
  assert.ok(!refused.ok);
  assert.match(refused.error.message, /lists\/allowed\.txt:2:1: Expected a domain .* "bad\.\.name" \(an empty label\)$/);
  assert.equal(sni('a.example.org'), 'allow', 'the running policy stays');
});

test('close stops watching; the last policy stays readable', async (t) => {
  const dir = tempDir(t);
  const path = join(dir, 'policy.yaml');
  writeFileSync(path, GOOD);
  const closed = await PolicySource.open(path);
  const seen: ReloadResult[] = [];
  closed.watch((r) => seen.push(r));
  closed.close();
  // A second source on the same file witnesses that the changes happened
  // and were reported; by its second report the closed one would have
  // reported the first change too, had it still been watching.
  const witness = await PolicySource.open(path);
  t.after(() => witness.close());
  const next = watchInto(witness);
  replaceFile(path, GOOD_2);
  assert.ok((await next()).ok);
  replaceFile(path, GOOD);
  assert.ok((await next()).ok);
  assert.deepEqual(seen, []);
  assert.equal(actionFor(closed), 'allow', 'still the policy it had');
});
