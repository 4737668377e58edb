/**
 * What a flow's payload says, in the two vocabularies that need it: the
 * policy's AppFacts (what rules match on) and EVE's app sections (tls{sni},
 * http{hostname}, dns{rrname, rrtype}, or app_proto "failed"). Pure.
 */
import type { AppFacts as EveAppFacts } from './eve';
import { DNS_PORT, dnsTypeName, type PayloadFacts } from './parse';
import type { AppFacts, FlowFacts } from './policy';

/** The payload's facts for the policy and for EVE; both undefined while it is worth waiting for more. */
export type Judged = { app: AppFacts; eve: EveAppFacts | undefined } | { app: undefined; eve: undefined };

export const NOTHING_YET: Judged = Object.freeze({ app: undefined, eve: undefined });

const TCP = 6;
const UDP = 17;

/** The facts of a payload the judge will not wait on any longer (an incomplete one is what it is: unparsable). */
export function fromPayload(p: PayloadFacts, protocol: number): Judged {
  switch (p.app) {
    case 'tls': {
      const h = p.hello;
      if (h.status === 'complete') {
        return { app: { kind: 'tls', sni: h.sni }, eve: { tls: h.ech === 'none' ? { sni: h.sni } : { sni: h.sni, ech: h.ech } } };
      }
      return { app: { kind: 'tls-unparsable' }, eve: { tls: { sni: null } } };
    }
    case 'http': {
      const host = p.request.status === 'complete' ? p.request.host : null;
      return { app: { kind: 'http', host }, eve: { http: { hostname: host } } };
    }
    case 'dns': {
      const m = p.messages[0];
      const q = m?.status === 'complete' ? m.questions[0] : undefined;
      if (q !== undefined) return { app: { kind: 'dns', query: q.name, qtype: q.type }, eve: { dns: { rrname: q.name, rrtype: dnsTypeName(q.type) } } };
      return { app: { kind: 'other' }, eve: {} };
    }
    default:
      return { app: { kind: 'other' }, eve: protocol === TCP || protocol === UDP ? {} : undefined };
  }
}

/** DNS by port: the flows whose answers verify_dns learns from. */
export function isDnsFlow(f: FlowFacts): boolean {
  return (f.protocol === UDP || f.protocol === TCP) && f.dstPort === DNS_PORT;
}

/** One short text for log lines. */
export function describeApp(app: AppFacts | undefined): string {
  if (app === undefined) return 'none';
  switch (app.kind) {
    case 'tls':
      return `tls sni=${app.sni ?? '-'}`;
    case 'http':
      return `http host=${app.host ?? '-'}`;
    case 'dns':
      return `dns ${app.query} ${dnsTypeName(app.qtype)}`;
    default:
      return app.kind;
  }
}
