/**
 * Pure builders for the EVE events gatehouse writes: one object per event,
 * keys in Suricata's order, nothing read from the clock unless `at` is left
 * out. JSON.stringify of the result is the EVE line.
 */
import { eveFlowId, eveProtoName, eveTimestamp, hasPorts } from './format';
import type {
  AppFacts,
  EveAlertEvent,
  EveAppProto,
  EveDnsEvent,
  EveDnsSection,
  EveFlowEvent,
  EveFlowReason,
  EveFlowState,
  EveFlowTuple,
  EveHeader,
  EveHttpEvent,
  EveHttpSection,
  EveTlsEvent,
  EveTlsSection,
} from './types';

/** The common header, keys in Suricata's order; ports only for protocols that have them (never ICMP or ICMPv6). */
export function eveHeader<T extends string>(tuple: EveFlowTuple, eventType: T, at: Date): EveHeader & { event_type: T } {
  const ports = hasPorts(tuple.protocol);
  const header: Partial<EveHeader> & { event_type: T } = {
    timestamp: eveTimestamp(at),
    flow_id: eveFlowId(tuple.flowId),
    event_type: eventType,
    src_ip: tuple.src,
  };
  if (ports) header.src_port = tuple.srcPort;
  header.dest_ip = tuple.dst;
  if (ports) header.dest_port = tuple.dstPort;
  header.proto = eveProtoName(tuple.protocol);
  return header as EveHeader & { event_type: T };
}

export interface AlertFacts {
  /** 'allowed' when the flow passes (alert-only or report mode), 'blocked' when it is dropped or reset. */
  action: 'allowed' | 'blocked';
  signatureId: number;
  signature: string;
  /** Default "" (what AWS Network Firewall writes for rules without a classtype). */
  category?: string;
  /** 1 (high) to 4; default 3, Suricata's severity for rules without a classtype. */
  severity?: number;
}

/**
 * An `alert` event. With `app`, the application sections that are known
 * (`tls{sni}`, `http{hostname}`, `dns{rrname,rrtype}`) are added and
 * `app_proto` says which one the flow spoke; an `app` with none of them
 * means the payload was seen but not recognised: app_proto "failed".
 */
export function alertEvent(tuple: EveFlowTuple, facts: AlertFacts, app?: AppFacts, at: Date = new Date()): EveAlertEvent {
  const event: EveAlertEvent = {
    ...eveHeader(tuple, 'alert', at),
    alert: {
      action: facts.action,
      gid: 1,
      signature_id: facts.signatureId,
      rev: 1,
      signature: facts.signature,
      category: facts.category ?? '',
      severity: facts.severity ?? 3,
    },
  };
  if (app === undefined) return event;
  event.app_proto = appProtoOf(app);
  if (app.tls) event.tls = tlsSection(app.tls.sni, undefined, app.tls.ech);
  if (app.http) event.http = app.http.hostname === null ? {} : { hostname: app.http.hostname };
  if (app.dns) event.dns = { rrname: app.dns.rrname, rrtype: app.dns.rrtype };
  return event;
}

function appProtoOf(app: AppFacts): EveAppProto {
  if (app.tls) return 'tls';
  if (app.http) return 'http';
  if (app.dns) return 'dns';
  return 'failed';
}

/** Suricata omits keys it has no value for rather than writing null. */
function tlsSection(sni: string | null, version?: string, ech?: string): EveTlsSection {
  const tls: EveTlsSection = {};
  if (sni !== null) tls.sni = sni;
  if (version !== undefined) tls.version = version;
  if (ech !== undefined) tls.ech = ech;
  return tls;
}

/** The engine's final decision for the flow. */
export type FlowVerdict = 'allow' | 'drop' | 'reject' | 'alert';

export interface FlowFacts {
  pktsToServer: number;
  pktsToClient: number;
  bytesToServer: number;
  bytesToClient: number;
  /** First and last packet. */
  start: Date;
  end: Date;
  verdict: FlowVerdict;
  /** Why the flow record ends: idle timeout, forced out (flow table full), or the appliance stopping. */
  reason: EveFlowReason;
  alerted: boolean;
  appProto?: string;
  /** Default: 'established' when both directions carried packets, else 'new' (Suricata's meaning). */
  state?: EveFlowState;
}

