/**
 * FlowJudge: the per-flow decisions between the native engine's events and
 * the policy. The engine asks once per flow (its first packet), and again
 * with each payload packet while the flow is being inspected; the judge
 * answers with verdicts the engine then applies to every later packet in
 * C++. Nothing here touches sockets: verdicts and injected packets go to a
 * VerdictPort (the real engine, or a recording one in tests), EVE events to
 * an EveSink.
 *
 * Per flow:
 *  - first packet: flow facts (client = src, server = dst, endpoint) and,
 *    when it already carries payload (a DNS query, a mid-stream segment),
 *    what the payload says. A final decision is applied at once; otherwise
 *    the verdict is `inspect` (the engine passes the handshake and sends
 *    payload packets up, holding them).
 *  - payload packets: the client's TCP bytes are put in order (TcpStream)
 *    and classified; the decision waits while the payload is incomplete and
 *    fewer than `payloadUpcalls` payload packets came up; it is made on what
 *    is there when the payload is complete, unparsable, the server spoke
 *    first, or the engine will send no more.
 *  - verify_dns: the name must resolve to the server's address (from DNS
 *    answers tapped off allowed DNS flows, else a lookup). The engine keeps
 *    holding the flow meanwhile. A mismatch applies the rule's on_mismatch.
 *  - flow end: an EVE flow event; the flow's state is forgotten.
 *
 * Verdicts: allow and alert -> engine allow; drop -> engine drop; reject ->
 * resets / ICMP injected (reject.ts), then engine drop. Every drop, reject
 * and alert is an EVE alert ("blocked" or "allowed"). Decisions no rule made
 * carry the signature ids in SETTING_SIGNATURES.
 *
 * A judge that fails on an event drops that flow (fail closed) and counts
 * the error: nothing it is handed may throw back into the engine's callback.
 */
import type { InspectEvent, InspectFlowEndEvent, InspectFlowRef, InspectFlowTuple, InspectPacketEvent, InspectVerdict } from '../native/binding';
import { alertEvent, flowEvent, type AppFacts as EveAppFacts, type EveEvent, type EveFlowReason, type EveFlowTuple, type FlowVerdict } from './eve';
import type { DnsAnswerRecord, VerifyResult } from './names';
import { describeApp, fromPayload, isDnsFlow, NOTHING_YET, type Judged } from './app-facts';
import { classifyPayload, parseDnsMessage, parseDnsTcpStream, TLS_HELLO_MAX_BYTES, type DnsMessageResult } from './parse';
import { evaluate, SID_BASE, type Action, type DecisionReason, type FlowFacts, type Policy, type PolicyDecision } from './policy';
import { rejectPackets, TCP_SYN } from './reject';
import { TcpStream } from './stream';
import type { Logger } from '../observe/log';

/** Where verdicts and injected packets go; the engine (src/native/inspect.ts Inspect) is one. */
export interface VerdictPort {
  setVerdicts(verdicts: readonly InspectVerdict[]): number;
  inject(flow: bigint, handle: Uint8Array, packets: readonly Uint8Array[]): number;
}

export interface EveSink {
  write(event: EveEvent): void;
}

/** NameVerifier (src/inspect/names) is one. */
export interface NameChecker {
  verify(name: string, address: string, nowMs: number): Promise<VerifyResult>;
}

/** NameAddressCache (src/inspect/names) is one. */
export interface DnsAnswerLearner {
  learnAnswers(answers: readonly DnsAnswerRecord[], nowMs: number): number;
}

export type JudgeLogSection = 'flow';

export interface FlowJudgeOptions {
  policy: Policy;
  port: VerdictPort;
  eve?: EveSink;
  /** verify_dns: where DNS answers are learned, and who checks a name against an address. */
  names: { cache: DnsAnswerLearner; verifier: NameChecker };
  log?: Logger<JudgeLogSection>;
  /** The engine's payloadUpcalls: after this many payload packets of a flow it sends no more, so the judge decides. */
  payloadUpcalls: number;
  /** The engine's tapPackets: how many answers of a tapped DNS flow come up. */
  tapPackets: number;
  /** Wall clock in ms (EVE timestamps, DNS answer ages). */
  clock?: () => number;
}

