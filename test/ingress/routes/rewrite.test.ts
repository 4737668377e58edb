import { test } from 'node:test';
import assert from 'node:assert/strict';
import { firstDotToService, swapSuffix } from '../../../src/ingress/routes';

test("the seed's rule replaces the first dot with -service.", () => {
  assert.deepEqual(firstDotToService('billing.apps.example.com'), { ok: true, host: 'billing-service.apps.example.com' });
  assert.deepEqual(firstDotToService('a.b'), { ok: true, host: 'a-service.b' });
  assert.deepEqual(firstDotToService('x.y.z.example.com'), { ok: true, host: 'x-service.y.z.example.com' });
});

test('a name of one label has no dot to rewrite', () => {
  assert.deepEqual(firstDotToService('localhost'), { ok: false, reason: '"localhost" has no dot after its first label to rewrite' });
  assert.equal(firstDotToService('.example.com').ok, false);
});

test('a rewrite that makes a label longer than 63 characters is refused', () => {
  const result = firstDotToService(`${'a'.repeat(60)}.example.com`);
  assert.equal(result.ok, false);
  assert.match(result.ok ? '' : result.reason, /a label longer than 63 characters/);
});

test('suffix swap replaces only a whole trailing suffix after a label', () => {
  assert.deepEqual(swapSuffix('shop.example.org', '.example.org', '.svc.internal'), { ok: true, host: 'shop.svc.internal' });
  assert.deepEqual(swapSuffix('a.b.example.org', '.example.org', '.svc.internal'), { ok: true, host: 'a.b.svc.internal' });
  assert.equal(swapSuffix('example.org', '.example.org', '.svc.internal').ok, false);
  assert.equal(swapSuffix('shop.example.com', '.example.org', '.svc.internal').ok, false);
});