/**
 * Suricata's flow `action`: "drop" for flows it dropped (a reject is a drop
 * plus a reset), "pass" for flows a pass rule let through whole, nothing for
 * flows that merely alerted.
 */
const FLOW_ACTIONS: Readonly<Record<FlowVerdict, 'drop' | 'pass' | undefined>> = {
  allow: 'pass',
  drop: 'drop',
  reject: 'drop',
  alert: undefined,
};

/** A `flow` event: one per flow when it leaves the flow table. */
export function flowEvent(tuple: EveFlowTuple, facts: FlowFacts, at: Date = new Date()): EveFlowEvent {
  const header = eveHeader(tuple, 'flow', at);
  const flow: EveFlowEvent['flow'] = {
    pkts_toserver: facts.pktsToServer,
    pkts_toclient: facts.pktsToClient,
    bytes_toserver: facts.bytesToServer,
    bytes_toclient: facts.bytesToClient,
    start: eveTimestamp(facts.start),
    end: eveTimestamp(facts.end),
    // Suricata subtracts the seconds fields (lastts.tv_sec - startts.tv_sec).
    age: Math.max(0, Math.floor(facts.end.getTime() / 1000) - Math.floor(facts.start.getTime() / 1000)),
    state: facts.state ?? (facts.pktsToClient > 0 ? 'established' : 'new'),
    reason: facts.reason,
    alerted: facts.alerted,
  };
  const action = FLOW_ACTIONS[facts.verdict];
  if (action !== undefined) flow.action = action;
  return facts.appProto === undefined ? { ...header, flow } : { ...header, app_proto: facts.appProto, flow };
}

/** The DNS section without its version, which dnsEvent sets; an answer's rcode defaults to "NOERROR". */
export type DnsFacts = Omit<EveDnsSection, 'version'>;

/** A `dns` event, in Suricata's version 2 layout (a query, or an answer with its records). */
export function dnsEvent(tuple: EveFlowTuple, facts: DnsFacts, at: Date = new Date()): EveDnsEvent {
  let dns: EveDnsSection;
  if (facts.type === 'query') {
    dns = { type: 'query', ...(facts.id === undefined ? {} : { id: facts.id }), rrname: facts.rrname, rrtype: facts.rrtype };
  } else {
    dns = {
      version: 2,
      type: 'answer',
      ...(facts.id === undefined ? {} : { id: facts.id }),
      rrname: facts.rrname,
      rrtype: facts.rrtype,
      rcode: facts.rcode ?? 'NOERROR',
    };
    if (facts.answers !== undefined && facts.answers.length > 0) {
      dns.answers = facts.answers.map((a) => ({ rrname: a.rrname, rrtype: a.rrtype, ttl: a.ttl, rdata: a.rdata }));
    }
  }
  return { ...eveHeader(tuple, 'dns', at), dns };
}

export interface TlsFacts {
  sni: string | null;
  /** "TLS 1.2", "TLS 1.3", as Suricata writes it. */
  version?: string;
  ech?: string;
}

/** A `tls` event (one per ClientHello seen). */
export function tlsEvent(tuple: EveFlowTuple, facts: TlsFacts, at: Date = new Date()): EveTlsEvent {
  return { ...eveHeader(tuple, 'tls', at), tls: tlsSection(facts.sni, facts.version, facts.ech) };
}

export interface HttpFacts {
  hostname: string | null;
  url?: string;
  method?: string;
  /** "HTTP/1.1" */
  protocol?: string;
  status?: number;
  userAgent?: string;
  length?: number;
}

/** An `http` event (one per request head seen). */
export function httpEvent(tuple: EveFlowTuple, facts: HttpFacts, at: Date = new Date()): EveHttpEvent {
  const http: EveHttpSection = {};
  if (facts.hostname !== null) http.hostname = facts.hostname;
  if (facts.url !== undefined) http.url = facts.url;
  if (facts.userAgent !== undefined) http.http_user_agent = facts.userAgent;
  if (facts.method !== undefined) http.http_method = facts.method;
  if (facts.protocol !== undefined) http.protocol = facts.protocol;
  if (facts.status !== undefined) http.status = facts.status;
  if (facts.length !== undefined) http.length = facts.length;
  return { ...eveHeader(tuple, 'http', at), http };
}
