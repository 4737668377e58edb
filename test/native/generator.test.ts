import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as dgram from 'node:dgram';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { startGenerator, type Generator } from '../../src/native/generator';
import { startReflector, type Reflector } from '../../src/native/reflector';
import { GENERATOR_COUNTER_NAMES, readCounters, type GeneratorCounterName } from '../../src/native/counters';
import { LATENCY_BUCKETS } from '../../src/native/latency';
import { GENEVE_REASONS } from '../../src/geneve/reasons';
import type { GeneratorOptions, GeneratorTemplate } from '../../src/native/binding';
import { skipUnlessNetAdmin } from '../helpers/system';
import { be16, be64, goodTemplate, l4Checksum, malformedTemplates, onesSum } from './packets';

const RUN_TAG = 0x0123456789abcdefn;
const INNER = 128;

/** Every good kind of template: IPv4/UDP, IPv6/UDP, IPv4/TCP, IPv4/ICMP, IPv6/ICMPv6, and stamps at odd offsets. */
function goodTemplates(sockets: number): GeneratorTemplate[] {
  return [
    goodTemplate(4, 'udp', INNER, 0 % sockets),
    goodTemplate(6, 'udp', INNER, 1 % sockets),
    goodTemplate(4, 'tcp', INNER, 2 % sockets),
    goodTemplate(4, 'icmp', INNER, 0 % sockets),
    goodTemplate(6, 'icmp', INNER, 1 % sockets),
    goodTemplate(4, 'udp', INNER, 2 % sockets, 1),
    goodTemplate(6, 'tcp', INNER, 0 % sockets, 3),
  ];
}

function options(target: { port: number }, patch: Partial<GeneratorOptions>): GeneratorOptions {
  return {
    target: '127.0.0.1',
    targetPort: target.port,
    bind: '127.0.0.2',
    replyPort: target.port,
    sourcePorts: [0, 0, 0],
    templates: goodTemplates(3),
    malformedPerMillion: 0,
    rate: 20_000,
    count: 2000,
    durationMs: 10_000,
    batch: 64,
    ignoreTtl: false,
    rcvbuf: 4 << 20,
    sndbuf: 0,
    runTag: RUN_TAG,
    ...patch,
  };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Waits (bounded) until `cond` holds. */
async function waitFor(cond: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond() && Date.now() < end) await sleep(10);
}

type Counts = Record<GeneratorCounterName, number>;

/** Runs the generator to the end of sending, then until `received` reaches what `expect` says (bounded). */
async function run(opts: GeneratorOptions, expectReceived: (c: Counts) => number): Promise<{ c: Counts; gen: Generator }> {
  const gen = startGenerator(opts);
  try {
    await waitFor(() => readCounters(gen.counters).sender_done === 1);
    await waitFor(() => {
      const c = readCounters(gen.counters);
      return c.received >= expectReceived(c);
    });
    await sleep(20); // a straggler (a duplicate, say) would show up now
  } finally {
    gen.stop();
  }
  return { c: readCounters(gen.counters), gen };
}

const INVALID: GeneratorCounterName[] = [
  'invalid_not_from_target',
  'invalid_geneve',
  'invalid_unknown_flow',
  'invalid_header_mismatch',
  'invalid_inner_mismatch',
  'invalid_duplicate',
];

function assertNoInvalid(c: Counts): void {
  for (const name of INVALID) assert.equal(c[name], 0, name);
}

/** received must split into exactly the classification counters. */
function assertClassified(c: Counts): void {
  let sum = c.valid;
  for (const name of INVALID) sum += c[name];
  for (const r of GENEVE_REASONS) sum += c[`returned_malformed_${r}`];
  assert.equal(sum, c.received, 'every reply lands in exactly one counter');
  let geneve = 0;
  for (const r of GENEVE_REASONS) geneve += c[`invalid_geneve_${r}`];
  assert.equal(geneve, c.invalid_geneve);
}

async function withReflector(validate: boolean, body: (r: Reflector) => Promise<void>): Promise<void> {
  const r = startReflector({ bind: '127.0.0.1', port: 0, threads: 1, rcvbuf: 4 << 20, sndbuf: 0, batch: 64, validate });
  try {
    await body(r);
  } finally {
    r.stop();
  }
}

