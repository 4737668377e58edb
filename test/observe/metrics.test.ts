import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import { GatehouseError } from '../../src/errors';
import type { NativeCounters } from '../../src/native/binding';
import { CounterBlockSet, registerCounterBlock } from '../../src/observe/metrics';
import { parseExposition, seriesWithPrefix } from './exposition';

/** Stands in for a native engine's live block: same shape, values we mutate between scrapes. */
function nativeLikeBlock(names: readonly string[]): NativeCounters {
  return { names, values: new BigUint64Array(names.length) };
}

const NAMES = ['rx_packets', 'tx_packets', 'flows_active'] as const;

test('a single block: counters read live at scrape time, gauges as gauges', async () => {
  const registry = new Registry();
  const block = nativeLikeBlock(NAMES);
  registerCounterBlock(registry, {
    prefix: 'gatehouse_tunnel_',
    block,
    help: { rx_packets: 'GENEVE datagrams received', flows_active: 'flows in the flow table' },
    gauges: ['flows_active'],
  });

  let e = parseExposition(await registry.metrics());
  assert.equal(e.samples.get('gatehouse_tunnel_rx_packets_total'), 0);
  assert.equal(e.types.get('gatehouse_tunnel_rx_packets_total'), 'counter');
  assert.equal(e.types.get('gatehouse_tunnel_flows_active'), 'gauge');
  assert.equal(e.help.get('gatehouse_tunnel_rx_packets_total'), 'GENEVE datagrams received');
  assert.equal(e.help.get('gatehouse_tunnel_tx_packets_total'), 'tx_packets'); // no help given: the name

  block.values[0] = 123_456_789_012n;
  block.values[1] = 7n;
  block.values[2] = 42n;
  e = parseExposition(await registry.metrics());
  assert.equal(e.samples.get('gatehouse_tunnel_rx_packets_total'), 123_456_789_012);
  assert.equal(e.samples.get('gatehouse_tunnel_tx_packets_total'), 7);
  assert.equal(e.samples.get('gatehouse_tunnel_flows_active'), 42);

  block.values[2] = 3n; // a gauge goes down
  e = parseExposition(await registry.metrics());
  assert.equal(e.samples.get('gatehouse_tunnel_flows_active'), 3);
  assert.equal(e.samples.get('gatehouse_tunnel_rx_packets_total'), 123_456_789_012);
});

test('blocks per endpoint: labelled series, and a removed endpoint disappears', async () => {
  const registry = new Registry();
  const set = new CounterBlockSet(registry, {
    prefix: 'gatehouse_endpoint_',
    help: 'per-endpoint counter',
    gauges: ['flows_active'],
    labelNames: ['endpoint'],
  });
  const a = nativeLikeBlock(NAMES);
  const b = nativeLikeBlock(NAMES);
  set.add({ endpoint: 'vpce-0aaa' }, a);
  set.add({ endpoint: 'vpce-0bbb' }, b);
  a.values[0] = 10n;
  b.values[0] = 20n;
  b.values[2] = 5n;

  let e = parseExposition(await registry.metrics());
  assert.deepEqual(seriesWithPrefix(e, 'gatehouse_endpoint_'), [
    'gatehouse_endpoint_flows_active{endpoint="vpce-0aaa"}',
    'gatehouse_endpoint_flows_active{endpoint="vpce-0bbb"}',
    'gatehouse_endpoint_rx_packets_total{endpoint="vpce-0aaa"}',
    'gatehouse_endpoint_rx_packets_total{endpoint="vpce-0bbb"}',
    'gatehouse_endpoint_tx_packets_total{endpoint="vpce-0aaa"}',
    'gatehouse_endpoint_tx_packets_total{endpoint="vpce-0bbb"}',
  ]);
  assert.equal(e.samples.get('gatehouse_endpoint_rx_packets_total{endpoint="vpce-0aaa"}'), 10);
  assert.equal(e.samples.get('gatehouse_endpoint_rx_packets_total{endpoint="vpce-0bbb"}'), 20);
  assert.equal(e.samples.get('gatehouse_endpoint_flows_active{endpoint="vpce-0bbb"}'), 5);

  assert.equal(set.remove({ endpoint: 'vpce-0aaa' }), true);
  assert.equal(set.remove({ endpoint: 'vpce-0aaa' }), false);
  b.values[0] = 21n;
  e = parseExposition(await registry.metrics());
  assert.deepEqual(seriesWithPrefix(e, 'gatehouse_endpoint_'), [
    'gatehouse_endpoint_flows_active{endpoint="vpce-0bbb"}',
    'gatehouse_endpoint_rx_packets_total{endpoint="vpce-0bbb"}',
    'gatehouse_endpoint_tx_packets_total{endpoint="vpce-0bbb"}',
  ]);
  assert.equal(e.samples.get('gatehouse_endpoint_rx_packets_total{endpoint="vpce-0bbb"}'), 21);

  // Re-created endpoint: a new block under the same labels replaces the old one.
  const b2 = nativeLikeBlock(NAMES);
  b2.values[0] = 1n;
  set.add({ endpoint: 'vpce-0bbb' }, b2);
  e = parseExposition(await registry.metrics());
  assert.equal(e.samples.get('gatehouse_endpoint_rx_packets_total{endpoint="vpce-0bbb"}'), 1);
  assert.equal(set.size, 1);

  set.close();
  assert.deepEqual(seriesWithPrefix(parseExposition(await registry.metrics()), 'gatehouse_endpoint_'), []);
  assert.equal(registry.getSingleMetric('gatehouse_endpoint_rx_packets_total'), undefined);
});

