/**
 * What judge.test.ts drives the FlowJudge with (not a test itself): engine
 * events built the way the engine reports them (whole IP packets inside),
 * and a recording VerdictPort / EveSink in place of the engine and the log.
 */
import type { InspectFlowEndEvent, InspectFlowRef, InspectFlowTuple, InspectPacketEvent, InspectVerdict } from '../../src/native/binding';
import type { EveEvent } from '../../src/inspect/eve';
import type { EveSink, VerdictPort } from '../../src/inspect/judge';
import { ipv4ToBytes } from '../../src/packet/address';

export const CLIENT = '192.0.2.10';
export const SERVER = '203.0.113.10';
export const ENI = 0x123456789abcdefn;

export const SYN = 0x02;
export const ACK = 0x10;
export const PSH = 0x08;

/** Records what the judge tells the engine, in order. */
export class RecordingPort implements VerdictPort {
  readonly verdicts: InspectVerdict[] = [];
  readonly calls: number[] = [];
  readonly injected: Array<{ flow: bigint; packets: Uint8Array[] }> = [];

  setVerdicts(verdicts: readonly InspectVerdict[]): number {
    this.calls.push(verdicts.length);
    this.verdicts.push(...verdicts);
    return verdicts.length;
  }

  inject(flow: bigint, _handle: Uint8Array, packets: readonly Uint8Array[]): number {
    this.injected.push({ flow, packets: [...packets] });
    return packets.length;
  }

  /** The verdicts for one flow, as "action" or "allow+tap". */
  of(flow: bigint): string[] {
    return this.verdicts.filter((v) => v.flow === flow).map((v) => (v.tap ? `${v.action}+tap` : v.action));
  }
}

export class RecordingEve implements EveSink {
  readonly events: EveEvent[] = [];
  write(event: EveEvent): void {
    // Through JSON, as the writer would: what a reader of the log sees.
    this.events.push(JSON.parse(JSON.stringify(event)) as EveEvent);
  }
  ofType<T extends EveEvent['event_type']>(type: T): Array<Extract<EveEvent, { event_type: T }>> {
    return this.events.filter((e): e is Extract<EveEvent, { event_type: T }> => e.event_type === type);
  }
}

let nextFlow = 1000n;

/** A flow between CLIENT:port and SERVER:serverPort, and the packets of it the engine would send up. */
export class Flow {
  readonly id = nextFlow++;
  readonly handle = new Uint8Array(48).fill(Number(this.id % 251n));
  constructor(
    readonly protocol: 6 | 17 | 1,
    readonly serverPort: number,
    readonly opts: { clientPort?: number; server?: string; midstream?: boolean } = {},
  ) {}

  get server(): string {
    return this.opts.server ?? SERVER;
  }

  get clientPort(): number {
    return this.opts.clientPort ?? 40000;
  }

  /** What every event of this flow carries: its id, handle and tuple. */
  private identity(): InspectFlowRef & InspectFlowTuple {
    return {
      flow: this.id,
      handle: this.handle,
      eni: ENI,
      family: 4,
      protocol: this.protocol,
      client: CLIENT,
      clientPort: this.clientPort,
      server: this.server,
      serverPort: this.serverPort,
    };
  }

  packet(p: { first?: boolean; fromClient?: boolean; flags?: number; seq?: number; ack?: number; payload?: Uint8Array; tap?: boolean }): InspectPacketEvent {
    const fromClient = p.fromClient ?? true;
    const payload = p.payload ?? new Uint8Array(0);
    const flags = this.protocol === 6 ? (p.flags ?? PSH | ACK) : 0;
    const seq = p.seq ?? 0;
    const ack = p.ack ?? 0;
    return {
      type: 'packet',
      ...this.identity(),
      first: p.first ?? false,
      tap: p.tap ?? false,
      fromClient,
      midstream: this.opts.midstream ?? false,
      tcpFlags: flags,
      seq,
      ack,
      payload,
      packet: ipv4Packet(this, fromClient, flags, seq, ack, payload),
    };
  }

  /** The client's SYN with initial sequence number `isn`. */
  syn(isn: number): InspectPacketEvent {
    return this.packet({ first: true, flags: SYN, seq: isn });
  }

  end(verdict: InspectFlowEndEvent['verdict'], counts: Partial<InspectFlowEndEvent> = {}): InspectFlowEndEvent {
    return {
      type: 'flow-end',
      ...this.identity(),
      verdict,
      midstream: this.opts.midstream ?? false,
      pktsToServer: 5,
      pktsToClient: 4,
      bytesToServer: 900,
      bytesToClient: 4000,
      startMs: Date.UTC(2026, 0, 2, 3, 4, 5, 600),
      endMs: Date.UTC(2026, 0, 2, 3, 4, 9, 100),
      reason: 'timeout',
      ...counts,
    };
  }
}

/** An IPv4 packet with a TCP or UDP header and the payload (checksums left zero: the judge never reads them). */
function ipv4Packet(flow: Flow, fromClient: boolean, flags: number, seq: number, ack: number, payload: Uint8Array): Uint8Array {
  const l4 = flow.protocol === 6 ? 20 : 8;
  const p = Buffer.alloc(20 + l4 + payload.length);
  p[0] = 0x45;
  p.writeUInt16BE(p.length, 2);
  p[8] = 64;
  p[9] = flow.protocol;
  p.set(ipv4ToBytes(fromClient ? CLIENT : flow.server), 12);
  p.set(ipv4ToBytes(fromClient ? flow.server : CLIENT), 16);
  p.writeUInt16BE(fromClient ? flow.clientPort : flow.serverPort, 20);
  p.writeUInt16BE(fromClient ? flow.serverPort : flow.clientPort, 22);
  if (flow.protocol === 6) {
    p.writeUInt32BE(seq >>> 0, 24);
    p.writeUInt32BE(ack >>> 0, 28);
    p[32] = 5 << 4;
    p[33] = flags;
  } else {
    p.writeUInt16BE(8 + payload.length, 24);
  }
  p.set(payload, 20 + l4);
  return p;
}

/** TCP fields of an injected packet (IPv4, 20-byte headers): [src, dst, seq, ack, flags]. */
export function tcpFields(p: Uint8Array): [string, string, number, number, number] {
  const b = Buffer.from(p);
  return [[...b.subarray(12, 16)].join('.'), [...b.subarray(16, 20)].join('.'), b.readUInt32BE(24), b.readUInt32BE(28), b[33]];
}