test('generator against the reflector: every packet comes back valid', async (t) => {
  if (skipUnlessNetAdmin(t)) return;
  await withReflector(false, async (r) => {
    const opts = options(r, { count: 20_000, rate: 20_000 });
    const { c, gen } = await run(opts, (x) => x.sent);
    assert.equal(c.sent, 20_000);
    assert.equal(c.send_errors, 0);
    assert.equal(c.rx_overflow, 0);
    assert.equal(c.received, 20_000);
    assert.equal(c.valid, 20_000);
    assertNoInvalid(c);
    assertClassified(c);
    const lengths = opts.templates.map((tp) => tp.bytes.length);
    const expectBytes = Array.from({ length: 20_000 }, (_, i) => lengths[i % lengths.length]).reduce((a, b) => a + b, 0);
    assert.equal(c.sent_bytes, expectBytes);
    assert.equal(c.received_bytes, expectBytes);
    const rc = readCounters(r.counters);
    assert.equal(rc.rx_packets, 20_000);
    assert.equal(rc.tx_packets, 20_000);
    // Every valid reply is one latency sample.
    assert.equal(gen.latency.length, LATENCY_BUCKETS);
    assert.equal(gen.latency.reduce((a, b) => a + b, 0n), 20_000n);
    assert.ok(gen.latencyMax[0] > 0n);
    // The native bucketing agrees with the layout binding.ts describes: the
    // largest sample sits in the highest bucket used.
    const max = gen.latencyMax[0];
    const e = max.toString(2).length - 1;
    const maxBucket = max < 16n ? Number(max) : (e - 3) * 16 + Number((max >> BigInt(e - 4)) & 15n);
    const used = [...gen.latency.keys()].filter((i) => gen.latency[i] > 0n);
    assert.equal(used[used.length - 1], maxBucket);
  });
});

test('generator mixes in malformed templates; the reflector returns them and they are counted per kind', async (t) => {
  if (skipUnlessNetAdmin(t)) return;
  await withReflector(false, async (r) => {
    const opts = options(r, { count: 2600, templates: [...goodTemplates(3), ...malformedTemplates(1)], malformedPerMillion: 100_000 });
    const { c } = await run(opts, (x) => x.sent);
    assert.equal(c.sent, 2600);
    assert.equal(c.sent_malformed, 260, 'one in ten, spread evenly');
    for (const reason of GENEVE_REASONS) {
      assert.equal(c[`sent_malformed_${reason}`], 20, `sent ${reason}`);
      assert.equal(c[`returned_malformed_${reason}`], 20, `returned ${reason}`);
    }
    assert.equal(c.received, 2600);
    assert.equal(c.valid, 2340);
    assertNoInvalid(c);
    assertClassified(c);
  });
});

test('with a validating reflector no malformed packet comes back and every good one does', async (t) => {
  if (skipUnlessNetAdmin(t)) return;
  await withReflector(true, async (r) => {
    const opts = options(r, { count: 2600, templates: [...goodTemplates(3), ...malformedTemplates(2)], malformedPerMillion: 100_000 });
    const { c } = await run(opts, (x) => x.sent - x.sent_malformed);
    assert.equal(c.sent, 2600);
    assert.equal(c.received, 2340);
    assert.equal(c.valid, 2340);
    for (const reason of GENEVE_REASONS) assert.equal(c[`returned_malformed_${reason}`], 0, reason);
    assertNoInvalid(c);
    const rc = readCounters(r.counters);
    assert.equal(rc.dropped_malformed, 260);
    for (const reason of GENEVE_REASONS) assert.equal(rc[`malformed_${reason}`], 20, reason);
  });
});

