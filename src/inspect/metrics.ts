/**
 * `gatehouse inspect`'s Prometheus metrics: the engine's counter block
 * (gatehouse_inspect_<counter>_total, read live at scrape time) and the
 * judge's, the policy's and the EVE log's own counts. Nothing is counted
 * per packet here: every value is read when /metrics is scraped.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Inspect, InspectCounterName } from '../native/inspect';
import { registerCounterBlock, type CounterBlockSet } from '../observe/metrics';
import type { EveWriter } from './eve';
import type { FlowJudge } from './judge';

export interface InspectMetricSources {
  engine: Inspect;
  judge: FlowJudge;
  eve: EveWriter | undefined;
  /** Policy reloads so far (read at scrape time). */
  reloads: { readonly ok: number; readonly refused: number };
}

const COUNTER_HELP: Readonly<Partial<Record<InspectCounterName, string>>> = {
  rx_packets: 'GENEVE datagrams received, valid or not',
  tx_packets: 'datagrams sent back to GWLB (allowed, released from hold, injected)',
  rx_overflow: 'datagrams the kernel dropped because a receive socket buffer was full',
  flows_active: 'flows in the flow table',
  upcalls: 'packet events handed to the policy (first packets, payload packets, tapped DNS answers)',
  upcalls_dropped: 'packet events that found the event queue full (the flow asks again with its next packet)',
  held: 'packets held waiting for a verdict',
  held_dropped: "packets dropped because a pending flow's queue or the held-bytes budget was full",
  passed_handshake: 'packets without payload passed while a flow was inspected',
  verdict_allow_packets: 'packets sent by an allow verdict',
  verdict_drop_packets: 'packets dropped by a drop verdict',
  injected: 'packets injected (TCP resets, ICMP unreachables of reject verdicts)',
};

/** Registers every inspect metric on `registry`; returns the engine's counter block (close it on stop). */
export function registerInspectMetrics(registry: Registry, sources: InspectMetricSources): CounterBlockSet {
  const { engine, judge, eve, reloads } = sources;
  const block = registerCounterBlock(registry, {
    prefix: 'gatehouse_inspect_',
    help: { ...COUNTER_HELP },
    block: engine.counters,
    gauges: ['flows_active'],
  });
  const registers = [registry];
  new Counter({
    name: 'gatehouse_inspect_verdicts_total',
    help: 'flow decisions by action and rule (":default", ":midstream", ":tls-without-sni", ":tls-unparsable" when no rule decided)',
    labelNames: ['action', 'rule'],
    registers,
    collect() {
      this.reset();
      for (const v of judge.verdicts()) this.inc({ action: v.action, rule: v.rule }, v.count);
    },
  });
  new Counter({
    name: 'gatehouse_inspect_mismatches_total',
    help: 'verify_dns checks that failed: the name resolves elsewhere (mismatch) or not at all (unresolved)',
    labelNames: ['result'],
    registers,
    collect() {
      this.reset();
      const s = judge.stats();
      this.inc({ result: 'mismatch' }, s.mismatches);
      this.inc({ result: 'unresolved' }, s.unresolved);
    },
  });
  new Counter({
    name: 'gatehouse_inspect_policy_reloads_total',
    help: 'policy reloads (file change or SIGHUP): loaded, or refused (the running policy stayed)',
    labelNames: ['result'],
    registers,
    collect() {
      this.reset();
      this.inc({ result: 'ok' }, reloads.ok);
      this.inc({ result: 'refused' }, reloads.refused);
    },
  });
  const judgeTotals = [
    ['judge_errors', 'events the judge failed on (their flows were dropped)', 'errors'],
    ['dns_records_learned', 'DNS answer records learned from allowed DNS flows (for verify_dns)', 'dnsRecordsLearned'],
    ['stalled_flows', 'flows decided on partial payload after showing nothing new for a while', 'stalled'],
  ] as const;
  for (const [name, help, key] of judgeTotals) {
    new Counter({
      name: `gatehouse_inspect_${name}_total`,
      help,
      registers,
      collect() {
        this.reset();
        this.inc(judge.stats()[key]);
      },
    });
  }
  new Gauge({
    name: 'gatehouse_inspect_flows_inspecting',
    help: 'flows waiting for their payload or for verify_dns',
    registers,
    collect() {
      this.set(judge.stats().inspecting);
    },
  });
  if (eve) {
    new Counter({
      name: 'gatehouse_inspect_eve_events_total',
      help: 'EVE events: written, or dropped (the log fell behind or failed)',
      labelNames: ['result'],
      registers,
      collect() {
        this.reset();
        const s = eve.stats();
        this.inc({ result: 'written' }, s.written);
        this.inc({ result: 'dropped' }, s.dropped);
      },
    });
  }
  return block;
}
