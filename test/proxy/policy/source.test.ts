import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GatehouseError } from '../../../src/errors';
import { loadProxyPolicy, openProxyPolicySource, type ProxyPolicySource, type ReloadResult, type ProxyPolicy } from '../../../src/proxy/policy';
import { request, verdict } from './helpers';

const GOOD = 'default: deny\nrules:\n  - {id: web, action: allow, host: .example.com}\n';
const GOOD_2 = 'default: allow\nrules:\n  - {id: block, action: deny, host: .example.com}\n';
const BAD = 'default: deny\nrules:\n  - id: web\n    action: permit\n';

function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-proxy-policy-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const decide = (source: ProxyPolicySource): string => verdict(source.current, request());

test('loadProxyPolicy reads a file; an unreadable or invalid one is ERR_POLICY with its place', async (t) => {
  const dir = tempDir(t);
  const path = join(dir, 'proxy.yaml');
  writeFileSync(path, GOOD);
  const policy = await loadProxyPolicy(path);
  assert.equal(policy.source, path);
  assert.equal(verdict(policy, request()), 'allow web rule');
  await assert.rejects(loadProxyPolicy(join(dir, 'missing.yaml')), (err: unknown) => {
    assert.ok(err instanceof GatehouseError);
    assert.equal(err.message, `${join(dir, 'missing.yaml')}:1:1: Expected a readable policy file for the policy but received ${JSON.stringify(join(dir, 'missing.yaml'))} (ENOENT)`);
    return true;
  });
  writeFileSync(path, BAD);
  await assert.rejects(openProxyPolicySource(path), { code: 'ERR_POLICY', message: `${path}:4:13: Expected one of allow, deny for action but received "permit"` });
});

test('reload: good -> bad keeps the running policy; -> good replaces it', async (t) => {
  const dir = tempDir(t);
  const path = join(dir, 'proxy.yaml');
  writeFileSync(path, GOOD);
  const source = await openProxyPolicySource(path);
  t.after(() => source.close());
  const first = source.current;
  assert.equal(decide(source), 'allow web rule');

  writeFileSync(path, BAD);
  const refused = await source.reload();
  assert.ok(!refused.ok);
  assert.equal(refused.error.code, 'ERR_POLICY');
  assert.equal(refused.error.message, `${path}:4:13: Expected one of allow, deny for action but received "permit"`);
  assert.equal(source.current, first, 'the running policy stays');
  assert.equal(decide(source), 'allow web rule');

  writeFileSync(path, GOOD_2);
  const accepted = await source.reload();
  assert.ok(accepted.ok);
  assert.equal(source.current, accepted.policy);
  assert.notEqual(accepted.policy.digest, first.digest);
  assert.equal(decide(source), 'deny block rule');
});

test('watch: an editor-style replace reloads; a bad file is reported and refused', async (t) => {
  const dir = tempDir(t);
  const path = join(dir, 'proxy.yaml');
  writeFileSync(path, GOOD);
  const source = await openProxyPolicySource(path);
  t.after(() => source.close());
  const seen: Array<ReloadResult<ProxyPolicy>> = [];
  const waiters: Array<() => void> = [];
  source.watch((r) => {
    seen.push(r);
    waiters.shift()?.();
  });
  /** The next reported reload, or a failure after 10 s (a hang guard, not a timing assertion). */
  const next = async (): Promise<ReloadResult<ProxyPolicy>> => {
    if (seen.length === 0) {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no reload was reported within 10 s')), 10_000);
        waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return seen.shift() as ReloadResult<ProxyPolicy>;
  };
  const replace = (text: string): void => {
    writeFileSync(`${path}.tmp`, text);
    renameSync(`${path}.tmp`, path);
  };

  replace(BAD);
  const refused = await next();
  assert.ok(!refused.ok && refused.error.message.startsWith(`${path}:4:13: `));
  assert.equal(decide(source), 'allow web rule');

  replace(GOOD_2);
  const accepted = await next();
  assert.ok(accepted.ok);
  assert.equal(decide(source), 'deny block rule');
});