/**
 * Signature ids for the decisions no rule made (rules get 1000000 +
 * position unless they set their own sid): SID_BASE itself and the three
 * below it, which no default rule sid uses.
 */
export const SETTING_SIGNATURES: Readonly<Record<Exclude<DecisionReason, 'rule'>, { sid: number; text: string }>> = {
  default: { sid: SID_BASE, text: 'default deny' },
  midstream: { sid: SID_BASE - 1, text: 'midstream flow' },
  'tls-without-sni': { sid: SID_BASE - 2, text: 'TLS ClientHello without SNI' },
  'tls-unparsable': { sid: SID_BASE - 3, text: 'TLS ClientHello unparsable' },
};

/** A flow that shows payload but no new packet for this long is decided on what it showed. */
export const PAYLOAD_STALL_MS = 5_000;

const TCP = 6;
const UDP = 17;
const NO_BYTES = new Uint8Array(0);

export interface FlowJudgeStats {
  /** Packet events handled (first packets, payload packets, tapped answers). */
  upcalls: number;
  /** Packet events for flows already decided or never seen (a race with a verdict; harmless). */
  stray: number;
  /** Flows waiting for payload or for verify_dns (a level). */
  inspecting: number;
  verifying: number;
  /** verify_dns outcomes other than a match. */
  mismatches: number;
  unresolved: number;
  /** DNS answer records learned from tapped flows. */
  dnsRecordsLearned: number;
  /** Flows decided by PAYLOAD_STALL_MS rather than by their payload. */
  stalled: number;
  /** Events the judge failed on (those flows were dropped). */
  errors: number;
}

export interface VerdictCount {
  action: Action;
  /** The rule id, or ":<reason>" for decisions no rule made (":default", ":midstream", ...); ':' never starts a rule id. */
  rule: string;
  count: number;
}

/** A flow waiting for its payload or for verify_dns. */
interface Inspecting {
  stage: 'payload' | 'verifying';
  ref: InspectFlowRef;
  tuple: EveFlowTuple;
  facts: FlowFacts;
  /** The client's bytes, once it sent some (most flows of a SYN flood never do). */
  client: TcpStream | null;
  /** Where the client's data starts: after its SYN, or at the first seq seen mid-stream. */
  clientStart: number | undefined;
  /** The first payload seq the server sent (held, so the client has not seen it). */
  serverStart: number | undefined;
  serverSpoke: boolean;
  payloadEvents: number;
  /** The latest packet (a reject is built from it). */
  last: InspectPacketEvent;
  lastEventMs: number;
  /** The engine was told `inspect` (else it still holds the first packet, waiting). */
  toldInspect: boolean;
}

/** What the flow event needs once the flow is decided; shared objects (few combinations). */
interface Decided {
  verdict: FlowVerdict;
  alerted: boolean;
  appProto: string | undefined;
}

interface Tapped {
  server: TcpStream | null;
  packets: number;
  messages: number;
}

export class FlowJudge {
  private policyNow: Policy;
  private readonly port: VerdictPort;
  private readonly eve: EveSink | undefined;
  private readonly names: FlowJudgeOptions['names'];
  private readonly log: Logger<JudgeLogSection> | undefined;
  private readonly payloadUpcalls: number;
  private readonly tapPackets: number;
  private readonly clock: () => number;
  private readonly inspecting = new Map<bigint, Inspecting>();
  private readonly decided = new Map<bigint, Decided>();
  private readonly tapped = new Map<bigint, Tapped>();
  private readonly verdictCounts = new Map<string, VerdictCount>();
  private readonly pending = new Set<Promise<void>>();
  private readonly interned = new Map<string, Decided>();
  private readonly counts = { upcalls: 0, stray: 0, mismatches: 0, unresolved: 0, dnsRecordsLearned: 0, stalled: 0, errors: 0 };

