import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as dgram from 'node:dgram';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { startReflector, type Reflector } from '../../src/native/reflector';
import { readCounters, REFLECTOR_COUNTER_NAMES } from '../../src/native/counters';
import { GENEVE_REASONS } from '../../src/geneve/reasons';
import type { ReflectorOptions } from '../../src/native/binding';
import { skipUnlessNetAdmin } from '../helpers/system';
import { ETH_IPV4, ETH_IPV6, geneve, gwlbOptionList, innerPacket, malformedDatagrams } from './packets';

const BASE: ReflectorOptions = { bind: '127.0.0.1', port: 0, threads: 2, rcvbuf: 0, sndbuf: 0, batch: 64, validate: false };

interface Peer {
  /** Sends from 127.0.0.2:<ephemeral> to the reflector. */
  tx: dgram.Socket;
  /** Where replies land: 127.0.0.2:<reflector port> (targets reply to the port they received on). */
  rx: dgram.Socket;
  replies: { bytes: Buffer; from: dgram.RemoteInfo }[];
}

async function openPeer(reflectorPort: number): Promise<Peer> {
  const tx = dgram.createSocket('udp4');
  const rx = dgram.createSocket('udp4');
  const peer: Peer = { tx, rx, replies: [] };
  rx.on('message', (bytes, from) => peer.replies.push({ bytes, from }));
  tx.bind(0, '127.0.0.2');
  rx.bind(reflectorPort, '127.0.0.2');
  await Promise.all([once(tx, 'listening'), once(rx, 'listening')]);
  return peer;
}

function closePeer(p: Peer): void {
  p.tx.close();
  p.rx.close();
}

/** Waits (bounded) until `cond` holds, polling; returns whether it did. */
async function waitFor(cond: () => boolean, ms = 5000): Promise<boolean> {
  const end = Date.now() + ms;
  while (!cond() && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
  return cond();
}

function send(p: Peer, port: number, bytes: Uint8Array): Promise<void> {
  return new Promise((resolve, reject) => p.tx.send(bytes, port, '127.0.0.1', (err) => (err ? reject(err) : resolve())));
}

function withReflector(opts: Partial<ReflectorOptions>, body: (r: Reflector, p: Peer) => Promise<void>): () => Promise<void> {
  return async () => {
    const r = startReflector({ ...BASE, ...opts });
    let peer: Peer | undefined;
    try {
      peer = await openPeer(r.port);
      await body(r, peer);
    } finally {
      r.stop();
      if (peer) closePeer(peer);
    }
  };
}

const good4 = geneve(ETH_IPV4, gwlbOptionList(), innerPacket(4, 'udp', 128).bytes);
const good6 = geneve(ETH_IPV6, gwlbOptionList(1n, 2n, 3), innerPacket(6, 'tcp', 200).bytes);

test('reflector sends each datagram back byte-identical, addresses swapped and ports kept', async (t) => {
  if (skipUnlessNetAdmin(t)) return;
  await withReflector({}, async (r, p) => {
    assert.ok(r.port > 0, 'an ephemeral port was bound');
    const sent = [good4, good6, ...Object.values(malformedDatagrams())];
    for (const d of sent) await send(p, r.port, d);
    assert.ok(await waitFor(() => p.replies.length >= sent.length), `got ${p.replies.length} of ${sent.length} replies`);
    const txPort = (p.tx.address() as AddressInfo).port;
    for (const reply of p.replies) {
      assert.equal(reply.from.address, '127.0.0.1', 'from the address we sent to');
      assert.equal(reply.from.port, txPort, 'from the port we sent from');
    }
    const key = (b: Uint8Array): string => Buffer.from(b).toString('hex');
    assert.deepEqual(p.replies.map((x) => key(x.bytes)).sort(), sent.map(key).sort());
    const c = readCounters(r.counters);
    assert.equal(c.rx_packets, sent.length);
    assert.equal(c.tx_packets, sent.length);
    const bytes = sent.reduce((n, d) => n + d.length, 0);
    assert.equal(c.rx_bytes, bytes);
    assert.equal(c.tx_bytes, bytes);
    assert.equal(c.tx_errors, 0);
    assert.equal(c.dropped_malformed, 0);
  })();
});

test('reflector with validate drops malformed GENEVE and counts each reason', async (t) => {
  if (skipUnlessNetAdmin(t)) return;
  await withReflector({ validate: true, threads: 1, batch: 8 }, async (r, p) => {
    const malformed = malformedDatagrams();
    for (const reason of GENEVE_REASONS) await send(p, r.port, malformed[reason]);
    await send(p, r.port, good4);
    await send(p, r.port, good6);
    assert.ok(await waitFor(() => readCounters(r.counters).rx_packets === GENEVE_REASONS.length + 2));
    assert.ok(await waitFor(() => p.replies.length >= 2));
    const c = readCounters(r.counters);
    assert.equal(c.dropped_malformed, GENEVE_REASONS.length);
    for (const reason of GENEVE_REASONS) assert.equal(c[`malformed_${reason}`], 1, reason);
    assert.equal(c.tx_packets, 2);
    // Only the good ones came back (the malformed were received before them
    // on the same socket and thread, so they would have come back first).
    assert.deepEqual(
      p.replies.map((x) => x.bytes.toString('hex')).sort(),
      [good4, good6].map((d) => Buffer.from(d).toString('hex')).sort(),
    );
  })();
});

test('reflector counters follow the table in counters.ts and stay readable after stop', async (t) => {
  if (skipUnlessNetAdmin(t)) return;
  const r = startReflector({ ...BASE, threads: 1 });
  try {
    assert.deepEqual([...r.counters.names], [...REFLECTOR_COUNTER_NAMES]);
    assert.equal(r.counters.values.length, REFLECTOR_COUNTER_NAMES.length);
  } finally {
    r.stop();
    r.stop(); // idempotent
  }
  assert.equal(readCounters(r.counters).rx_packets, 0);
});

test('reflector refuses a port that is taken', async (t) => {
  if (skipUnlessNetAdmin(t)) return;
  const holder = dgram.createSocket('udp4');
  holder.bind(0, '127.0.0.1');
  await once(holder, 'listening');
  try {
    const port = (holder.address() as AddressInfo).port;
    assert.throws(() => startReflector({ ...BASE, port }), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'ERR_NATIVE_START');
      assert.match(err.message, /^Could not start the reflector on 127\.0\.0\.1:\d+: reflector: bind\(127\.0\.0\.1:\d+\): Address already in use$/);
      return true;
    });
  } finally {
    holder.close();
  }
});

