/** Suricata EVE JSON events for `gatehouse inspect`: pure builders, the AWS Network Firewall wrapper, and the writer. */
export * from './types';
export { eveFlowId, eveProtoName, eveTimestamp } from './format';
export {
  alertEvent,
  dnsEvent,
  eveHeader,
  flowEvent,
  httpEvent,
  tlsEvent,
  type AlertFacts,
  type DnsFacts,
  type FlowFacts,
  type FlowVerdict,
  type HttpFacts,
  type TlsFacts,
} from './events';
export { wrapAnf, type AnfWrapOptions } from './anf';
export { EveWriter, type EveWriterOptions, type EveWriterStats } from './writer';