  constructor(opts: FlowJudgeOptions) {
    this.policyNow = opts.policy;
    this.port = opts.port;
    this.eve = opts.eve;
    this.names = opts.names;
    this.log = opts.log;
    this.payloadUpcalls = opts.payloadUpcalls;
    this.tapPackets = opts.tapPackets;
    this.clock = opts.clock ?? Date.now;
  }

  get policy(): Policy {
    return this.policyNow;
  }

  /** New decisions use `policy`; flows the engine already has a verdict for keep it. */
  setPolicy(policy: Policy): void {
    this.policyNow = policy;
  }

  /** Handles one batch of engine events; verdicts made now go to the engine in one call. Never throws. */
  handle(events: readonly InspectEvent[]): void {
    const verdicts: InspectVerdict[] = [];
    for (const e of events) {
      try {
        if (e.type === 'packet') this.onPacket(e, verdicts);
        else if (e.type === 'flow-end') this.onFlowEnd(e);
      } catch (err) {
        this.failed(e, err, verdicts);
      }
    }
    this.send(verdicts);
  }

  /**
   * Decides flows that showed payload and then nothing for PAYLOAD_STALL_MS
   * (an event lost on the way up would otherwise leave them held until they
   * time out). Flows that showed no payload yet wait: pooled connections
   * sit idle before their first request.
   */
  sweep(): void {
    const now = this.clock();
    const verdicts: InspectVerdict[] = [];
    for (const state of this.inspecting.values()) {
      if (state.stage !== 'payload' || state.payloadEvents === 0 || now - state.lastEventMs < PAYLOAD_STALL_MS) continue;
      this.counts.stalled++;
      try {
        this.judge(state, verdicts, true);
      } catch (err) {
        this.failed(state.last, err, verdicts);
      }
    }
    this.send(verdicts);
  }

  /** Resolves once every verify_dns under way has been applied (for shutdown and tests). */
  async settled(): Promise<void> {
    while (this.pending.size > 0) await Promise.all([...this.pending]);
  }

  stats(): FlowJudgeStats {
    let verifying = 0;
    for (const s of this.inspecting.values()) if (s.stage === 'verifying') verifying++;
    return { ...this.counts, inspecting: this.inspecting.size, verifying };
  }

  verdicts(): VerdictCount[] {
    return [...this.verdictCounts.values()].map((v) => ({ ...v }));
  }

  // ---- events ----

  private onPacket(e: InspectPacketEvent, verdicts: InspectVerdict[]): void {
    this.counts.upcalls++;
    if (e.tap) {
      this.onTap(e);
      return;
    }
    let state = this.inspecting.get(e.flow);
    if (e.first) {
      state = this.open(e);
    } else if (state === undefined) {
      this.counts.stray++;
      return;
    }
    state.last = e;
    state.lastEventMs = this.clock();
    if (e.payload.length > 0) state.payloadEvents++;
    if (state.stage === 'verifying') return; // the engine holds it; the verification decides
    if (e.protocol === TCP) this.absorbTcp(state, e);
    this.judge(state, verdicts, false);
  }

  private open(e: InspectPacketEvent): Inspecting {
    const tuple = eveTuple(e);
    const facts: FlowFacts = {
      endpoint: e.eni,
      src: e.client,
      dst: e.server,
      protocol: e.protocol,
      srcPort: e.clientPort,
      dstPort: e.serverPort,
      midstream: e.midstream,
    };
    const state: Inspecting = {
      stage: 'payload',
      ref: { flow: e.flow, handle: e.handle },
      tuple,
      facts,
      client: null,
      clientStart: undefined,
      serverStart: undefined,
      serverSpoke: false,
      payloadEvents: 0,
      last: e,
      lastEventMs: this.clock(),
      toldInspect: false,
    };
    this.inspecting.set(e.flow, state);
    return state;
  }