test('a block with a counter the others lack: only it has that series', async () => {
  const registry = new Registry();
  const set = new CounterBlockSet(registry, { prefix: 'g_', help: 'h', labelNames: ['endpoint'] });
  const old = nativeLikeBlock(['rx']);
  old.values[0] = 1n;
  set.add({ endpoint: 'a' }, old);
  const newer = nativeLikeBlock(['rx', 'drops']);
  newer.values.set([2n, 3n]);
  set.add({ endpoint: 'b' }, newer);
  const e = parseExposition(await registry.metrics());
  assert.deepEqual(seriesWithPrefix(e, 'g_'), ['g_drops_total{endpoint="b"}', 'g_rx_total{endpoint="a"}', 'g_rx_total{endpoint="b"}']);
  assert.equal(e.samples.get('g_drops_total{endpoint="b"}'), 3);
});

test('invalid input is refused with ERR_INVALID_ARG', () => {
  const registry = new Registry();
  const rejects = (fn: () => unknown, message: string): void =>
    assert.throws(fn, (err: unknown) => err instanceof GatehouseError && err.code === 'ERR_INVALID_ARG' && err.message === message);

  rejects(
    () => new CounterBlockSet(registry, { prefix: 'bad-prefix', help: 'h' }),
    'Expected a Prometheus metric name prefix ([a-zA-Z_:][a-zA-Z0-9_:]*) for prefix but received "bad-prefix"',
  );
  rejects(
    () => new CounterBlockSet(registry, { prefix: 'p_', help: 'h', labelNames: ['__reserved'] }),
    'Expected a Prometheus label name for labelNames but received "__reserved"',
  );
  const set = new CounterBlockSet(registry, { prefix: 'p_', help: 'h', labelNames: ['endpoint'] });
  rejects(
    () => set.add({ endpoint: 'x', extra: 'y' } as { endpoint: string }, nativeLikeBlock(['a'])),
    'Expected labels {endpoint} for labels but received "{endpoint, extra}"',
  );
  rejects(
    () => set.add({ endpoint: 'x' }, { names: ['a', 'b'], values: new BigUint64Array(1) }),
    'Expected 1 counter names for block.names but received "2 names"',
  );
  rejects(() => set.add({ endpoint: 'x' }, nativeLikeBlock(['has space'])), 'Expected a counter name usable in a Prometheus metric name for block.names but received "has space"');
  registerCounterBlock(registry, { prefix: 'q_', help: 'h', block: nativeLikeBlock(['a']) });
  rejects(
    () => registerCounterBlock(registry, { prefix: 'q_', help: 'h', block: nativeLikeBlock(['a']) }),
    'Expected a metric name not yet registered for prefix + counter name but received "q_a_total"',
  );
});
