import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openRoutesSource, resolveRoute } from '../../../src/ingress/routes';

const V1 = 'routes:\n  - host: a.example.com\n    upstream: { service: one.svc.example }\n';
const V2 = 'routes:\n  - host: a.example.com\n    upstream: { service: two.svc.example }\n';

test('a reload picks up a new table and refuses a bad one, keeping the running table', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'gatehouse-routes-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'routes.yaml');
  await writeFile(file, V1);
  const source = await openRoutesSource(file);
  t.after(() => source.close());
  const upstream = (): string => {
    const r = resolveRoute(source.current, 'a.example.com', '/');
    return r.ok ? r.upstream.host : r.reason;
  };
  assert.equal(upstream(), 'one.svc.example');
  await writeFile(file, V2);
  assert.equal((await source.reload()).ok, true);
  assert.equal(upstream(), 'two.svc.example');
  await writeFile(file, 'routes:\n  - host: a.example.com\n    upstream: { servce: x }\n');
  const bad = await source.reload();
  assert.equal(bad.ok, false);
  assert.equal(bad.ok ? '' : bad.error.message, `${file}:3:17: Expected one of service, url, rewrite, port for an upstream key but received "servce"`);
  assert.equal(upstream(), 'two.svc.example');
});

test('a missing routes file is ERR_POLICY', async () => {
  await assert.rejects(openRoutesSource('/nonexistent/gatehouse-routes.yaml'), { code: 'ERR_POLICY' });
});
