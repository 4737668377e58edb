/**
 * The inspect engine through its TypeScript API (src/native/inspect.ts),
 * in a namespace pair with the real emulator as GWLB (see tunnel-harness.ts
 * for the topology). The verdicts come from a fixed rule in
 * inspect-netns-helper.ts, so what is tested is the core's part: holding,
 * releasing, dropping, sending payload up, injecting, counting, ending flows.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { JsonLinesProcess, nodeInNamespace } from '../helpers/json-lines-process';
import { skipUnlessNetAdmin } from '../helpers/system';
import { buildTopology, GWLB, runEmu, runProbe, type Topology } from './tunnel-harness';
import type { InspectHelperOptions, InspectHelperRule, InspectHelperSnapshot } from './inspect-netns-helper';
import { checkInspectOptions } from '../../src/native/inspect';
import { encodeGeneve, gwlbOptions } from '../../src/geneve';
import { buildInnerPacket } from '../../src/packet/inner';
import { GENEVE_REASONS } from '../../src/geneve/reasons';

const HELPER = path.join(__dirname, 'inspect-netns-helper.js');

const OPTIONS: InspectHelperOptions = {
  bind: '0.0.0.0',
  port: 6081,
  udpThreads: 2,
  rcvbuf: 8 << 20,
  sndbuf: 8 << 20,
  batch: 64,
  flowIdleMs: 350_000,
  maxEndpoints: 64,
  maxFlows: 100_000,
  heldPerFlow: 32,
  heldBytes: 32 << 20,
  payloadUpcalls: 8,
  tapPackets: 8,
  allowedSources: [],
};

/** What inspect-netns-helper.js prints: 'ready' once, then a snapshot per 'state' and the 'final' one at 'stop'. */
type InspectHelperLine = { type: 'ready' } | InspectHelperSnapshot;

class InspectProcess extends JsonLinesProcess<InspectHelperLine> {
  constructor(ns: string, options: InspectHelperOptions, rule: InspectHelperRule) {
    super(nodeInNamespace(ns, HELPER, ['inspect', JSON.stringify(options), JSON.stringify(rule)]), 'inspect helper');
  }

  private async next(type: InspectHelperLine['type'], from: number): Promise<InspectHelperSnapshot> {
    return (await this.waitFor((m) => m.type === type, from)) as InspectHelperSnapshot;
  }

  ready(): Promise<InspectHelperSnapshot> {
    return this.next('ready', 0);
  }

