import { test } from 'node:test';
import assert from 'node:assert/strict';
import { composeHealth, type HealthCheck, type HealthReport } from '../../src/observe/health';

const check = (name: string, report: () => HealthReport): HealthCheck => ({ name, check: report });

test('composeHealth: healthy only when every component is', () => {
  const ok = composeHealth([check('a', () => ({ healthy: true })), check('b', () => ({ healthy: true, reason: 'warming up' }))]);
  assert.deepEqual(ok, {
    healthy: true,
    reasons: [],
    components: [
      { name: 'a', healthy: true, reason: null, details: {}, children: [] },
      { name: 'b', healthy: true, reason: 'warming up', details: {}, children: [] },
    ],
  });

  const bad = composeHealth([check('a', () => ({ healthy: true })), check('b', () => ({ healthy: false, reason: 'no socket' }))]);
  assert.equal(bad.healthy, false);
  assert.deepEqual(bad.reasons, ['b: no socket']);
});

test('composeHealth: no checks is healthy (nothing can be wrong yet)', () => {
  assert.deepEqual(composeHealth([]), { healthy: true, reasons: [], components: [] });
});

test('composeHealth: an unhealthy child makes its parent unhealthy; reasons carry the path, parents first', () => {
  const h = composeHealth([
    check('tunnel', () => ({
      healthy: false,
      reason: 'degraded',
      details: { endpoints: 2 },
      children: [
        { name: 'vpce-1', healthy: true, details: { packets: 5 } },
        { name: 'vpce-2', healthy: false, reason: 'gwi-x is down', children: [{ name: 'hook', healthy: false }] },
      ],
    })),
    check('proxy', () => ({ healthy: true, children: [{ name: 'listener', healthy: false, reason: 'closed' }] })),
  ]);
  assert.equal(h.healthy, false);
  assert.deepEqual(h.reasons, [
    'tunnel: degraded',
    'tunnel/vpce-2: gwi-x is down',
    'tunnel/vpce-2/hook: unhealthy',
    'proxy/listener: closed',
  ]);
  const [tunnel, proxy] = h.components;
  assert.equal(tunnel?.children[0]?.healthy, true);
  assert.deepEqual(tunnel?.children[0]?.details, { packets: 5 });
  assert.equal(tunnel?.children[1]?.children[0]?.reason, 'unhealthy');
  // Healthy itself, unhealthy through a child: marked unhealthy, and says which child.
  assert.equal(proxy?.healthy, false);
  assert.equal(proxy?.reason, 'unhealthy children: listener');
});

test('composeHealth: a throwing check is unhealthy with the error as reason; the others still run', () => {
  let ran = false;
  const h = composeHealth([
    check('boom', () => {
      throw new Error('kaput\nsecond line');
    }),
    check('after', () => {
      ran = true;
      return { healthy: true };
    }),
  ]);
  assert.equal(ran, true);
  assert.equal(h.healthy, false);
  assert.deepEqual(h.reasons, ['boom: check threw: kaput second line']);
  assert.equal(h.components[1]?.healthy, true);
});

test('composeHealth: an invalid report is unhealthy, not a crash', () => {
  const h = composeHealth([
    { name: 'weird', check: () => ({ healthy: 'yes' }) as unknown as HealthReport },
    { name: 'none', check: () => undefined as unknown as HealthReport },
  ]);
  assert.deepEqual(h.reasons, [
    'weird: check returned an invalid report (expected { healthy: boolean })',
    'none: check returned an invalid report (expected { healthy: boolean })',
  ]);
});

test('composeHealth: details become JSON-safe (bigints, cycles, Dates, functions)', () => {
  const cyclic: Record<string, unknown> = { a: 1 };
  cyclic.self = cyclic;
  const h = composeHealth([
    check('c', () => ({
      healthy: true,
      details: {
        small: 42n,
        huge: 2n ** 64n - 1n,
        when: new Date(Date.UTC(2024, 0, 2)) as unknown as string,
        nan: Number.NaN,
        fn: (() => 1) as unknown as string,
        nested: cyclic as never,
        list: [1n, 'x', null] as never,
      },
    })),
  ]);
  assert.deepEqual(h.components[0]?.details, {
    small: 42,
    huge: '18446744073709551615',
    when: '2024-01-02T00:00:00.000Z',
    nan: 'NaN',
    nested: { a: 1, self: '[cycle]' },
    list: [1, 'x', null],
  });
  // And the whole tree survives JSON.
  assert.deepEqual(JSON.parse(JSON.stringify(h)), h);
});
