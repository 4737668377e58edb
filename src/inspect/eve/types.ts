/**
 * The shapes of the Suricata EVE JSON events gatehouse writes. Field names
 * and value formats are Suricata's (docs.suricata.io, "EVE JSON Format";
 * src/output-json-flow.c), so Filebeat's Suricata module, Splunk's TA and
 * AWS Network Firewall log pipelines read them unchanged.
 */

/** The flow an event is about, as the inspect engine knows it. */
export interface EveFlowTuple {
  /** The engine's flow id; written as `flow_id`, folded to 51 bits (see eveFlowId). */
  flowId: bigint;
  /** Client (the side that opened the flow). */
  src: string;
  srcPort: number;
  /** Server. */
  dst: string;
  dstPort: number;
  /** IP protocol number: 6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6 (others are written as their number). */
  protocol: number;
}

/** What the engine learned about the application layer of a flow. */
export interface AppFacts {
  /** `sni` is null when the ClientHello had none; `ech` is a gatehouse extension (the ECH extension was present). */
  tls?: { sni: string | null; ech?: string };
  http?: { hostname: string | null };
  dns?: { rrname: string; rrtype: string };
}

/** Suricata's app_proto values that gatehouse can produce; 'failed' = payload seen, protocol not recognised. */
export type EveAppProto = 'tls' | 'http' | 'dns' | 'failed';

/** The part every event starts with, in Suricata's key order. Ports are absent for ICMP and ICMPv6. */
export interface EveHeader {
  /** "2026-11-22T02:39:45.123456+0000" (UTC; microseconds). */
  timestamp: string;
  /** A positive integer below 2^53 (JSON numbers stay exact in every SIEM). */
  flow_id: number;
  event_type: string;
  src_ip: string;
  src_port?: number;
  dest_ip: string;
  dest_port?: number;
  /** "TCP", "UDP", "ICMP", "IPv6-ICMP", ... (names from /etc/protocols, as Suricata). */
  proto: string;
}

export interface EveTlsSection {
  sni?: string;
  version?: string;
  /** gatehouse extension, not a Suricata field. */
  ech?: string;
}
export interface EveHttpSection {
  hostname?: string;
  url?: string;
  http_user_agent?: string;
  http_method?: string;
  protocol?: string;
  status?: number;
  length?: number;
}
export interface EveDnsAnswer {
  rrname: string;
  rrtype: string;
  ttl: number;
  rdata: string;
}
/** Suricata's DNS "version 2" layout (Suricata 6 and 7, which AWS Network Firewall runs). */
export interface EveDnsSection {
  version?: 2;
  type: 'query' | 'answer';
  /** The DNS message id. */
  id?: number;
  rrname: string;
  /** "A", "AAAA", "CNAME", ... */
  rrtype: string;
  /** Answers only. */
  rcode?: string;
  answers?: EveDnsAnswer[];
}

export interface EveAlertEvent extends EveHeader {
  event_type: 'alert';
  alert: {
    action: 'allowed' | 'blocked';
    gid: 1;
    signature_id: number;
    rev: 1;
    signature: string;
    category: string;
    severity: number;
  };
  app_proto?: EveAppProto;
  tls?: EveTlsSection;
  http?: EveHttpSection;
  dns?: Pick<EveDnsSection, 'rrname' | 'rrtype'>;
}

export type EveFlowState = 'new' | 'established' | 'closed' | 'bypassed';
export type EveFlowReason = 'timeout' | 'forced' | 'shutdown' | 'unknown';

export interface EveFlowEvent extends EveHeader {
  event_type: 'flow';
  app_proto?: string;
  flow: {
    pkts_toserver: number;
    pkts_toclient: number;
    bytes_toserver: number;
    bytes_toclient: number;
    start: string;
    end: string;
    /** Whole seconds between start and end, as Suricata computes it (difference of the seconds fields). */
    age: number;
    state: EveFlowState;
    reason: EveFlowReason;
    alerted: boolean;
    /** Suricata writes "drop" or "pass" only when a rule decided the whole flow. */
    action?: 'drop' | 'pass';
  };
}

export interface EveDnsEvent extends EveHeader {
  event_type: 'dns';
  dns: EveDnsSection;
}
export interface EveTlsEvent extends EveHeader {
  event_type: 'tls';
  tls: EveTlsSection;
}
export interface EveHttpEvent extends EveHeader {
  event_type: 'http';
  http: EveHttpSection;
}

export type EveEvent = EveAlertEvent | EveFlowEvent | EveDnsEvent | EveTlsEvent | EveHttpEvent;

/** How AWS Network Firewall wraps each EVE event in its alert and flow logs. */
export interface AnfWrappedEvent<E extends EveEvent = EveEvent> {
  firewall_name: string;
  availability_zone: string;
  /** Epoch seconds (UTC) as a decimal string, as AWS Network Firewall writes it. */
  event_timestamp: string;
  event: E;
}