  private absorbTcp(state: Inspecting, e: InspectPacketEvent): void {
    const syn = (e.tcpFlags & TCP_SYN) !== 0;
    // Data on a SYN (TCP Fast Open) starts one after its seq.
    const dataSeq = (e.seq + (syn ? 1 : 0)) >>> 0;
    if (e.fromClient) {
      state.clientStart ??= dataSeq;
      if (e.payload.length > 0) {
        state.client ??= new TcpStream(TLS_HELLO_MAX_BYTES);
        state.client.begin(state.clientStart);
        state.client.add(dataSeq, e.payload);
      }
    } else if (e.payload.length > 0) {
      state.serverSpoke = true;
      state.serverStart ??= dataSeq;
    }
  }

  /** Evaluates the flow with what it showed so far; applies a final decision, else asks for payload. */
  private judge(state: Inspecting, verdicts: InspectVerdict[], forced: boolean): void {
    const judged = this.appFacts(state, forced);
    const facts = judged.app === undefined ? state.facts : { ...state.facts, app: judged.app };
    const decision = evaluate(this.policyNow, facts);
    if (decision.final) {
      this.decide(state, decision, judged, verdicts);
    } else if (judged.app === undefined) {
      if (!state.toldInspect) {
        state.toldInspect = true;
        verdicts.push({ ...state.ref, action: 'inspect' });
      }
    } else {
      // evaluate() is final whenever app facts are given; should that change, the default stands.
      this.apply(state, this.policyNow.defaultAction, null, 'default', judged, verdicts);
    }
  }

  /**
   * What the payload says, or nothing while it is worth waiting for more:
   * only TCP waits; a UDP datagram or ICMP message is all there will be.
   */
  private appFacts(state: Inspecting, forced: boolean): Judged {
    const e = state.last;
    if (state.facts.protocol === UDP) {
      const first = e.payload; // the first datagram decides the flow
      return fromPayload(classifyPayload('udp', state.facts.dstPort, first), state.facts.protocol);
    }
    if (state.facts.protocol !== TCP) return { app: { kind: 'other' }, eve: undefined };
    const stream = state.client?.bytes() ?? NO_BYTES;
    const noMore = forced || state.serverSpoke || state.payloadEvents >= this.payloadUpcalls || state.client?.full === true;
    if (stream.length === 0) return noMore && state.payloadEvents > 0 ? { app: { kind: 'other' }, eve: {} } : NOTHING_YET;
    const payload = classifyPayload('tcp', state.facts.dstPort, stream);
    if (payload.incomplete && !noMore) return NOTHING_YET;
    return fromPayload(payload, state.facts.protocol);
  }

  private decide(state: Inspecting, decision: Extract<PolicyDecision, { final: true }>, judged: Judged, verdicts: InspectVerdict[]): void {
    const app = judged.app;
    const name = app?.kind === 'tls' ? app.sni : app?.kind === 'http' ? app.host : null;
    if (decision.verifyDns !== undefined && name !== null) {
      state.stage = 'verifying';
      const run = this.verify(state, decision, judged, name);
      this.pending.add(run);
      void run.finally(() => this.pending.delete(run));
      return;
    }
    this.apply(state, decision.action, decision.rule, decision.reason, judged, verdicts);
  }

  private async verify(state: Inspecting, decision: Extract<PolicyDecision, { final: true }>, judged: Judged, name: string): Promise<void> {
    let result: VerifyResult;
    try {
      result = await this.names.verifier.verify(name, state.tuple.dst, this.clock());
    } catch {
      result = { result: 'unresolved', source: 'none', addresses: [] };
    }
    // The flow may have ended (or been forgotten with its endpoint) meanwhile.
    if (this.inspecting.get(state.ref.flow) !== state) return;
    const verdicts: InspectVerdict[] = [];
    try {
      if (result.result === 'match') {
        this.apply(state, decision.action, decision.rule, decision.reason, judged, verdicts);
      } else {
        if (result.result === 'mismatch') this.counts.mismatches++;
        else this.counts.unresolved++;
        const onMismatch = decision.verifyDns?.onMismatch ?? 'drop';
        const signature = `name/address mismatch: ${name} does not resolve to ${state.tuple.dst}`;
        this.log?.info('flow', 'verify_dns mismatch', {
          flow: state.ref.flow,
          name,
          address: state.tuple.dst,
          result: result.result,
          source: result.source,
          known: result.addresses.join(' ') || 'none',
          rule: decision.rule?.id ?? '-',
          action: onMismatch,
        });
        this.apply(state, onMismatch, decision.rule, decision.reason, judged, verdicts, signature);
      }
    } catch (err) {
      this.failed(state.last, err, verdicts);
    }
    this.send(verdicts);
  }