test('stamped packets carry run tag, sequence and time, with inner checksums still correct', async (t) => {
  if (skipUnlessNetAdmin(t)) return;
  // A plain socket stands in for the target and keeps what arrives.
  const target = dgram.createSocket('udp4');
  const got: Buffer[] = [];
  target.on('message', (m) => got.push(m));
  target.bind(0, '127.0.0.1');
  await once(target, 'listening');
  try {
    const templates = goodTemplates(1);
    const port = (target.address() as AddressInfo).port;
    const count = 140;
    const gen = startGenerator(options({ port }, { templates, sourcePorts: [0], count, rate: 5000 }));
    try {
      await waitFor(() => got.length >= count);
    } finally {
      gen.stop();
    }
    assert.equal(got.length, count);
    const seen = new Set<bigint>();
    for (const p of got) {
      const stampAt = (tp: GeneratorTemplate): number => tp.stampOffset;
      // Which template: the one whose stamp offset holds our run tag and whose index matches seq.
      const tp = templates.find((x) => be64(p, stampAt(x)) === RUN_TAG && Number(be64(p, x.stampOffset + 8) % BigInt(templates.length)) === templates.indexOf(x));
      assert.ok(tp, 'a stamp of this run at a template stamp offset');
      const seq = be64(p, tp.stampOffset + 8);
      const sentNs = be64(p, tp.stampOffset + 16);
      assert.ok(sentNs > 0n);
      seen.add(seq);
      assert.equal(p.length, tp.bytes.length);
      // Identical to the template except the stamp and the L4 checksum.
      const expect = Buffer.from(tp.bytes);
      p.copy(expect, tp.stampOffset, tp.stampOffset, tp.stampOffset + 24);
      p.copy(expect, tp.checksumOffset, tp.checksumOffset, tp.checksumOffset + 2);
      assert.deepEqual(p, expect);
      // The L4 checksum is right for the stamped bytes, by an independent computation.
      const h = tp.ttlOffset - (p[40] >> 4 === 4 ? 8 : 7);
      const inner = new Uint8Array(p.subarray(h));
      const family = (inner[0] >> 4) as 4 | 6;
      const l4Offset = family === 4 ? 20 : 40;
      assert.equal(be16(inner, tp.checksumOffset - h), l4Checksum(inner, family, l4Offset), `checksum of seq ${seq}`);
      if (family === 4) assert.equal(onesSum(inner.subarray(0, 20)), 0xffff);
    }
    assert.deepEqual([...seen].sort((a, b) => Number(a - b)), Array.from({ length: count }, (_, i) => BigInt(i)));
  } finally {
    target.close();
  }
});

/**
 * A target written in the test that mistreats replies in every way the
 * checker must notice, chosen by sequence number (seq % 9).
 */
async function manglingTarget(): Promise<{ port: number; flowPort: number; close: () => void }> {
  const rx = dgram.createSocket('udp4'); // receives at 127.0.0.1:T
  const flow = dgram.createSocket('udp4'); // replies from 127.0.0.1:<the generator's source port>
  const stranger = dgram.createSocket('udp4'); // replies from a port no flow uses
  for (const s of [rx, flow, stranger]) s.bind(0, '127.0.0.1');
  await Promise.all([rx, flow, stranger].map((s) => once(s, 'listening')));
  const port = (rx.address() as AddressInfo).port;
  const tp = goodTemplate(4, 'udp', INNER);
  rx.on('message', (m) => {
    const seq = Number(be64(m, tp.stampOffset + 8));
    const reply = Buffer.from(m);
    let from = flow;
    switch (seq % 9) {
      case 0: // echo: valid
        break;
      case 1: // echo twice: valid + duplicate
        flow.send(reply, port, '127.0.0.2');
        break;
      case 2: // a cookie byte changed: header mismatch
        reply[39] ^= 1;
        break;
      case 3: // last payload byte changed: inner mismatch
        reply[reply.length - 1] ^= 0x80;
        break;
      case 4: {
        // TTL decremented, IPv4 checksum fixed: inner mismatch unless ignoreTtl
        reply[tp.ttlOffset] -= 1;
        reply.writeUInt16BE(0, tp.ipChecksumOffset);
        reply.writeUInt16BE(~onesSum(reply.subarray(40, 60)) & 0xffff, tp.ipChecksumOffset);
        break;
      }
      case 5: // a sequence number never sent: unknown flow
        reply.writeBigUInt64BE(1n << 40n, tp.stampOffset + 8);
        break;
      case 6: // from a port no flow uses: not from target
        from = stranger;
        break;
      case 7: // cut to 6 bytes: invalid GENEVE, truncated header
        from.send(reply.subarray(0, 6), port, '127.0.0.2');
        return;
      case 8: // another run's tag: unknown flow
        reply[tp.stampOffset] ^= 0xff;
        break;
    }
    from.send(reply, port, '127.0.0.2');
  });
  return { port, flowPort: (flow.address() as AddressInfo).port, close: () => [rx, flow, stranger].forEach((s) => s.close()) };
}

