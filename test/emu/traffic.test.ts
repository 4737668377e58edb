import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeGeneve, readGwlbFields } from '../../src/geneve';
import { GENEVE_REASONS } from '../../src/geneve/reasons';
import { flowTemplate, malformedTemplates, planTraffic, seededRandom } from '../../src/emu/traffic';

test('flows spread over endpoints, sockets and families; cookies and 5-tuples unique', () => {
  const plan = planTraffic({ enis: 10, flows: 10_000, protocol: 'udp', v6Percent: 20, sockets: 4 });
  assert.equal(plan.endpoints.length, 10);
  assert.equal(plan.flows.filter((f) => f.family === 6).length, 2000);
  const perEndpoint = new Array(10).fill(0);
  for (const f of plan.flows) perEndpoint[f.endpoint]++;
  assert.deepEqual(perEndpoint, new Array(10).fill(1000));
  const tuples = new Set(plan.flows.map((f) => `${f.src.join('.')}|${f.srcPort}|${f.dst.join('.')}|${f.dstPort}`));
  assert.equal(tuples.size, 10_000);
  assert.equal(new Set(plan.flows.map((f) => f.socket)).size, 4);
  assert.equal(new Set(plan.endpoints.map((e) => e.eni)).size, 10);
});

test('a flow template is a GWLB datagram carrying its endpoint and cookie', () => {
  const plan = planTraffic({ enis: 3, flows: 30, protocol: 'tcp', v6Percent: 50, sockets: 1 });
  for (const f of plan.flows) {
    const t = flowTemplate(plan, f, 200);
    const d = decodeGeneve(t.bytes);
    assert.ok(d.ok, 'template decodes');
    if (!d.ok) return;
    const fields = readGwlbFields(d.value);
    assert.equal(fields.eni, plan.endpoints[f.endpoint].eni);
    assert.equal(fields.attachment, plan.endpoints[f.endpoint].attachment);
    assert.equal(fields.cookie, f.cookie);
    assert.equal(d.value.inner.length, 200);
    assert.equal(t.bytes.length - d.value.inner.length, 40, 'GWLB GENEVE header is 40 bytes');
    assert.equal(t.bytes[t.ttlOffset], 64);
    assert.ok(t.stampOffset > 40 && t.stampOffset + 24 <= t.bytes.length);
    assert.equal(t.ipChecksumOffset === -1, f.family === 6);
  }
});

test('malformed templates: one per kind and family, each rejected with its own reason', () => {
  const plan = planTraffic({ enis: 1, flows: 10, protocol: 'udp', v6Percent: 50, sockets: 1 });
  const ts = malformedTemplates(plan, 128, GENEVE_REASONS);
  assert.equal(ts.length, GENEVE_REASONS.length * 2);
  for (const t of ts) {
    const d = decodeGeneve(t.bytes);
    assert.equal(d.ok, false);
    if (!d.ok) assert.equal(d.reason, GENEVE_REASONS[t.malformedKind]);
  }
});

test('a seed gives the same endpoints and cookies every time; different seeds differ', () => {
  const spec = { enis: 4, flows: 100, protocol: 'udp' as const, v6Percent: 20, sockets: 2 };
  const a = planTraffic(spec, seededRandom(7));
  const b = planTraffic(spec, seededRandom(7));
  const c = planTraffic(spec, seededRandom(8));
  assert.deepEqual(a, b);
  assert.notDeepEqual(a.endpoints, c.endpoints);
  assert.equal(new Set(a.flows.map((f) => f.cookie)).size, 100);
  assert.equal(seededRandom(1)(70).length, 70);
});