  /** The verdict to the engine, the reject packets, the EVE alert, the counters and the log line. */
  private apply(
    state: Inspecting,
    action: Action,
    rule: Extract<PolicyDecision, { final: true }>['rule'],
    reason: DecisionReason,
    judged: Judged,
    verdicts: InspectVerdict[],
    mismatch?: string,
  ): void {
    const ruleLabel = rule?.id ?? `:${reason}`;
    this.countVerdict(action, ruleLabel);
    const blocked = action === 'drop' || action === 'reject';
    const alerted = blocked || action === 'alert' || mismatch !== undefined;
    if (action === 'reject') {
      const packets = rejectPackets(state.last, { receiverNextSeq: state.last.fromClient ? state.clientStart : state.serverStart });
      if (packets.length > 0) this.port.inject(state.ref.flow, state.ref.handle, packets);
    }
    const tap = !blocked && this.policyNow.usesVerifyDns && isDnsFlow(state.facts);
    verdicts.push(tap ? { ...state.ref, action: 'allow', tap: true } : { ...state.ref, action: blocked ? 'drop' : 'allow' });
    if (alerted && this.eve !== undefined) {
      const setting = reason === 'rule' ? undefined : SETTING_SIGNATURES[reason];
      this.eve.write(
        alertEvent(
          state.tuple,
          {
            action: blocked ? 'blocked' : 'allowed',
            signatureId: rule?.sid ?? setting?.sid ?? SID_BASE,
            signature: mismatch ?? rule?.message ?? setting?.text ?? reason,
          },
          judged.eve,
          new Date(this.clock()),
        ),
      );
    }
    this.inspecting.delete(state.ref.flow);
    this.remember(state.ref.flow, action, alerted, judged.eve);
    if (tap) this.tapped.set(state.ref.flow, { server: state.facts.protocol === TCP ? new TcpStream(TLS_HELLO_MAX_BYTES) : null, packets: 0, messages: 0 });
    if (this.log?.enabled('flow', 'debug')) {
      this.log.debug('flow', 'decision', {
        flow: state.ref.flow,
        src: `${state.tuple.src}:${state.tuple.srcPort}`,
        dst: `${state.tuple.dst}:${state.tuple.dstPort}`,
        proto: state.tuple.protocol,
        midstream: state.facts.midstream,
        app: describeApp(judged.app),
        action,
        rule: ruleLabel,
        reason: mismatch === undefined ? reason : 'verify_dns',
      });
    }
  }

  /** Keeps what the flow event will need, unless the engine's own verdict already says it. */
  private remember(flow: bigint, action: Action, alerted: boolean, eve: EveAppFacts | undefined): void {
    // app_proto "failed" (payload seen, nothing recognised: most UDP) is not worth an entry per flow; the flow event omits it.
    const appProto = eve === undefined ? undefined : eve.tls ? 'tls' : eve.http ? 'http' : eve.dns ? 'dns' : undefined;
    if (appProto === undefined && ((action === 'allow' && !alerted) || (action === 'drop' && alerted))) return;
    const key = `${action} ${alerted} ${appProto ?? ''}`;
    let record = this.interned.get(key);
    if (record === undefined) {
      record = Object.freeze({ verdict: action, alerted, appProto });
      this.interned.set(key, record);
    }
    this.decided.set(flow, record);
  }

  private countVerdict(action: Action, rule: string): void {
    const key = `${action} ${rule}`;
    const entry = this.verdictCounts.get(key);
    if (entry) entry.count++;
    else this.verdictCounts.set(key, { action, rule, count: 1 });
  }