  /** A snapshot taken once `until` holds for one (polled, bounded). */
  async state(until: (s: InspectHelperSnapshot) => boolean = () => true): Promise<InspectHelperSnapshot> {
    const deadline = Date.now() + 15_000;
    for (;;) {
      const from = this.messages.length;
      this.send('state');
      const s = await this.next('state', from);
      if (until(s) || Date.now() > deadline) return s;
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async stop(): Promise<InspectHelperSnapshot> {
    const from = this.messages.length;
    this.send('stop');
    return this.next('final', from);
  }
}

async function withEngine(rule: InspectHelperRule, options: Partial<InspectHelperOptions>, body: (topo: Topology, engine: InspectProcess) => Promise<void>): Promise<void> {
  const topo = buildTopology();
  const engine = new InspectProcess(topo.a, { ...OPTIONS, ...options }, rule);
  try {
    await engine.ready();
    await body(topo, engine);
  } finally {
    engine.kill();
    topo.cleanup();
  }
}

const LOAD = ['--bind', GWLB, '--rate', '10000', '--duration', '1', '--enis', '4', '--flows', '1000', '--v6', '20'];

test('inspect options are checked before the engine starts', () => {
  const ok = { ...OPTIONS, onEvents: () => undefined };
  assert.throws(() => checkInspectOptions({ ...ok, payloadUpcalls: 0 }), /Expected integer between 1 and 64 for payloadUpcalls but received 0/);
  assert.throws(() => checkInspectOptions({ ...ok, heldPerFlow: 5000 }), /for heldPerFlow/);
  assert.throws(() => checkInspectOptions({ ...ok, bind: 'x' }), /for bind/);
  assert.equal(checkInspectOptions(ok).tapPackets, 8);
});

test('inspect engine: allow on the first packet returns every packet byte for byte; each flow asks once', { timeout: 60_000 }, async (t) => {
  if (skipUnlessNetAdmin(t)) return;
  await withEngine({ first: 'allow' }, {}, async (topo, engine) => {
    const r = await runEmu(topo.g, [...LOAD, '--malformed', '10']);
    const s = await engine.state((x) => x.counters.rx_packets >= r.sent);
    const c = s.counters;
    assert.equal(r.invalid, 0, JSON.stringify(r.invalid_by_reason));
    assert.equal(r.good_all_returned, true);
    for (const kind of GENEVE_REASONS) assert.equal(r.malformed[kind]?.returned ?? 0, 0, `${kind} came back`);
    assert.equal(c.flows_created, 1000);
    assert.equal(s.firstEvents, 1000);
    assert.equal(c.upcalls, 1000);
    assert.equal(c.held, 1000, 'the first packet of each flow waited for its verdict');
    assert.equal(c.verdict_allow_packets, r.sent_good);
    assert.equal(c.tx_packets, r.sent_good);
    assert.equal(c.dropped_malformed, r.sent - r.sent_good);
    assert.equal(c.held_dropped + c.upcalls_dropped + c.drop_unparsable_inner + c.verdict_drop_packets, 0);
  });
});

test('inspect engine: drop on the first packet returns nothing; held packets are counted as dropped', { timeout: 60_000 }, async (t) => {
  if (skipUnlessNetAdmin(t)) return;
  await withEngine({ first: 'drop' }, {}, async (topo, engine) => {
    const r = await runEmu(topo.g, LOAD);
    const s = await engine.state((x) => x.counters.rx_packets >= r.sent);
    const c = s.counters;
    assert.equal(r.valid, 0);
    assert.equal(c.tx_packets, 0);
    assert.equal(c.verdict_drop_packets, r.sent, 'every packet dropped by the verdict, held ones included');
  });
});

test('inspect engine: inspect holds payload and sends it up; allow after 3 payload packets releases them in order', { timeout: 60_000 }, async (t) => {
  if (skipUnlessNetAdmin(t)) return;
  await withEngine({ first: 'inspect', afterPayloads: 3, then: 'allow' }, {}, async (topo, engine) => {
    // emu's TCP segments are PSH|ACK with data: every flow arrives mid-stream.
    const r = await runEmu(topo.g, ['--bind', GWLB, '--rate', '2000', '--duration', '1', '--enis', '2', '--flows', '100', '--proto', 'tcp', '--v6', '50']);
    const s = await engine.state((x) => x.counters.rx_packets >= r.sent);
    const c = s.counters;
    assert.equal(r.invalid, 0, JSON.stringify(r.invalid_by_reason));
    assert.equal(r.loss_pct, 0, 'held packets were all released');
    assert.equal(s.midstreamFlows, 100);
    assert.equal(s.payloadEvents, 300, 'three payload packets of each flow went up, then the verdict');
    assert.equal(c.upcalls, 300);
    assert.ok(c.held >= 300);
    assert.equal(c.passed_handshake, 0);
    assert.equal(c.tx_packets, r.sent);
  });
});

test('inspect engine: inject sends a packet inside the flow\'s own GENEVE header; flows end with their counts', { timeout: 60_000 }, async (t) => {
  if (skipUnlessNetAdmin(t)) return;
  await withEngine({ first: 'inspect', afterPayloads: 1, then: 'inject-drop' }, { flowIdleMs: 1000 }, async (topo, engine) => {
    const inner = buildInnerPacket({ src: Buffer.from([198, 51, 100, 10]), dst: Buffer.from([203, 0, 113, 10]), protocol: 'udp', srcPort: 40000, dstPort: 53, size: 60 }).bytes;
    const options = [...gwlbOptions({ eni: 0x0123456789abcdefn, attachment: 0x1111n, cookie: 0xc0ffee }), { optClass: 0x0999, type: 9, data: Buffer.from('keepthis') }];
    const datagram = encodeGeneve({ oam: false, critical: false, protocol: 0x0800, vni: 0, options, inner });
    const [reply] = await runProbe(topo.g, 45_678, [datagram]);
    assert.ok(reply, 'the injected packet came back');
    assert.equal(reply.port, 45_678, 'from the flow\'s own outer source port');
    const got = Buffer.from(reply.hex, 'hex');
    const headerLen = datagram.length - inner.length;
    assert.deepEqual(got.subarray(0, headerLen), datagram.subarray(0, headerLen), 'the GENEVE header as received, unknown option kept');
    const expected = Buffer.from(inner);
    expected[8]--;
    assert.deepEqual(got.subarray(headerLen), expected, 'the injected inner packet');
    const s = await engine.state((x) => x.flowEnds.length >= 1);
    assert.equal(s.injected, 1);
    assert.equal(s.counters.injected, 1);
    assert.equal(s.flowEnds.length, 1);
    const end = s.flowEnds[0];
    assert.equal(end.reason, 'timeout');
    assert.equal(end.verdict, 'drop');
    assert.deepEqual([end.client, end.clientPort, end.server, end.serverPort, end.protocol], ['198.51.100.10', 40000, '203.0.113.10', 53, 17]);
    assert.deepEqual([end.pktsToServer, end.pktsToClient, end.bytesToServer], [1, 0, 60]);
    assert.ok(end.endMs >= end.startMs);
    const final = await engine.stop();
    assert.equal(final.open, 0);
  });
});

test('inspect engine: the flows open at stop come back from stop()', { timeout: 60_000 }, async (t) => {
  if (skipUnlessNetAdmin(t)) return;
  await withEngine({ first: 'allow' }, {}, async (topo, engine) => {
    const r = await runEmu(topo.g, ['--bind', GWLB, '--count', '200', '--rate', '2000', '--enis', '1', '--flows', '50']);
    await engine.state((x) => x.counters.rx_packets >= r.sent);
    const final = await engine.stop();
    assert.equal(final.open, 50);
    assert.equal(final.flowEnds.filter((e) => e.reason === 'shutdown').length, 50);
    assert.equal(final.flowEnds.reduce((a, e) => a + e.pktsToServer + e.pktsToClient, 0), 200);
    assert.equal(final.counters.flows_active, 0);
  });
});

test('inspect engine: the same 5-tuple behind two endpoints is two flows, each with its own verdict', { timeout: 60_000 }, async (t) => {
  if (skipUnlessNetAdmin(t)) return;
  await withEngine({ first: 'allow' }, { flowIdleMs: 1000 }, async (topo, engine) => {
    const inner = buildInnerPacket({ src: Buffer.from([198, 51, 100, 10]), dst: Buffer.from([203, 0, 113, 10]), protocol: 'udp', srcPort: 40001, dstPort: 443, size: 60 }).bytes;
    const datagram = (eni: bigint) =>
      encodeGeneve({ oam: false, critical: false, protocol: 0x0800, vni: 0, options: gwlbOptions({ eni, attachment: 1n, cookie: 7 }), inner });
    // Overlapping VPC CIDRs behind two GWLB endpoints.
    const replies = await runProbe(topo.g, 45_679, [datagram(0x0aaan), datagram(0x0bbbn)]);
    assert.equal(replies.filter(Boolean).length, 2);
    const s = await engine.state((x) => x.flowEnds.length >= 2);
    assert.equal(s.firstEvents, 2, 'each endpoint\'s flow asked for its own verdict');
    assert.equal(s.counters.flows_created, 2);
    assert.deepEqual(s.flowEnds.map((e) => e.pktsToServer), [1, 1]);
  });
});