for (const ignoreTtl of [false, true]) {
  test(`the checker puts every kind of bad reply in its counter (ignoreTtl ${ignoreTtl})`, async (t) => {
    if (skipUnlessNetAdmin(t)) return;
    const target = await manglingTarget();
    try {
      const opts = options(target, {
        templates: [goodTemplate(4, 'udp', INNER)],
        sourcePorts: [target.flowPort],
        count: 90,
        rate: 2000,
        ignoreTtl,
      });
      const { c } = await run(opts, () => 100);
      assert.equal(c.sent, 90);
      assert.equal(c.received, 100);
      assert.equal(c.valid, ignoreTtl ? 30 : 20);
      assert.equal(c.invalid_duplicate, 10);
      assert.equal(c.invalid_header_mismatch, 10);
      assert.equal(c.invalid_inner_mismatch, ignoreTtl ? 10 : 20);
      assert.equal(c.invalid_unknown_flow, 20);
      assert.equal(c.invalid_not_from_target, 10);
      assert.equal(c.invalid_geneve, 10);
      assert.equal(c.invalid_geneve_truncated_header, 10);
      assertClassified(c);
    } finally {
      target.close();
    }
  });
}

test('generator stops on request when unbounded, and marks the sender done', async (t) => {
  if (skipUnlessNetAdmin(t)) return;
  await withReflector(false, async (r) => {
    const gen = startGenerator(options(r, { count: 0, durationMs: 0, rate: 1000 }));
    try {
      await waitFor(() => readCounters(gen.counters).sent > 10);
    } finally {
      gen.stop();
      gen.stop();
    }
    const c = readCounters(gen.counters);
    assert.equal(c.sender_done, 1);
    assert.ok(c.sent > 10);
    assert.deepEqual([...gen.counters.names], [...GENERATOR_COUNTER_NAMES]);
  });
});

test('generator options and templates are validated with one message shape', () => {
  const base = options({ port: 6081 }, {});
  const bad = (patch: Partial<GeneratorOptions>, message: string | RegExp): void => {
    assert.throws(() => startGenerator({ ...base, ...patch }), { code: 'ERR_INVALID_ARG', message });
  };
  bad({ rate: -1 }, 'Expected integer between 0 and 1000000000 for rate but received -1 of type number');
  bad({ batch: 2000 }, 'Expected integer between 1 and 1024 for batch but received 2000 of type number');
  bad({ target: 'localhost' }, 'Expected IPv4 address for target but received "localhost" of type string');
  bad({ replyPort: 0 }, 'Expected integer between 1 and 65535 for replyPort but received 0 of type number');
  bad({ sourcePorts: [] }, 'Expected an array of 1 to 4096 ports for sourcePorts but received an array of type object');
  bad({ sourcePorts: [7000, 7000] }, 'Expected distinct ports (0 = ephemeral may repeat) for sourcePorts but received 7000 of type number');
  bad({ runTag: 5 as unknown as bigint }, 'Expected bigint between 0 and 2^64-1 for runTag but received 5 of type number');
  bad({ malformedPerMillion: 10 }, 'Expected 0 (no malformed template given) for malformedPerMillion but received 10 of type number');
  bad({ templates: malformedTemplates() }, 'Expected at least one good template (malformedKind -1) for templates but received an array of type object');
  const good = goodTemplate(4, 'udp', INNER);
  const mal = malformedTemplates();
  bad({ templates: [good, { ...mal[0], malformedKind: 1 }] }, 'Expected bytes that decode as bad_version for templates[1].bytes but received "truncated_header" of type string');
  bad({ templates: [{ ...good, socket: 3 }] }, 'Expected integer between 0 and 2 for templates[0].socket but received 3 of type number');
  bad({ templates: [{ ...good, stampOffset: 10 }] }, /^Expected integer between 40 and \d+ for templates\[0\]\.stampOffset but received 10 of type number$/);
  bad({ templates: [{ ...good, checksumOffset: good.stampOffset + 4 }] }, /^Expected an offset outside the stamp \[\d+, \d+\) for templates\[0\]\.checksumOffset/);
  const dirty = Uint8Array.from(good.bytes);
  dirty[good.stampOffset + 5] = 1;
  bad({ templates: [{ ...good, bytes: dirty }] }, 'Expected 24 zero bytes at the stamp offset for templates[0].bytes but received "non-zero bytes" of type string');
  bad({ templates: [{ ...mal[0], malformedKind: -1 }] }, 'Expected valid GWLB GENEVE in a good template for templates[0].bytes but received "truncated_header" of type string');
});
