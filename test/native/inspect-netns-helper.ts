/**
 * Runs the inspect engine (src/native/inspect.ts) inside a test namespace
 * for inspect.test.ts, with a fixed verdict rule instead of a policy:
 *
 *   node inspect-netns-helper.js inspect '<options JSON>' '<rule JSON>'
 *
 * JSON lines on stdout: {"type":"ready"}, then on stdin "state" a
 * {"type":"state"} snapshot, and on "stop" a {"type":"final"} one with the
 * flows still open, after which it exits.
 *
 * node --test also runs every file under dist/test/: without a role this
 * does nothing.
 */
import { writeSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { startInspect, type Inspect } from '../../src/native/inspect';
import type { InspectFlowEndEvent, InspectOptions, InspectPacketEvent, InspectVerdict } from '../../src/native/binding';

export type InspectHelperOptions = Omit<InspectOptions, 'onEvents'>;

export interface InspectHelperRule {
  /** The verdict on a flow's first packet. */
  first: 'allow' | 'drop' | 'inspect';
  /** With first = inspect: decide after this many payload events of the flow... */
  afterPayloads?: number;
  /** ...this way; 'inject-drop' sends the flow's last packet back with its TTL lowered by one, then drops. */
  then?: 'allow' | 'drop' | 'inject-drop';
  tap?: boolean;
}

export interface InspectHelperSnapshot {
  type: 'state' | 'final';
  counters: Record<string, number>;
  firstEvents: number;
  payloadEvents: number;
  tapEvents: number;
  midstreamFlows: number;
  injected: number;
  flowEnds: Array<Omit<InspectFlowEndEvent, 'flow' | 'handle' | 'eni'> & { flow: string }>;
  open: number;
}

function emit(m: object): void {
  writeSync(1, JSON.stringify(m) + '\n');
}

function run(options: InspectHelperOptions, rule: InspectHelperRule): void {
  const payloads = new Map<bigint, number>();
  const flowEnds: InspectHelperSnapshot['flowEnds'] = [];
  let firstEvents = 0,
    payloadEvents = 0,
    tapEvents = 0,
    midstreamFlows = 0,
    injected = 0;
  const end = (e: InspectFlowEndEvent): void => {
    const rest: Partial<InspectFlowEndEvent> = { ...e };
    delete rest.handle;
    delete rest.eni;
    flowEnds.push({ ...(rest as Omit<InspectFlowEndEvent, 'flow' | 'handle' | 'eni'>), flow: String(e.flow) });
  };
  const decide = (e: InspectPacketEvent, verdicts: InspectVerdict[]): void => {
    if (e.first) {
      firstEvents++;
      if (e.midstream) midstreamFlows++;
      verdicts.push({ flow: e.flow, handle: e.handle, action: rule.first, tap: rule.tap });
      if (rule.first !== 'inspect' || e.payload.length === 0) return;
    }
    if (e.tap) {
      tapEvents++;
      return;
    }
    payloadEvents++;
    const n = (payloads.get(e.flow) ?? 0) + 1;
    payloads.set(e.flow, n);
    if (n !== rule.afterPayloads) return;
    if (rule.then === 'inject-drop') {
      const copy = Buffer.from(e.packet);
      copy[e.family === 4 ? 8 : 7]--; // TTL / hop limit (the IPv4 checksum is not what is tested here)
      injected += engine.inject(e.flow, e.handle, [copy]);
      verdicts.push({ flow: e.flow, handle: e.handle, action: 'drop' });
    } else {
      verdicts.push({ flow: e.flow, handle: e.handle, action: rule.then ?? 'allow', tap: rule.tap });
    }
  };
  const engine: Inspect = startInspect({
    ...options,
    onEvents(events) {
      const verdicts: InspectVerdict[] = [];
      for (const e of events) {
        if (e.type === 'packet') decide(e, verdicts);
        else if (e.type === 'flow-end') end(e);
      }
      if (verdicts.length) engine.setVerdicts(verdicts);
    },
  });
  const snapshot = (type: 'state' | 'final', open: number): InspectHelperSnapshot => ({
    type,
    counters: engine.readCounters(),
    firstEvents,
    payloadEvents,
    tapEvents,
    midstreamFlows,
    injected,
    flowEnds,
    open,
  });
  emit({ type: 'ready' });
  createInterface({ input: process.stdin }).on('line', (line) => {
    if (line === 'state') emit(snapshot('state', -1));
    if (line === 'stop') {
      const open = engine.stop();
      for (const e of open) end(e);
      emit(snapshot('final', open.length));
      process.exit(0);
    }
  });
}

if (require.main === module && process.argv[2] === 'inspect') run(JSON.parse(process.argv[3]), JSON.parse(process.argv[4]));