  /** Answers of an allowed DNS flow, copied up by the engine: learned for verify_dns. */
  private onTap(e: InspectPacketEvent): void {
    const tap = this.tapped.get(e.flow);
    if (tap === undefined || e.fromClient || e.payload.length === 0) return;
    tap.packets++;
    let messages: DnsMessageResult[];
    if (tap.server === null) {
      messages = [parseDnsMessage(e.payload)];
    } else {
      tap.server.add(e.seq, e.payload);
      messages = parseDnsTcpStream(tap.server.bytes()).messages.slice(tap.messages);
      tap.messages += messages.length;
    }
    const now = this.clock();
    for (const m of messages) {
      if (m.status === 'complete' && m.response) this.counts.dnsRecordsLearned += this.names.cache.learnAnswers(m.answers, now);
    }
    if (tap.packets >= this.tapPackets) this.tapped.delete(e.flow);
  }

  private onFlowEnd(e: InspectFlowEndEvent): void {
    const open = this.inspecting.get(e.flow);
    this.inspecting.delete(e.flow);
    this.tapped.delete(e.flow);
    const record = this.decided.get(e.flow);
    this.decided.delete(e.flow);
    if (this.eve === undefined) return;
    const tuple = open?.tuple ?? eveTuple(e);
    this.eve.write(
      flowEvent(
        tuple,
        {
          pktsToServer: e.pktsToServer,
          pktsToClient: e.pktsToClient,
          bytesToServer: e.bytesToServer,
          bytesToClient: e.bytesToClient,
          start: new Date(e.startMs),
          end: new Date(e.endMs),
          ...flowOutcome(record, e.verdict),
          reason: FLOW_END_REASONS[e.reason],
        },
        new Date(this.clock()),
      ),
    );
  }

  /** Fail closed: the flow of an event the judge could not handle is dropped (not alerted: no rule decided). */
  private failed(e: InspectEvent, err: unknown, verdicts: InspectVerdict[]): void {
    this.counts.errors++;
    this.log?.error('flow', 'could not judge an event; dropping its flow', { type: e.type, error: (err as Error)?.message ?? String(err) });
    if (e.type !== 'packet') return;
    // A verdict already made for this flow in the batch gives way to the drop.
    for (let i = verdicts.length - 1; i >= 0; i--) if (verdicts[i].flow === e.flow) verdicts.splice(i, 1);
    this.inspecting.delete(e.flow);
    this.tapped.delete(e.flow);
    this.decided.set(e.flow, Object.freeze({ verdict: 'drop', alerted: false, appProto: undefined }));
    verdicts.push({ flow: e.flow, handle: e.handle, action: 'drop' });
  }

  private send(verdicts: InspectVerdict[]): void {
    if (verdicts.length === 0) return;
    try {
      this.port.setVerdicts(verdicts);
    } catch (err) {
      this.counts.errors++;
      this.log?.error('flow', 'the engine refused verdicts', { count: verdicts.length, error: (err as Error).message });
    }
  }
}

/** The EVE tuple of an engine event: client = src, server = dst. */
function eveTuple(e: InspectFlowRef & InspectFlowTuple): EveFlowTuple {
  return { flowId: e.flow, src: e.client, srcPort: e.clientPort, dst: e.server, dstPort: e.serverPort, protocol: e.protocol };
}

const FLOW_END_REASONS: Readonly<Record<InspectFlowEndEvent['reason'], EveFlowReason>> = {
  timeout: 'timeout',
  endpoint: 'forced', // its endpoint was forgotten (-t)
  shutdown: 'shutdown',
};

/**
 * The flow event's verdict: the judge's record, else what the engine says.
 * Every engine drop came from a logged decision (alerted); a flow ended
 * before any verdict gets FlowVerdict 'alert', which writes no flow.action.
 */
function flowOutcome(record: Decided | undefined, engine: InspectFlowEndEvent['verdict']): { verdict: FlowVerdict; alerted: boolean; appProto?: string } {
  if (record !== undefined) return record;
  if (engine === 'allow') return { verdict: 'allow', alerted: false };
  if (engine === 'drop') return { verdict: 'drop', alerted: true };
  return { verdict: 'alert', alerted: false };
}