test('reflector options are validated with one message shape', () => {
  const cases: [Partial<ReflectorOptions> | Record<string, unknown>, string][] = [
    [{ threads: 0 }, 'Expected integer between 1 and 16 for threads but received 0 of type number'],
    [{ threads: 1.5 }, 'Expected integer between 1 and 16 for threads but received 1.5 of type number'],
    [{ port: 65536 }, 'Expected integer between 0 and 65535 for port but received 65536 of type number'],
    [{ batch: 0 }, 'Expected integer between 1 and 1024 for batch but received 0 of type number'],
    [{ rcvbuf: -1 }, 'Expected integer between 0 and 2147483647 for rcvbuf but received -1 of type number'],
    [{ sndbuf: '1' }, 'Expected integer between 0 and 2147483647 for sndbuf but received "1" of type string'],
    [{ bind: '::1' }, 'Expected IPv4 address for bind but received "::1" of type string'],
    [{ validate: 1 }, 'Expected boolean for validate but received 1 of type number'],
  ];
  for (const [patch, message] of cases) {
    assert.throws(() => startReflector({ ...BASE, ...patch } as ReflectorOptions), { code: 'ERR_INVALID_ARG', message });
  }
});

test('a reflector nobody references any more is stopped and its sockets closed by the garbage collector', async (t) => {
  if (skipUnlessNetAdmin(t)) return;
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const port = ((): number => startReflector({ ...BASE, threads: 2 }).port)();
  const probe = dgram.createSocket('udp4');
  probe.on('error', () => undefined);
  try {
    let bound = false;
    // The finalizer stops the threads and closes the sockets some turns later: 15 s is a ceiling for a loaded machine.
    for (const deadline = Date.now() + 15_000; !bound && Date.now() < deadline; ) {
      gc();
      await new Promise((r) => setTimeout(r, 20));
      // The reflector's sockets use SO_REUSEPORT; this one does not, so it
      // can bind only once they are closed.
      bound = await new Promise<boolean>((resolve) => {
        probe.once('error', () => resolve(false));
        try {
          probe.bind(port, '127.0.0.1', () => resolve(true));
        } catch {
          resolve(false);
        }
      });
    }
    assert.ok(bound, `port ${port} was released`);
  } finally {
    probe.close();
  }
});
